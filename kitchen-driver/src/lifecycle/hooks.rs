//! Lifecycle hooks: `pre_<action>`, `post_<action>` and `finally_<action>` commands.
//!
//! As test-kitchen's `LifecycleHooks`: a hook is a string (a local command) or a map with
//! `local:` (and `cwd`, relative to kitchen_root, `environment`, `user`) or `remote:` (and
//! `skippable`), both with `includes`/`excludes` platform filters (exact names or `/regex/`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use crate::action::Action;
use crate::config::filter::{NameKind, PlatformFilter};
use crate::config::{ConfigOrigins, InstanceConfig, PluginConfig};
use crate::error::{Error, Result};

/// When a hook runs relative to its action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Phase {
    /// Before the action; a failure fails the action.
    Pre,
    /// After a successful action.
    Post,
    /// After the action whatever happened.
    Finally,
}

impl Phase {
    fn prefix(self) -> &'static str {
        match self {
            Phase::Pre => "pre",
            Phase::Post => "post",
            Phase::Finally => "finally",
        }
    }
}

/// What a hook runs.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum HookCommand {
    /// A command on the host, through `sh -c`.
    Local {
        /// The command line.
        command: String,
        /// Working directory (absolute; kitchen_root unless set).
        cwd: Option<PathBuf>,
        /// Extra environment.
        environment: Vec<(String, String)>,
        /// Run as this user (through `sudo -u`).
        user: Option<String>,
    },
    /// A command inside the instance.
    Remote {
        /// The command line.
        command: String,
        /// Skip (without failing) when the instance is not created or the command fails.
        skippable: bool,
    },
}

/// One hook with its platform filter.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Hook {
    /// What it runs.
    pub command: HookCommand,
    /// The platforms it runs on (`includes`/`excludes`, read as for suites).
    pub filter: PlatformFilter,
}

impl Hook {
    /// Whether the hook applies to the platform named `platform`.
    pub fn applies_to(&self, platform: &str) -> bool {
        self.filter.matches(platform, NameKind::String)
    }
}

/// All hooks of one instance, by action and phase.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hooks {
    map: BTreeMap<(Action, Phase), Vec<Hook>>,
}

impl Hooks {
    /// Reads the merged `lifecycle:` block of an instance (keys other than
    /// `<pre|post|finally>_<action>` are ignored, as test-kitchen does).
    ///
    /// # Errors
    /// [`Error::Config`] for a hook that is neither a string nor a map with `local`/`remote`.
    pub fn from_config(instance: &InstanceConfig, kitchen_root: &std::path::Path) -> Result<Self> {
        Self::parse(
            &instance.name,
            &instance.lifecycle,
            &instance.origins,
            kitchen_root,
        )
    }

    fn parse(
        instance: &str,
        block: &PluginConfig,
        origins: &ConfigOrigins,
        kitchen_root: &std::path::Path,
    ) -> Result<Self> {
        let mut map = BTreeMap::new();
        // Names the entry as written (`suites[0].lifecycle.pre_create[1]`, file and line).
        let bad = |entry: String, message: String| {
            Error::config(
                "lifecycle",
                instance,
                format!(
                    "{}: {message}; write a hook as a command string, or a map with `local:` or `remote:` (and `includes`, `excludes`, `cwd`, `environment`, `user`, `skippable`)",
                    origins.describe(&entry)
                ),
            )
        };
        for action in Action::ALL {
            for phase in [Phase::Pre, Phase::Post, Phase::Finally] {
                let key = format!("{}_{}", phase.prefix(), action.as_str());
                let Some(value) = block.get(&key) else {
                    continue;
                };
                let items: Vec<&Value> = match value {
                    Value::Null => Vec::new(),
                    Value::Array(v) => v.iter().collect(),
                    other => vec![other],
                };
                let mut hooks = Vec::new();
                for (j, item) in items.into_iter().enumerate() {
                    hooks.push(
                        parse_hook(item, kitchen_root)
                            .map_err(|m| bad(format!("lifecycle.{key}[{j}]"), m))?,
                    );
                }
                map.insert((action, phase), hooks);
            }
        }
        Ok(Self { map })
    }

    /// The hooks for an action and phase that apply to `platform`, in order.
    pub fn for_phase(&self, action: Action, phase: Phase, platform: &str) -> Vec<&Hook> {
        self.map
            .get(&(action, phase))
            .map(|v| v.iter().filter(|h| h.applies_to(platform)).collect())
            .unwrap_or_default()
    }
}

/// A hook's `includes`/`excludes` (the loader has already checked them, with locations).
fn platform_filter(
    m: &serde_json::Map<String, Value>,
) -> std::result::Result<PlatformFilter, String> {
    let includes = string_list(m.get("includes"))?;
    let excludes = string_list(m.get("excludes"))?;
    PlatformFilter::parse(&includes, &excludes)
        .map_err(|(entry, e)| format!("invalid regular expression `{entry}`: {e}"))
}

