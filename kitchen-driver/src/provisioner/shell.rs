//! The `shell` provisioner, with test-kitchen 4.1's keys and flow.
//!
//! Flow (test-kitchen's `Provisioner::Base#call`): `uploads` -> init command (`rm -rf
//! <root>/data; mkdir -p <root>`, skipped with `command`) -> the sandbox (the script and the
//! `data_path` tree as `data/`) sent as one tar stream into `root_path` -> `chmod +x` -> the run
//! command, retried on `retry_on_exit_code` up to `max_retries` more times, `wait_for_retry`
//! seconds apart -> `downloads` (best effort). Each command is wrapped as test-kitchen does:
//! `[command_prefix] sh -c '<exports>\n<code>'` with `TEST_KITCHEN=1`, `CI` and the proxies
//! when set, and every host `TKENV_X=v` exported as `X=v`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use async_trait::async_trait;
use serde::Deserialize;

use super::Provisioner;
use crate::config::PluginConfig;
use crate::config::parse_block;
use crate::error::{Error, Result};
use crate::plugin::{ConfigPaths, PluginContext};
use crate::transport::{Connection, ExecRequest, UploadSet, shell_quote};

/// `arguments`: a list (shell-joined) or a string (appended as is).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(untagged)]
enum Arguments {
    #[default]
    None,
    Str(String),
    List(Vec<serde_json::Value>),
}

fn default_root() -> String {
    "/tmp/kitchen".into()
}
fn default_true() -> bool {
    true
}
fn default_sudo_command() -> String {
    "sudo -E".into()
}
fn default_max_retries() -> u32 {
    1
}
fn default_wait() -> f64 {
    30.0
}

/// The typed `provisioner:` block.
#[derive(Debug, Clone, Deserialize, PartialEq)]
struct ShellConfig {
    #[serde(default)]
    script: Option<String>,
    #[serde(default)]
    command: Option<String>,
    #[serde(default)]
    arguments: Arguments,
    #[serde(default)]
    data_path: Option<String>,
    #[serde(default = "default_root")]
    root_path: String,
    #[serde(default = "default_true")]
    sudo: bool,
    #[serde(default = "default_sudo_command")]
    sudo_command: String,
    #[serde(default)]
    command_prefix: Option<String>,
    #[serde(default)]
    retry_on_exit_code: Vec<i64>,
    #[serde(default = "default_max_retries")]
    max_retries: u32,
    #[serde(
        default = "default_wait",
        deserialize_with = "crate::config::numbers::seconds"
    )]
    wait_for_retry: f64,
    #[serde(default)]
    uploads: BTreeMap<String, String>,
    #[serde(default)]
    downloads: BTreeMap<String, String>,
    #[serde(default)]
    http_proxy: Option<String>,
    #[serde(default)]
    https_proxy: Option<String>,
    #[serde(default)]
    ftp_proxy: Option<String>,
    /// Host variables passed into the instance under their own names, as secrets: through
    /// the exec environment, and redacted from every log and report.
    #[serde(default)]
    secret_env: Vec<String>,
}

/// The shell provisioner.
#[derive(Debug, Clone)]
pub struct ShellProvisioner {
    config: ShellConfig,
}

impl ShellProvisioner {
    /// Reads the `provisioner:` block of `instance`.
    ///
    /// # Errors
    /// [`Error::Config`] naming the bad key.
    pub fn from_config(instance: &str, block: &PluginConfig) -> Result<Self> {
        Ok(Self {
            config: parse_block("provisioner", instance, block)?,
        })
    }

    fn sudo(&self, cmd: &str) -> String {
        if self.config.sudo {
            format!("{} {cmd}", self.config.sudo_command)
        } else {
            cmd.to_string()
        }
    }

    /// The variables the run command gets through the exec call's environment, never
    /// through its text (which is logged): the proxies (`http_proxy` and `HTTP_PROXY`, ...),
    /// and each host `TKENV_X` as `X`.
    ///
    /// # Errors
    /// [`Error::Config`] for a `TKENV_` name that is not a shell variable name.
    fn passed_env(
        &self,
        instance: &str,
        host_env: &[(String, String)],
    ) -> Result<Vec<(String, String)>> {
        let mut env = Vec::new();
        for (k, v) in [
            ("http_proxy", &self.config.http_proxy),
            ("https_proxy", &self.config.https_proxy),
            ("ftp_proxy", &self.config.ftp_proxy),
        ] {
            if let Some(v) = v {
                env.push((k.to_string(), v.clone()));
                env.push((k.to_ascii_uppercase(), v.clone()));
            }
        }
        for name in &self.config.secret_env {
            if !is_shell_name(name) {
                return Err(Error::config(
                    "provisioner",
                    instance,
                    format!("secret_env names `{name}`, which is not a shell variable name"),
                ));
            }
            if let Some((_, v)) = host_env.iter().find(|(k, _)| k == name) {
                env.push((name.clone(), v.clone()));
            }
        }
        for (k, v) in host_env {
            if let Some(name) = k.strip_prefix("TKENV_")
                && !name.is_empty()
            {
                if !is_shell_name(name) {
                    return Err(Error::config(
                        "provisioner",
                        instance,
                        format!(
                            "the host variable {k} would set `{name}` in the instance, which is not a shell variable name (letters, digits and `_`, not starting with a digit); rename or unset it"
                        ),
                    ));
                }
                env.push((name.to_string(), v.clone()));
            }
        }
        Ok(env)
    }

