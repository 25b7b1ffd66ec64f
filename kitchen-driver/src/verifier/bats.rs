//! The `bats` verifier: test-kitchen's busser layout, run with `bats --tap` in the instance.
//!
//! The tests are the `*.bats` files of `<test_base_path>/<suite>/bats/` (busser-bats' layout;
//! `bats_path` points elsewhere). That directory, with busser's shared helpers from
//! `<test_base_path>/helpers/bats/` under it, is uploaded as one tar stream into `remote_path`
//! (default `/tmp/kitchen/bats`, emptied first), so `load` of helper files works. Each file then
//! runs as `cd <remote_path> && [sudo_command] <bats_command> --tap [--timing] <flags> <file>`;
//! the TAP it prints streams live and is parsed ([`super::tap`]) so every test becomes its own
//! [`CaseResult`], grouped by file. A failing test, a bail-out, a plan that
//! is not met or a non-zero exit fails verify with a summary naming the failing tests.
//!
//! Keys: `bats_path`, `remote_path`, `bats_command` (default `bats`), `bats_flags` (a string
//! or a list), `timing` (default true: `--timing`, which bats 1.5 and later know), `sudo`
//! (default false), `sudo_command` (default `sudo -E`), `env` (a map exported to bats).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::Deserialize;

use super::tap::{self, TapReport};
use super::{CaseResult, Verifier, VerifyReport};
use crate::config::PluginConfig;
use crate::config::parse_block;
use crate::error::{Error, Result};
use crate::plugin::{ConfigPaths, PluginContext};
use crate::report::NullSink;
use crate::transport::{ExecRequest, UploadSet, shell_quote};

fn default_remote() -> String {
    "/tmp/kitchen/bats".into()
}
fn default_command() -> String {
    "bats".into()
}
fn default_sudo_command() -> String {
    "sudo -E".into()
}
fn default_true() -> bool {
    true
}