fn string_list(v: Option<&Value>) -> std::result::Result<Vec<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("includes/excludes entries must be strings, not {x}"))
            })
            .collect(),
        Some(other) => Err(format!("includes/excludes must be a list, not {other}")),
    }
}

fn parse_hook(item: &Value, kitchen_root: &std::path::Path) -> std::result::Result<Hook, String> {
    match item {
        Value::String(s) => Ok(Hook {
            command: HookCommand::Local {
                command: s.clone(),
                cwd: None,
                environment: Vec::new(),
                user: None,
            },
            filter: PlatformFilter::default(),
        }),
        Value::Object(m) => {
            let filter = platform_filter(m)?;
            let command = if let Some(cmd) = m.get("local") {
                let command = cmd
                    .as_str()
                    .ok_or_else(|| format!("`local` must be a string, not {cmd}"))?
                    .to_string();
                let cwd = m
                    .get("cwd")
                    .and_then(Value::as_str)
                    .map(|c| kitchen_root.join(c));
                let environment = match m.get("environment") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Object(env)) => env
                        .iter()
                        .map(|(k, v)| {
                            let v = match v {
                                Value::String(s) => s.clone(),
                                other => other.to_string(),
                            };
                            (k.clone(), v)
                        })
                        .collect(),
                    Some(other) => return Err(format!("`environment` must be a map, not {other}")),
                };
                HookCommand::Local {
                    command,
                    cwd,
                    environment,
                    user: m.get("user").and_then(Value::as_str).map(str::to_string),
                }
            } else if let Some(cmd) = m.get("remote") {
                HookCommand::Remote {
                    command: cmd
                        .as_str()
                        .ok_or_else(|| format!("`remote` must be a string, not {cmd}"))?
                        .to_string(),
                    skippable: m.get("skippable").and_then(Value::as_bool).unwrap_or(false),
                }
            } else {
                return Err(format!("a hook needs `local:` or `remote:`, got {item}"));
            };
            Ok(Hook { command, filter })
        }
        other => Err(format!("a hook is a string or a map, not {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::Path;

    fn hooks(v: Value) -> Result<Hooks> {
        let Value::Object(m) = v else {
            panic!("object")
        };
        Hooks::parse("i", &m, &ConfigOrigins::default(), Path::new("/proj"))
    }

    #[test]
    fn strings_and_maps_parse_in_order_with_filters() {
        let h = hooks(json!({
            "pre_create": "echo one",
            "post_converge": [
                {"local": "echo two", "cwd": "sub", "environment": {"A": 1}},
                {"remote": "echo three", "skippable": true, "includes": ["debian-12"]},
                {"local": "echo four", "excludes": ["/^busy/"]}
            ],
            "name": "ignored"
        }))
        .unwrap();
        let pre = h.for_phase(Action::Create, Phase::Pre, "busybox");
        assert_eq!(pre.len(), 1);
        let post_bb = h.for_phase(Action::Converge, Phase::Post, "busybox");
        assert_eq!(post_bb.len(), 1);
        assert_eq!(
            post_bb[0].command,
            HookCommand::Local {
                command: "echo two".into(),
                cwd: Some(PathBuf::from("/proj/sub")),
                environment: vec![("A".into(), "1".into())],
                user: None
            }
        );
        let post_deb = h.for_phase(Action::Converge, Phase::Post, "debian-12");
        assert_eq!(post_deb.len(), 3);
        assert!(matches!(
            post_deb[1].command,
            HookCommand::Remote {
                skippable: true,
                ..
            }
        ));
        assert!(h.for_phase(Action::Verify, Phase::Finally, "x").is_empty());
    }

    #[test]
    fn hook_filters_are_the_suites_platform_filter() {
        let h = hooks(json!({
            "pre_create": [
                {"local": "a", "includes": "/ubuntu/i"},
                {"local": "b", "includes": ["centos-7"]},
                {"local": "c", "excludes": [r"/^\h+$/"]}
            ]
        }))
        .unwrap();
        let run = |p: &str| -> Vec<String> {
            h.for_phase(Action::Create, Phase::Pre, p)
                .iter()
                .map(|h| match &h.command {
                    HookCommand::Local { command, .. } => command.clone(),
                    HookCommand::Remote { command, .. } => command.clone(),
                })
                .collect()
        };
        assert_eq!(run("Ubuntu-22.04"), ["a", "c"]);
        assert_eq!(run("centos-7"), ["b", "c"]);
        // Ruby's \h (a hex digit), which the regex crate alone does not know.
        assert_eq!(run("beef"), Vec::<String>::new());
    }

    #[test]
    fn bad_hooks_are_errors_naming_the_key() {
        let e = hooks(json!({"pre_verify": [{"cwd": "x"}]}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("pre_verify"), "{e}");
        let e = hooks(json!({"post_create": [42]})).unwrap_err().to_string();
        assert!(e.contains("post_create"), "{e}");
    }
}