    /// `[command_prefix] sh -c '<exports>\n<code>\n'`, as test-kitchen's
    /// `prefix_command(wrap_shell_code(code))`. `TEST_KITCHEN` and `CI` are written out as
    /// test-kitchen does; the [`passed`](Self::passed_env) variables arrive through the exec
    /// environment and are only named here, so their values never appear in a log.
    fn wrap(
        &self,
        code: &str,
        host_env: &[(String, String)],
        passed: &[(String, String)],
    ) -> String {
        let mut exports = String::from("TEST_KITCHEN=1; export TEST_KITCHEN\n");
        for (k, v) in host_env {
            if k == "CI" {
                exports.push_str(&format!("CI={}; export CI\n", shell_quote(v)));
            }
        }
        if !passed.is_empty() {
            let names: Vec<&str> = passed.iter().map(|(k, _)| k.as_str()).collect();
            exports.push_str(&format!("export {}\n", names.join(" ")));
        }
        let wrapped = format!("sh -c {}", shell_quote(&format!("\n{exports}{code}\n")));
        match &self.config.command_prefix {
            Some(p) if !p.is_empty() => format!("{p} {wrapped}"),
            _ => wrapped,
        }
    }

    /// The sandbox's host sources, checked: the data directory (`data_path`, or `data` found
    /// by test-kitchen's lookup) and the script (`script`, or `bootstrap.sh` found by the
    /// lookup). A configured script is required only when `command` is unset, as test-kitchen
    /// ignores it then.
    ///
    /// # Errors
    /// [`Error::Config`] for a `data_path` that is not a directory or a missing `script`.
    fn sandbox_sources(
        &self,
        paths: &ConfigPaths<'_>,
    ) -> Result<(Option<PathBuf>, Option<PathBuf>)> {
        let data = match &self.config.data_path {
            Some(d) => Some(paths.expand_path(d)),
            None => paths.calculate_path("data", false),
        };
        if let Some(d) = &data
            && !d.is_dir()
        {
            return Err(paths.refuse(
                "provisioner",
                "provisioner.data_path",
                &format!("the data directory {} does not exist", d.display()),
                "create it, or correct or remove `data_path`",
            ));
        }
        let script = match &self.config.script {
            Some(s) => Some(paths.expand_path(s)),
            None => paths.calculate_path("bootstrap.sh", true),
        };
        if self.config.command.is_none()
            && let Some(s) = &script
            && !s.is_file()
        {
            return Err(paths.refuse(
                "provisioner",
                "provisioner.script",
                &format!("the script {} does not exist", s.display()),
                "create it, correct the path, or set `command` instead",
            ));
        }
        Ok((data, script))
    }

    /// The run command (`None`: nothing to run).
    fn run_code(&self, script: Option<&PathBuf>) -> Option<String> {
        if let Some(c) = &self.config.command {
            return Some(c.clone());
        }
        let script = script?;
        let base = script.file_name()?.to_string_lossy().into_owned();
        let mut remote = format!("{}/{base}", self.config.root_path.trim_end_matches('/'));
        match &self.config.arguments {
            Arguments::None => {}
            Arguments::Str(s) if s.is_empty() => {}
            Arguments::Str(s) => {
                remote.push(' ');
                remote.push_str(s);
            }
            Arguments::List(v) if v.is_empty() => {}
            Arguments::List(v) => {
                let mut words = vec![shell_quote(&remote)];
                words.extend(v.iter().map(|a| match a {
                    serde_json::Value::String(s) => shell_quote(s),
                    other => shell_quote(&other.to_string()),
                }));
                remote = words.join(" ");
            }
        }
        Some(self.sudo(&remote))
    }
}

