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
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use super::Provisioner;
use crate::config::PluginConfig;
use crate::config::parse_block;
use crate::error::{Error, Result};
use crate::plugin::PluginContext;
use crate::transport::{TarBuilder, shell_quote};

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
    #[serde(default = "default_wait")]
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

    /// `[command_prefix] sh -c '<exports>\n<code>\n'`, as test-kitchen's
    /// `prefix_command(wrap_shell_code(code))`.
    fn wrap(&self, code: &str, host_env: &[(String, String)]) -> String {
        let mut env: Vec<(String, String)> = vec![("TEST_KITCHEN".into(), "1".into())];
        for (k, v) in host_env {
            if k == "CI" {
                env.push((k.clone(), v.clone()));
            }
        }
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
        for (k, v) in host_env {
            if let Some(name) = k.strip_prefix("TKENV_")
                && !name.is_empty()
            {
                env.push((name.to_string(), v.clone()));
            }
        }
        let exports: String = env
            .iter()
            .map(|(k, v)| format!("{k}={}; export {k}\n", shell_quote(v)))
            .collect();
        let wrapped = format!("sh -c {}", shell_quote(&format!("\n{exports}{code}\n")));
        match &self.config.command_prefix {
            Some(p) if !p.is_empty() => format!("{p} {wrapped}"),
            _ => wrapped,
        }
    }

    /// The script on the host: `script` as configured (relative to kitchen_root) or the
    /// default `bootstrap.sh` lookup.
    fn script(&self, ctx: &PluginContext<'_>) -> Option<PathBuf> {
        match &self.config.script {
            Some(s) => Some(ctx.expand_path(s)),
            None => ctx.calculate_path("bootstrap.sh", true),
        }
    }

    fn data_path(&self, ctx: &PluginContext<'_>) -> Option<PathBuf> {
        match &self.config.data_path {
            Some(d) => Some(ctx.expand_path(d)),
            None => ctx.calculate_path("data", false),
        }
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

    async fn converge(&self, ctx: &PluginContext<'_>) -> Result<()> {
        let conn = &ctx.connection;
        let out = ctx.output;
        let host_env = ctx.host_env;
        let root = self.config.root_path.trim_end_matches('/').to_string();

        // The sandbox, built directly as a tar stream.
        out.info("Preparing files for transfer");
        let script = self.script(ctx);
        let mut sandbox = TarBuilder::new();
        let mut sandbox_items = 0;
        if let Some(data) = self.data_path(ctx) {
            if !data.is_dir() {
                return Err(Error::config(
                    "provisioner",
                    &ctx.instance.name,
                    format!("data_path {} is not a directory", data.display()),
                ));
            }
            out.info("Preparing data");
            out.debug(&format!("Using data from {}", data.display()));
            sandbox.add_path(&data, "data")?;
            sandbox_items += 1;
        }
        if self.config.command.is_none() {
            out.info("Preparing script");
            match &script {
                Some(s) if s.is_file() => {
                    let name = s
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_else(|| "bootstrap.sh".into());
                    let data = std::fs::read(s).map_err(|e| Error::io("reading script", s, e))?;
                    sandbox.add_bytes(&name, &data, 0o755)?;
                    sandbox_items += 1;
                }
                Some(s) => {
                    return Err(Error::config(
                        "provisioner",
                        &ctx.instance.name,
                        format!("script {} does not exist", s.display()),
                    ));
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
            let cmd = self.wrap(&init, host_env);
            out.debug(&format!("init: {cmd}"));
            conn.execute(&cmd, "provisioner init command", out).await?;
        }
        if sandbox_items > 0 {
            let tar = sandbox.finish()?;
            out.info(&format!("Transferring files to <{}>", ctx.instance.name));
            if self.config.command.is_some() {
                conn.execute(
                    &format!("mkdir -p {}", shell_quote(&root)),
                    "creating root_path",
                    out,
                )
                .await?;
            }
            conn.upload_tar(tar, &root).await?;
        }

        if let Some(code) = self.run_code(script.as_ref()) {
            let cmd = self.wrap(&code, host_env);
            let mut tries = 0u32;
            loop {
                tries += 1;
                out.debug(&format!(
                    "Attempting to execute command - try {tries} of {}: {cmd}",
                    self.config.max_retries
                ));
                let result = conn
                    .execute(&cmd, "converge", out)
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
                        tokio::time::sleep(Duration::from_secs_f64(
                            self.config.wait_for_retry.max(0.0),
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
            if let Err(e) = conn.download(std::slice::from_ref(remote), &local).await {
                out.warn(&format!("Download of {remote} failed: {e}"));
            }
        }
        Ok(())
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
        let w = p.wrap("echo hi", &env);
        assert!(w.starts_with("env X=1 sh -c '"), "{w}");
        assert!(w.contains("TEST_KITCHEN=1; export TEST_KITCHEN"), "{w}");
        assert!(w.contains("CI=true; export CI"), "{w}");
        assert!(
            w.contains("http_proxy=http://p:3128; export http_proxy"),
            "{w}"
        );
        assert!(w.contains("FOO="), "{w}");
        assert!(!w.contains("HOME"), "{w}");
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