/// A string (split like a shell would) or a list of words.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(untagged)]
enum Words {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

/// A scalar environment value.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
enum Scalar {
    Str(String),
    Other(serde_json::Value),
}

impl Scalar {
    fn text(&self) -> String {
        match self {
            Scalar::Str(s) => s.clone(),
            Scalar::Other(v) => v.to_string(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
struct BatsConfig {
    #[serde(default)]
    bats_path: Option<String>,
    #[serde(default = "default_remote")]
    remote_path: String,
    #[serde(default = "default_command")]
    bats_command: String,
    #[serde(default)]
    bats_flags: Words,
    #[serde(default = "default_true")]
    timing: bool,
    #[serde(default)]
    sudo: bool,
    #[serde(default = "default_sudo_command")]
    sudo_command: String,
    #[serde(default)]
    env: BTreeMap<String, Scalar>,
}

/// The bats verifier.
#[derive(Debug, Clone)]
pub struct BatsVerifier {
    config: BatsConfig,
    flags: Vec<String>,
}

impl BatsVerifier {
    /// Reads the `verifier:` block of `instance`.
    ///
    /// # Errors
    /// [`Error::Config`] naming the bad key.
    pub fn from_config(instance: &str, block: &PluginConfig) -> Result<Self> {
        let config: BatsConfig = parse_block("verifier", instance, block)?;
        let bad = |message: String| Error::config("verifier", instance, message);
        let flags = match &config.bats_flags {
            Words::None => Vec::new(),
            Words::Many(v) => v.clone(),
            Words::One(s) => shlex::split(s).ok_or_else(|| {
                bad(format!(
                    "key `bats_flags`: `{s}` is not valid shell words (unbalanced quotes?)"
                ))
            })?,
        };
        if config.bats_command.trim().is_empty() {
            return Err(bad("key `bats_command` is empty".into()));
        }
        if !config.remote_path.starts_with('/')
            || config.remote_path.trim_end_matches('/').is_empty()
        {
            return Err(bad(format!(
                "key `remote_path`: `{}` must be an absolute directory other than /",
                config.remote_path
            )));
        }
        for k in config.env.keys() {
            if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(bad(format!(
                    "key `env`: `{k}` is not a valid environment variable name"
                )));
            }
        }
        Ok(Self { config, flags })
    }

    fn remote(&self) -> &str {
        self.config.remote_path.trim_end_matches('/')
    }

    /// The local test directory: `bats_path`, else `<tbp>/<suite>/bats`.
    fn local_dir(&self, paths: &ConfigPaths<'_>) -> PathBuf {
        match &self.config.bats_path {
            Some(p) => paths.expand_path(p),
            None => paths
                .test_base_path
                .join(&paths.instance.suite)
                .join("bats"),
        }
    }

    /// The bats directory and its `*.bats` files, in name order.
    ///
    /// # Errors
    /// [`Error::Config`] naming `bats_path` when the directory is missing or holds no
    /// `*.bats` file.
    fn local_tests(&self, paths: &ConfigPaths<'_>) -> Result<(PathBuf, Vec<String>)> {
        let local = self.local_dir(paths);
        let todo = format!(
            "put *.bats files in {}, or set `bats_path` to where they are",
            paths
                .test_base_path
                .join(&paths.instance.suite)
                .join("bats")
                .display()
        );
        if !local.is_dir() {
            return Err(paths.refuse(
                "verifier",
                "verifier.bats_path",
                &format!("no bats tests: {} is not a directory", local.display()),
                &todo,
            ));
        }
        let files = bats_files(&local)?;
        if files.is_empty() {
            return Err(paths.refuse(
                "verifier",
                "verifier.bats_path",
                &format!("no *.bats files in {}", local.display()),
                &todo,
            ));
        }
        Ok((local, files))
    }

    /// The command that runs one file (pure: unit-tested).
    fn command_for(&self, file: &str) -> String {
        let mut words = Vec::new();
        if self.config.sudo {
            words.push(self.config.sudo_command.clone());
        }
        words.push(self.config.bats_command.clone());
        words.push("--tap".into());
        if self.config.timing {
            words.push("--timing".into());
        }
        words.extend(self.flags.iter().map(|f| shell_quote(f)));
        words.push(shell_quote(file));
        format!("cd {} && {}", shell_quote(self.remote()), words.join(" "))
    }

    /// The first word of `bats_command` (what must exist in the instance).
    fn program(&self) -> String {
        shlex::split(&self.config.bats_command)
            .and_then(|w| w.into_iter().next())
            .unwrap_or_else(|| self.config.bats_command.clone())
    }
}

/// The `*.bats` files directly in `dir`, sorted by name.
fn bats_files(dir: &Path) -> Result<Vec<String>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("listing", dir, e))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("listing", dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".bats") && entry.path().is_file() {
            files.push(name);
        }
    }
    files.sort();
    Ok(files)
}

/// Judges one file's run: the cases and, when it did not pass, why (pure: unit-tested).
pub fn judge_file(
    file: &str,
    exit_code: i64,
    report: &TapReport,
) -> (Vec<CaseResult>, Vec<String>) {
    let cases: Vec<CaseResult> = report.tests.iter().map(|t| t.to_case(Some(file))).collect();
    let mut problems: Vec<String> = report
        .failures()
        .map(|t| format!("{file}: {}", t.name))
        .collect();
    if let Some(p) = report.problem() {
        problems.push(format!("{file}: {p}"));
    }
    if problems.is_empty() && exit_code != 0 {
        problems.push(format!(
            "{file}: bats exited with code {exit_code} although no test failed"
        ));
    }
    (cases, problems)
}

/// The failure message for a whole run (pure: unit-tested).
pub fn summary(cases: &[CaseResult], problems: &[String]) -> Option<String> {
    if problems.is_empty() {
        return None;
    }
    let failed = cases
        .iter()
        .filter(|c| c.outcome == super::CaseOutcome::Failed)
        .count();
    Some(format!(
        "{failed} of {} bats tests failed: {}",
        cases.len(),
        problems.join("; ")
    ))
}

#[async_trait]
impl Verifier for BatsVerifier {
    fn name(&self) -> &'static str {
        "bats"
    }

    fn check_files(&self, paths: &ConfigPaths<'_>) -> Result<()> {
        self.local_tests(paths).map(|_| ())
    }