#[async_trait]
impl Provisioner for ShellProvisioner {
    fn name(&self) -> &'static str {
        "shell"
    }

    fn check_files(&self, paths: &ConfigPaths<'_>) -> Result<()> {
        self.sandbox_sources(paths)?;
        for local in self.config.uploads.keys() {
            let path = paths.expand_path(local);
            if std::fs::symlink_metadata(&path).is_err() {
                return Err(paths.refuse(
                    "provisioner",
                    "provisioner.uploads",
                    &format!("the upload source {} does not exist", path.display()),
                    "create it, or correct or remove its `uploads` entry",
                ));
            }
        }
        Ok(())
    }

    async fn converge(&self, ctx: &PluginContext<'_>) -> Result<()> {
        let conn = &ctx.connection;
        let out = ctx.output;
        let host_env = ctx.host_env;
        let root = self.config.root_path.trim_end_matches('/').to_string();
        let passed = self.passed_env(&ctx.instance.name, host_env)?;

        // The sandbox: what to send, read from the host only while it is sent.
        out.info("Preparing files for transfer");
        let (data, script) = self.sandbox_sources(&ctx.paths())?;
        let mut sandbox = UploadSet::new();
        if let Some(data) = data {
            out.info("Preparing data");
            out.debug(&format!("Using data from {}", data.display()));
            sandbox.add_path(&data, "data")?;
        }
        if self.config.command.is_none() {
            out.info("Preparing script");
            match &script {
                Some(s) => {
                    let name = s
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_else(|| "bootstrap.sh".into());
                    let data = std::fs::read(s).map_err(|e| Error::io("reading script", s, e))?;
                    sandbox.add_bytes(&name, data, 0o755);
                }
                None => out.info("No provisioner script file specified, skipping"),
            }
        }

        for (local, remote) in &self.config.uploads {
            let local = ctx.expand_path(local);
            out.info(&format!("Uploading {} to {remote}", local.display()));
            conn.upload(&[local], remote).await?;
        }

        if self.config.command.is_none() {
            let init = format!("{} -rf {root}/data ; mkdir -p {root}", self.sudo("rm"));
            let cmd = self.wrap(&init, host_env, &passed);
            out.debug(&format!("init: {cmd}"));
            execute_with_env(
                conn.as_ref(),
                &cmd,
                &passed,
                "provisioner init command",
                out,
            )
            .await?;
        }
        if !sandbox.is_empty() {
            out.info(&format!("Transferring files to <{}>", ctx.instance.name));
            if self.config.command.is_some() {
                conn.execute(
                    &format!("mkdir -p {}", shell_quote(&root)),
                    "creating root_path",
                    out,
                )
                .await?;
            }
            conn.upload_set(sandbox, &root).await?;
        }

        if let Some(code) = self.run_code(script.as_ref()) {
            let cmd = self.wrap(&code, host_env, &passed);
            let mut tries = 0u32;
            loop {
                tries += 1;
                out.debug(&format!(
                    "Attempting to execute command - try {tries} of {}: {cmd}",
                    self.config.max_retries
                ));
                let result = execute_with_env(conn.as_ref(), &cmd, &passed, "converge", out)
                    .await
                    .map_err(|e| match e {
                        // Name the command as written, not the environment wrapper around it.
                        Error::CommandFailed {
                            instance,
                            what,
                            exit_code,
                            ..
                        } => Error::CommandFailed {
                            instance,
                            what,
                            command: code.clone(),
                            exit_code,
                        },
                        other => other,
                    });
                match result {
                    Ok(_) => break,
                    Err(Error::CommandFailed { exit_code, .. })
                        if tries <= self.config.max_retries
                            && self.config.retry_on_exit_code.contains(&exit_code) =>
                    {
                        out.warn(&format!(
                            "Retryable exit code {exit_code}; retrying in {}s (retry {tries} of {})",
                            self.config.wait_for_retry, self.config.max_retries
                        ));
                        tokio::time::sleep(crate::config::numbers::duration(
                            self.config.wait_for_retry,
                        ))
                        .await;
                    }
                    Err(e) => return Err(e),
                }
            }
        }

        // test-kitchen's provisioner announces its downloads after every run, even when there
        // are none.
        out.info(&format!("Downloading files from <{}>", ctx.instance.name));
        for (remote, local) in &self.config.downloads {
            let local = ctx.expand_path(local);
            out.info(&format!("Downloading {remote} to {}", local.display()));
            match conn.download(std::slice::from_ref(remote), &local).await {
                Ok(()) => {}
                // Something in the instance tried to reach outside the download directory:
                // that fails the converge, it is not a missing file.
                Err(e @ Error::UnsafeDownload { .. }) => return Err(e),
                Err(e) => out.warn(&format!("Download of {remote} failed: {e}")),
            }
        }
        Ok(())
    }
}

