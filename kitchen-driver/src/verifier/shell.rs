//! The `shell` verifier, with test-kitchen's semantics.
//!
//! `command` (default `true`) runs on the host, in the project directory, through `sh -c`,
//! with `KITCHEN_INSTANCE`, `KITCHEN_PLATFORM`, `KITCHEN_SUITE` and every state key as
//! `KITCHEN_<KEY>` (upper-cased) in its environment. With `remote_exec: true` it runs inside
//! the instance instead. `sleep` waits that many seconds first. A non-zero exit fails verify.

use async_trait::async_trait;
use serde::Deserialize;

use super::{Verifier, VerifyReport};
use crate::config::PluginConfig;
use crate::config::parse_block;
use crate::error::{Error, Result};
use crate::host::HostCommand;
use crate::plugin::PluginContext;
use crate::state::State;

fn default_command() -> String {
    "true".into()
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
struct ShellVerifierConfig {
    #[serde(default = "default_command")]
    command: String,
    #[serde(default, deserialize_with = "crate::config::numbers::seconds")]
    sleep: f64,
    #[serde(default)]
    remote_exec: bool,
}

/// The shell verifier.
#[derive(Debug, Clone)]
pub struct ShellVerifier {
    config: ShellVerifierConfig,
}

/// The environment a local verifier command gets (pure: unit-tested).
pub fn local_env(
    instance: &str,
    suite: &str,
    platform: &str,
    state: &State,
) -> Vec<(String, String)> {
    let mut env = vec![
        ("KITCHEN_INSTANCE".to_string(), instance.to_string()),
        ("KITCHEN_PLATFORM".to_string(), platform.to_string()),
        ("KITCHEN_SUITE".to_string(), suite.to_string()),
    ];
    for (k, v) in state.string_values() {
        let key: String = k
            .to_ascii_uppercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        env.push((format!("KITCHEN_{key}"), v));
    }
    env
}

impl ShellVerifier {
    /// Reads the `verifier:` block of `instance`.
    ///
    /// # Errors
    /// [`Error::Config`] naming the bad key.
    pub fn from_config(instance: &str, block: &PluginConfig) -> Result<Self> {
        Ok(Self {
            config: parse_block("verifier", instance, block)?,
        })
    }
}

#[async_trait]
impl Verifier for ShellVerifier {
    fn name(&self) -> &'static str {
        "shell"
    }

    async fn verify(&self, ctx: &PluginContext<'_>) -> Result<VerifyReport> {
        if self.config.sleep > 0.0 {
            tokio::time::sleep(crate::config::numbers::duration(self.config.sleep)).await;
        }
        let cmd = &self.config.command;
        let code = if self.config.remote_exec {
            ctx.output
                .debug(&format!("Running verifier command in the instance: {cmd}"));
            ctx.connection
                .exec(
                    &crate::transport::ExecRequest::shell(cmd.clone()),
                    ctx.output,
                )
                .await?
                .exit_code
        } else {
            ctx.output
                .debug(&format!("Running verifier command on the host: {cmd}"));
            let env = local_env(
                &ctx.instance.name,
                &ctx.instance.suite,
                &ctx.instance.platform,
                ctx.state,
            );
            HostCommand::shell(cmd, ctx.kitchen_root)
                .envs(ctx.host_env.iter().cloned())
                .envs(env)
                .run(ctx.output)
                .await
                .map_err(|e| Error::io("running verifier command in", ctx.kitchen_root, e))?
        };
        if code == 0 {
            Ok(VerifyReport::passed(Vec::new()))
        } else {
            Ok(VerifyReport::failed(
                Vec::new(),
                format!("verifier command exited with code {code}: {cmd}"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_has_instance_names_and_every_state_key() {
        let mut st = State::new();
        st.set("container_id", "abc");
        st.set("last_action", "setup");
        st.set("port", 8080);
        let env = local_env("default-busybox", "default", "busybox", &st);
        for (k, v) in [
            ("KITCHEN_INSTANCE", "default-busybox"),
            ("KITCHEN_SUITE", "default"),
            ("KITCHEN_PLATFORM", "busybox"),
            ("KITCHEN_CONTAINER_ID", "abc"),
            ("KITCHEN_LAST_ACTION", "setup"),
            ("KITCHEN_PORT", "8080"),
        ] {
            assert!(
                env.contains(&(k.to_string(), v.to_string())),
                "{k} in {env:?}"
            );
        }
    }
}
