//! The `provisioner:` block of `ansible_playbook`, typed as kitchen-ansible users write it.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// A string (split like a shell would) or a list of words.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(untagged)]
pub(super) enum Words {
    #[default]
    None,
    One(String),
    Many(Vec<Value>),
}

impl Words {
    pub(super) fn split(&self, key: &str) -> std::result::Result<Vec<String>, String> {
        match self {
            Words::None => Ok(Vec::new()),
            Words::One(s) => shlex::split(s)
                .ok_or_else(|| format!("key `{key}`: `{s}` is not valid shell words")),
            Words::Many(v) => Ok(v.iter().map(scalar_text).collect()),
        }
    }

    /// A comma-joined list (for `--tags`), `None` when empty.
    pub(super) fn joined(&self) -> Option<String> {
        let v: Vec<String> = match self {
            Words::None => Vec::new(),
            Words::One(s) => vec![s.clone()],
            Words::Many(v) => v.iter().map(scalar_text).collect(),
        };
        let v: Vec<String> = v.into_iter().filter(|s| !s.is_empty()).collect();
        (!v.is_empty()).then(|| v.join(","))
    }
}

pub(super) fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `ansible_verbosity`: a level number or one of kitchen-ansible's names.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub(super) enum Verbosity {
    Num(i64),
    Name(String),
}

impl Default for Verbosity {
    fn default() -> Self {
        Verbosity::Num(1)
    }
}

impl Verbosity {
    pub(super) fn level(&self) -> Option<usize> {
        match self {
            Verbosity::Num(n) if *n > 0 => Some((*n).min(6) as usize),
            Verbosity::Num(_) => None,
            Verbosity::Name(s) => match s.trim_start_matches(':').to_ascii_lowercase().as_str() {
                "info" => Some(1),
                "warn" => Some(2),
                "debug" => Some(3),
                "trace" => Some(4),
                other => other.parse::<usize>().ok().filter(|n| *n > 0),
            },
        }
    }
}

/// A path, or `false`/nothing (kitchen-ansible's default for `requirements_path`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(untagged)]
pub(super) enum OptPath {
    #[default]
    None,
    Off(bool),
    Path(String),
}

impl OptPath {
    pub(super) fn path(&self) -> Option<&str> {
        match self {
            OptPath::Path(p) if !p.is_empty() => Some(p),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub(super) struct Attributes {
    pub(super) extra_vars: Option<serde_json::Map<String, Value>>,
    pub(super) tags: Option<Words>,
}

/// The typed `provisioner:` block.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub(super) struct AnsibleConfig {
    pub(super) playbook: Option<String>,
    pub(super) roles_path: Option<String>,
    pub(super) role_name: Option<String>,
    pub(super) group_vars_path: OptPath,
    pub(super) host_vars_path: OptPath,
    pub(super) extra_vars: serde_json::Map<String, Value>,
    /// Host variables that hold secrets (redacted from logs and reports). `ansible-playbook`
    /// runs on the host and already sees them; read here so the key is not reported unused.
    #[allow(dead_code)]
    pub(super) secret_env: Vec<String>,
    pub(super) attributes: Option<Attributes>,
    pub(super) tags: Words,
    pub(super) skip_tags: Words,
    pub(super) ansible_verbose: bool,
    pub(super) ansible_verbosity: Verbosity,
    pub(super) ansible_extra_flags: Words,
    pub(super) ansible_check: bool,
    pub(super) ansible_diff: bool,
    pub(super) ansible_vault_password_file: OptPath,
    pub(super) ansible_cfg_path: OptPath,
    pub(super) ansible_binary_path: Option<String>,
    pub(super) requirements_path: OptPath,
    pub(super) hosts: Option<String>,
    pub(super) env_vars: BTreeMap<String, Value>,
    pub(super) env: BTreeMap<String, Value>,
    pub(super) idempotency_test: bool,
    pub(super) ansible_connection: Option<String>,
}