    async fn verify(&self, ctx: &PluginContext<'_>) -> Result<VerifyReport> {
        let conn = &ctx.connection;
        let out = ctx.output;
        let instance = &ctx.instance.name;
        let (local, files) = self.local_tests(&ctx.paths())?;

        let program = self.program();
        let probe = conn
            .exec(
                &ExecRequest::shell(format!("command -v {}", shell_quote(&program))),
                &NullSink,
            )
            .await?;
        if !probe.success() {
            return Err(Error::MissingTool {
                instance: instance.clone(),
                tool: program,
                location: "in the instance",
                hint: "install it in the image (Debian: apt-get install bats; kitchen/debian-12 has it), or set verifier.bats_command to where it is".into(),
            });
        }

        let mut upload = UploadSet::new();
        let helpers = ctx.test_base_path.join("helpers").join("bats");
        if helpers.is_dir() {
            out.debug(&format!("Adding helpers from {}", helpers.display()));
            upload.add_path(&helpers, ".")?;
        }
        upload.add_path(&local, ".")?;
        let remote = self.remote();
        out.info(&format!(
            "Uploading {} bats file(s) from {} to {remote}",
            files.len(),
            local.display()
        ));
        conn.execute(
            &format!("rm -rf {r} && mkdir -p {r}", r = shell_quote(remote)),
            "preparing the bats directory",
            &NullSink,
        )
        .await?;
        conn.upload_set(upload, remote).await?;

        let mut cases = Vec::new();
        let mut problems = Vec::new();
        for file in &files {
            let mut req = ExecRequest::shell(self.command_for(file));
            for (k, v) in &self.config.env {
                req = req.env(k.clone(), v.text());
            }
            out.info(&format!("Running {}", req.display()));
            let result = conn.exec(&req, out).await?;
            let report = tap::parse(&result.stdout, self.config.timing);
            let (c, p) = judge_file(file, result.exit_code, &report);
            if !result.stderr.trim().is_empty() && !p.is_empty() {
                out.debug(&format!("bats stderr for {file}: {}", result.stderr.trim()));
            }
            cases.extend(c);
            problems.extend(p);
        }
        let passed = cases
            .iter()
            .filter(|c| c.outcome == super::CaseOutcome::Passed)
            .count();
        let skipped = cases
            .iter()
            .filter(|c| c.outcome == super::CaseOutcome::Skipped)
            .count();
        out.info(&format!(
            "bats: {} tests, {passed} passed, {} failed, {skipped} skipped",
            cases.len(),
            cases.len() - passed - skipped
        ));
        Ok(match summary(&cases, &problems) {
            None => VerifyReport::passed(cases),
            Some(why) => VerifyReport::failed(cases, why),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verifier::CaseOutcome;
    use serde_json::json;

    fn verifier(v: serde_json::Value) -> Result<BatsVerifier> {
        let serde_json::Value::Object(m) = v else {
            panic!("object")
        };
        BatsVerifier::from_config("i", &m)
    }

    #[test]
    fn default_command_runs_one_file_with_tap_and_timing() {
        let v = verifier(json!({"name": "bats"})).unwrap();
        assert_eq!(
            v.command_for("a b.bats"),
            "cd /tmp/kitchen/bats && bats --tap --timing 'a b.bats'"
        );
        assert_eq!(v.program(), "bats");
    }

    #[test]
    fn keys_change_the_command() {
        let v = verifier(json!({
            "sudo": true, "bats_command": "/opt/bats/bin/bats", "timing": false,
            "bats_flags": "--filter 'web server'", "remote_path": "/srv/t/"
        }))
        .unwrap();
        assert_eq!(
            v.command_for("x.bats"),
            "cd /srv/t && sudo -E /opt/bats/bin/bats --tap --filter 'web server' x.bats"
        );
        assert_eq!(v.program(), "/opt/bats/bin/bats");
        let v = verifier(json!({"bats_flags": ["-x", "a b"]})).unwrap();
        assert!(v.command_for("x.bats").ends_with("-x 'a b' x.bats"));
    }

    #[test]
    fn bad_keys_are_named() {
        for (block, key) in [
            (json!({"bats_flags": "'open"}), "bats_flags"),
            (json!({"remote_path": "relative"}), "remote_path"),
            (json!({"remote_path": "/"}), "remote_path"),
            (json!({"env": {"A-B": "1"}}), "env"),
            (json!({"timing": "yes"}), "timing"),
            (json!({"bats_command": " "}), "bats_command"),
        ] {
            let e = verifier(block).unwrap_err().to_string();
            assert!(e.contains(key), "{key}: {e}");
        }
    }

    #[test]
    fn judging_names_failures_plan_problems_and_odd_exits() {
        let r = tap::parse("1..2\nok 1 a\nnot ok 2 b\n# boom\n", false);
        let (cases, problems) = judge_file("web.bats", 1, &r);
        assert_eq!(cases.len(), 2);
        assert_eq!(cases[1].group.as_deref(), Some("web.bats"));
        assert_eq!(problems, ["web.bats: b"]);

        let r = tap::parse("1..2\nok 1 a\n", false);
        let (_, problems) = judge_file("f.bats", 1, &r);
        assert_eq!(problems, ["f.bats: planned 2 tests but 1 reported"]);

        let r = tap::parse("1..1\nok 1 a\n", false);
        let (_, problems) = judge_file("f.bats", 2, &r);
        assert_eq!(
            problems,
            ["f.bats: bats exited with code 2 although no test failed"]
        );
        let (_, problems) = judge_file("f.bats", 0, &r);
        assert!(problems.is_empty());
    }

    #[test]
    fn summary_counts_failed_cases() {
        let cases = vec![
            CaseResult::new("a", CaseOutcome::Passed, ""),
            CaseResult::new("b", CaseOutcome::Failed, ""),
            CaseResult::new("c", CaseOutcome::Skipped, ""),
        ];
        assert_eq!(summary(&cases, &[]), None);
        assert_eq!(
            summary(&cases, &["x.bats: b".to_string()]).unwrap(),
            "1 of 3 bats tests failed: x.bats: b"
        );
    }

    #[test]
    fn only_bats_files_are_tests() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("b.bats"), "").unwrap();
        std::fs::write(d.path().join("a.bats"), "").unwrap();
        std::fs::write(d.path().join("helper.bash"), "").unwrap();
        std::fs::create_dir(d.path().join("sub.bats")).unwrap();
        assert_eq!(bats_files(d.path()).unwrap(), ["a.bats", "b.bats"]);
    }
}
