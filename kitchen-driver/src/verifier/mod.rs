//! Verifiers: what `verify` runs to check an instance.
//!
//! A [`Verifier`] gets the same [`PluginContext`] as a provisioner and returns a
//! [`VerifyReport`]: an overall failure (which fails the action) and, for verifiers that know
//! them, the individual test cases (for the JUnit report). Found by name with [`for_instance`].
//!
//! # Adding a verifier
//!
//! As for provisioners (see [`crate::provisioner`]): a typed config, `impl Verifier`, a name in
//! [`for_instance`] and [`SUPPORTED_VERIFIERS`]. Test files live under
//! `ctx.test_base_path/<suite>/<plugin>/` (busser's layout; `ctx.instance.suite`); upload them
//! with `ctx.connection.upload(..)`, run the tool with `exec`, and return each test as a
//! [`CaseResult`]. A test failure is `Ok(VerifyReport::failed(cases, why))`, which the
//! lifecycle turns into a failed verify (exit 20) while keeping the cases; `Err` means the
//! checks could not run (a missing tool: say which, and how to get it).
//!
//! ```no_run
//! use async_trait::async_trait;
//! use kitchen_driver::transport::ExecRequest;
//! use kitchen_driver::plugin::PluginContext;
//! use kitchen_driver::verifier::{CaseOutcome, CaseResult, Verifier, VerifyReport};
//!
//! struct FileExists;
//!
//! #[async_trait]
//! impl Verifier for FileExists {
//!     fn name(&self) -> &'static str {
//!         "file_exists"
//!     }
//!     async fn verify(&self, ctx: &PluginContext<'_>) -> kitchen_driver::Result<VerifyReport> {
//!         let out = ctx
//!             .connection
//!             .exec(&ExecRequest::shell("test -f /tmp/converged"), ctx.output)
//!             .await?;
//!         let passed = out.success();
//!         let outcome = if passed { CaseOutcome::Passed } else { CaseOutcome::Failed };
//!         let case = CaseResult::new("/tmp/converged exists", outcome, out.stderr);
//!         Ok(if passed {
//!             VerifyReport::passed(vec![case])
//!         } else {
//!             VerifyReport::failed(vec![case], "/tmp/converged is missing")
//!         })
//!     }
//! }
//! ```

pub mod bats;
pub mod shell;
pub mod tap;

use std::time::Duration;

use async_trait::async_trait;

use crate::config::InstanceConfig;
use crate::error::{Error, Result};
use crate::plugin::{ConfigPaths, PluginContext};

/// The verifier names this build knows. `busser` (test-kitchen's default verifier) is known
/// when the suite has bats tests: see [`for_instance_under`].
pub const SUPPORTED_VERIFIERS: &[&str] = &["shell", "bats", "busser (with bats tests)"];

/// The outcome of one test case (`passed`, `failed`, `skipped` in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CaseOutcome {
    /// Passed.
    Passed,
    /// Failed.
    Failed,
    /// Skipped (a TAP `# skip`).
    Skipped,
}

/// One test case a verifier ran.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CaseResult {
    /// The test's name.
    pub name: String,
    /// What happened.
    pub outcome: CaseOutcome,
    /// Output that belongs to this case (diagnostics).
    pub output: String,
    /// Where the case comes from inside the verifier's run (for `bats`: the `.bats` file), a
    /// JUnit class name.
    pub group: Option<String>,
    /// How long it ran, when the verifier reports it.
    pub duration: Option<Duration>,
    /// The line in the file of the failing assertion (bats: `(in test file x.bats, line 10)`).
    pub line: Option<u32>,
    /// Why it failed or was skipped: the failing assertion, the skip reason.
    pub message: Option<String>,
}

impl CaseResult {
    /// A case result.
    pub fn new(name: impl Into<String>, outcome: CaseOutcome, output: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            outcome,
            output: output.into(),
            group: None,
            duration: None,
            line: None,
            message: None,
        }
    }

    /// Sets the group (such as the file the case is in).
    pub fn with_group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// Sets the duration.
    pub fn with_duration(mut self, duration: Duration) -> Self {
        self.duration = Some(duration);
        self
    }

    /// Sets the line of the failing assertion.
    pub fn with_line(mut self, line: u32) -> Self {
        self.line = Some(line);
        self
    }

    /// Sets the message (the failing assertion, the skip reason).
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }
}