/// Whether `name` can be a POSIX shell variable name.
pub(crate) fn is_shell_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Runs `script` with `sh -c` and `env` in its environment, failing on a non-zero exit as
/// [`Connection::execute`] does.
async fn execute_with_env(
    conn: &dyn Connection,
    script: &str,
    env: &[(String, String)],
    what: &str,
    sink: &dyn crate::report::OutputSink,
) -> Result<()> {
    let mut req = ExecRequest::shell(script);
    req.env = env.to_vec();
    let out = conn.exec(&req, sink).await?;
    if out.success() {
        Ok(())
    } else {
        Err(Error::CommandFailed {
            instance: conn.instance().to_string(),
            what: what.to_string(),
            command: req.display(),
            exit_code: out.exit_code,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn prov(v: serde_json::Value) -> ShellProvisioner {
        let serde_json::Value::Object(m) = v else {
            panic!("object")
        };
        ShellProvisioner::from_config("i", &m).unwrap()
    }

    #[test]
    fn defaults_are_test_kitchens() {
        let p = prov(json!({"name": "shell"}));
        assert_eq!(p.config.root_path, "/tmp/kitchen");
        assert!(p.config.sudo);
        assert_eq!(p.config.sudo_command, "sudo -E");
        assert_eq!(p.config.max_retries, 1);
        assert_eq!(p.config.wait_for_retry, 30.0);
        let s = PathBuf::from("/p/test/integration/default/bootstrap.sh");
        assert_eq!(
            p.run_code(Some(&s)).unwrap(),
            "sudo -E /tmp/kitchen/bootstrap.sh"
        );
        assert_eq!(p.run_code(None), None);
    }

    #[test]
    fn arguments_list_is_shell_joined_and_string_appended() {
        let s = PathBuf::from("/p/x.sh");
        let p = prov(json!({"sudo": false, "arguments": ["a b", 3]}));
        assert_eq!(p.run_code(Some(&s)).unwrap(), "/tmp/kitchen/x.sh 'a b' 3");
        let p = prov(json!({"sudo": false, "arguments": "--x $HOME"}));
        assert_eq!(p.run_code(Some(&s)).unwrap(), "/tmp/kitchen/x.sh --x $HOME");
    }

    #[test]
    fn command_wins_without_sudo_and_wrap_exports_env() {
        let p = prov(
            json!({"command": "echo hi", "command_prefix": "env X=1", "http_proxy": "http://p:3128"}),
        );
        assert_eq!(p.run_code(None).unwrap(), "echo hi");
        let env = vec![
            ("TKENV_FOO".to_string(), "bar baz".to_string()),
            ("CI".to_string(), "true".to_string()),
            ("HOME".to_string(), "/root".to_string()),
        ];
        let passed = p.passed_env("i", &env).unwrap();
        let w = p.wrap("echo hi", &env, &passed);
        assert!(w.starts_with("env X=1 sh -c '"), "{w}");
        assert!(w.contains("TEST_KITCHEN=1; export TEST_KITCHEN"), "{w}");
        assert!(w.contains("CI=true; export CI"), "{w}");
        assert!(w.contains("export http_proxy HTTP_PROXY"), "{w}");
        assert!(w.contains(" FOO"), "{w}");
        // Values travel in the environment, never in the (logged) text.
        assert!(!w.contains("bar baz") && !w.contains("p:3128"), "{w}");
        assert!(
            passed.contains(&("FOO".into(), "bar baz".into())),
            "{passed:?}"
        );
        assert!(
            passed.contains(&("HTTP_PROXY".into(), "http://p:3128".into())),
            "{passed:?}"
        );
        assert!(!w.contains("HOME"), "{w}");
    }

    #[test]
    fn tkenv_names_that_are_not_shell_names_are_refused() {
        let p = prov(json!({}));
        for bad in ["TKENV_a-b", "TKENV_1X", "TKENV_X;rm -rf /", "TKENV_A B"] {
            let env = vec![(bad.to_string(), "v".to_string())];
            let e = p.passed_env("i", &env).unwrap_err().to_string();
            assert!(
                e.contains("not a shell variable name") && e.contains(bad),
                "{e}"
            );
        }
        let env = vec![("TKENV__ok_1".to_string(), "v".to_string())];
        assert_eq!(
            p.passed_env("i", &env).unwrap(),
            [("_ok_1".into(), "v".into())]
        );
    }

    #[test]
    fn bad_types_name_the_key() {
        let serde_json::Value::Object(m) = json!({"max_retries": "many"}) else {
            panic!()
        };
        let e = ShellProvisioner::from_config("i", &m)
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_retries"), "{e}");
    }
}