/// What a verifier found.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Individual cases, when the verifier knows them (empty for `shell`).
    pub cases: Vec<CaseResult>,
    /// Why verification failed; `None` when it passed.
    pub failure: Option<String>,
}

impl VerifyReport {
    /// A passing report with these cases.
    pub fn passed(cases: Vec<CaseResult>) -> Self {
        Self {
            cases,
            failure: None,
        }
    }

    /// A failing report.
    pub fn failed(cases: Vec<CaseResult>, why: impl Into<String>) -> Self {
        Self {
            cases,
            failure: Some(why.into()),
        }
    }
}

/// Verifies an instance.
#[async_trait]
pub trait Verifier: Send + Sync {
    /// The plugin name (`shell`, `bats`).
    fn name(&self) -> &'static str;

    /// Runs the checks. A test failure is `Ok` with [`VerifyReport::failure`] set; `Err` is for
    /// when the checks could not run at all.
    ///
    /// # Errors
    /// Runtime errors, missing tools, bad configuration.
    async fn verify(&self, ctx: &PluginContext<'_>) -> Result<VerifyReport>;

    /// Checks the host files the configuration names (the bats directory), so that a missing
    /// one refuses the command before anything is created instead of failing verify after a
    /// create and a converge. The preflight check calls it for every command that reaches
    /// verify; `verify` resolves the same files the same way. It must not touch any instance.
    ///
    /// # Errors
    /// [`Error::Config`] naming the key as written (see [`ConfigPaths::refuse`]), the file,
    /// and what to do.
    fn check_files(&self, paths: &ConfigPaths<'_>) -> Result<()> {
        let _ = paths;
        Ok(())
    }
}

/// [`for_instance`], checking first that `busser` (test-kitchen's default verifier) has
/// something to run: bats tests under `<test_base_path>/<suite>/bats/`, which busser would hand
/// to its `busser-bats` runner and which run here with `bats`. busser's other runners
/// (serverspec, minitest, ...) need Ruby gems in the instance and are refused.
///
/// # Errors
/// As [`for_instance`]; [`Error::UnknownPlugin`] for a `busser` suite without bats tests.
pub fn for_instance_under(
    instance: &InstanceConfig,
    test_base_path: &std::path::Path,
) -> Result<Box<dyn Verifier>> {
    if InstanceConfig::plugin_name(&instance.verifier) == "busser" {
        let dir = test_base_path.join(&instance.suite).join("bats");
        let has_bats = std::fs::read_dir(&dir).is_ok_and(|entries| {
            entries
                .filter_map(std::result::Result::ok)
                .any(|e| e.path().extension().is_some_and(|x| x == "bats"))
        });
        if !has_bats {
            return Err(Error::UnknownPlugin {
                kind: "verifier",
                name: "busser".into(),
                instance: instance.name.clone(),
                supported: format!(
                    "{} (busser, test-kitchen's default verifier, runs here only as bats: no .bats file in {}; set `verifier: {{name: shell, command: ...}}` or add bats tests there)",
                    SUPPORTED_VERIFIERS.join(", "),
                    dir.display()
                ),
            });
        }
    }
    for_instance(instance)
}

/// The verifier named by the instance's `verifier.name`.
///
/// # Errors
/// [`Error::UnknownPlugin`] listing the supported names; [`Error::Config`] for bad keys.
pub fn for_instance(instance: &InstanceConfig) -> Result<Box<dyn Verifier>> {
    match InstanceConfig::plugin_name(&instance.verifier) {
        // test-kitchen's default verifier; only its bats runner exists here, and
        // `for_instance_under` has checked that the suite has bats tests.
        "busser" => Ok(Box::new(bats::BatsVerifier::from_config(
            &instance.name,
            &instance.verifier,
        )?)),
        "shell" => Ok(Box::new(shell::ShellVerifier::from_config(
            &instance.name,
            &instance.verifier,
        )?)),
        "bats" => Ok(Box::new(bats::BatsVerifier::from_config(
            &instance.name,
            &instance.verifier,
        )?)),
        other => Err(Error::UnknownPlugin {
            kind: "verifier",
            name: other.to_string(),
            instance: instance.name.clone(),
            supported: SUPPORTED_VERIFIERS.join(", "),
        }),
    }
}
