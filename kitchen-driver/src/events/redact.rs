//! Secrets: the values that must never reach a log line, a report, `diagnose` or a state
//! file, and the one place they are replaced by `***`.
//!
//! A value is a secret when it comes from
//! - a host variable named `TKENV_*` (passed into the instance), or whose name contains
//!   `TOKEN`, `SECRET` or `PASSWORD`, or starts with `AWS_` (any case; but not
//!   `AWS_REGION`, `AWS_DEFAULT_REGION`, `AWS_PROFILE` or `AWS_ENDPOINT_URL`, which are places);
//! - a host variable listed in a `secret_env:` list of any kitchen.yml block;
//! - a kitchen.yml key with such a name, at any depth (an `extra_vars` entry
//!   `db_password: x`, a Docker `env` entry `API_TOKEN=x`);
//! - the password of a URL under a `*_proxy` key (`http://user:pw@proxy:3128`).
//!
//! Values shorter than [`MIN_SECRET_LEN`] characters are not redacted: hiding every `true`
//! or `1` would make the output unreadable and would hide nothing worth hiding.
//!
//! The register is process-wide, because a run writes through many paths (the event bus
//! that feeds the logs, JUnit and JSON; the state file's `last_error`; `diagnose`) and each
//! must see every secret that any instance's configuration named. It only grows.

use std::borrow::Cow;
use std::sync::RwLock;

use crate::config::InstanceConfig;

/// What a secret is replaced with.
pub const REDACTED: &str = "***";

/// The shortest value treated as a secret (see the module documentation).
pub const MIN_SECRET_LEN: usize = 6;

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// `AWS_*` variables that name a place, not a credential: redacting `us-east-1` or an
/// endpoint would hide where a run went and nothing secret.
const AWS_NOT_SECRET: &[&str] = &[
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL",
];

/// Whether a variable or key named `name` holds a secret by its name alone.
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    upper.starts_with("TKENV_")
        || (upper.starts_with("AWS_") && !AWS_NOT_SECRET.contains(&upper.as_str()))
        || ["TOKEN", "SECRET", "PASSWORD"]
            .iter()
            .any(|w| upper.contains(w))
}

/// Adds `value` to the register (ignored when shorter than [`MIN_SECRET_LEN`]).
pub fn register(value: &str) {
    if value.chars().count() < MIN_SECRET_LEN {
        return;
    }
    let mut secrets = SECRETS.write().unwrap_or_else(|p| p.into_inner());
    if !secrets.iter().any(|s| s == value) {
        secrets.push(value.to_string());
        // Longest first, so that a secret containing another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// Registers the secrets of the host environment `env` and of `instance`'s configuration
/// (see the module documentation).
pub fn register_instance(instance: &InstanceConfig, env: &[(String, String)]) {
    let mut named: Vec<String> = Vec::new();
    for block in [
        &instance.driver,
        &instance.provisioner,
        &instance.verifier,
        &instance.transport,
        &instance.lifecycle,
    ] {
        let value = serde_json::Value::Object(block.clone());
        collect_config_secrets(&value, None, &mut named);
        if let Some(list) = block.get("secret_env").and_then(|v| v.as_array()) {
            for name in list.iter().filter_map(|v| v.as_str()) {
                if let Some((_, v)) = env.iter().find(|(k, _)| k == name) {
                    register(v);
                }
            }
        }
    }
    for value in named {
        register(&value);
    }
    register_env(env);
}

/// Registers the values of host variables whose names mark them as secrets.
pub fn register_env(env: &[(String, String)]) {
    for (k, v) in env {
        if is_secret_name(k) {
            register(v);
        }
    }
}

/// Walks a configuration value, collecting the values under secret names and the passwords
/// of proxy URLs.
fn collect_config_secrets(value: &serde_json::Value, key: Option<&str>, out: &mut Vec<String>) {
    use serde_json::Value as J;
    match value {
        J::Object(map) => {
            for (k, v) in map {
                collect_config_secrets(v, Some(k), out);
            }
        }
        J::Array(items) => {
            for item in items {
                collect_config_secrets(item, key, out);
            }
        }
        J::String(s) => {
            if key.is_some_and(is_secret_name) {
                out.push(s.clone());
            } else if let Some((name, v)) = s.split_once('=')
                && is_secret_name(name)
            {
                out.push(v.to_string());
            }
            if key.is_some_and(|k| k.to_ascii_lowercase().ends_with("_proxy"))
                && let Some(pw) = url_password(s)
            {
                out.push(pw.to_string());
            }
        }
        J::Number(n) if key.is_some_and(is_secret_name) => out.push(n.to_string()),
        _ => {}
    }
}

/// The password in `scheme://user:password@host...`, if any.
fn url_password(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let userinfo = authority.rsplit_once('@')?.0;
    userinfo
        .split_once(':')
        .map(|(_, pw)| pw)
        .filter(|p| !p.is_empty())
}

/// `text` with every registered secret replaced by [`REDACTED`].
pub fn redact(text: &str) -> Cow<'_, str> {
    let secrets = SECRETS.read().unwrap_or_else(|p| p.into_inner());
    redact_with(&secrets, text)
}

fn redact_with<'a>(secrets: &[String], text: &'a str) -> Cow<'a, str> {
    let mut out = Cow::Borrowed(text);
    for s in secrets {
        if out.contains(s.as_str()) {
            out = Cow::Owned(out.replace(s.as_str(), REDACTED));
        }
    }
    out
}

/// `value` with every registered secret replaced in its serialized form (a string field,
/// or part of one), or `value` itself when it holds none. For the event bus: one pass for
/// every kind of event.
pub fn redact_serde<T>(value: T) -> T
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    let secrets = SECRETS.read().unwrap_or_else(|p| p.into_inner());
    if secrets.is_empty() {
        return value;
    }
    let Ok(text) = serde_json::to_string(&value) else {
        return value;
    };
    // A secret inside a JSON string appears escaped (a `"` as `\"`), so look for that form.
    let escaped: Vec<String> = secrets
        .iter()
        .filter_map(|s| serde_json::to_string(s).ok())
        .map(|q| q[1..q.len() - 1].to_string())
        .collect();
    match redact_with(&escaped, &text) {
        Cow::Borrowed(_) => value,
        Cow::Owned(clean) => serde_json::from_str(&clean).unwrap_or(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_mark_secrets() {
        for n in [
            "TKENV_X",
            "GITHUB_TOKEN",
            "db_password",
            "AWS_ACCESS_KEY_ID",
            "MySecret",
        ] {
            assert!(is_secret_name(n), "{n}");
        }
        for n in [
            "HOME",
            "PATH",
            "CI",
            "name",
            "port",
            "AWS_REGION",
            "AWS_ENDPOINT_URL",
        ] {
            assert!(!is_secret_name(n), "{n}");
        }
    }

    #[test]
    fn replaces_the_longest_secret_first_and_ignores_short_values() {
        let secrets = vec!["hunter2-long".to_string(), "hunter2".to_string()];
        assert_eq!(
            redact_with(&secrets, "pw=hunter2-long or hunter2"),
            "pw=*** or ***"
        );
        assert!(matches!(redact_with(&secrets, "nothing"), Cow::Borrowed(_)));
        register("short");
        assert_eq!(redact("a short line"), "a short line");
    }

    #[test]
    fn finds_secrets_in_configuration_values() {
        let config = serde_json::json!({
            "http_proxy": "http://bob:pr0xy-pass@proxy:3128",
            "https_proxy": "http://proxy:3128",
            "extra_vars": {"db": {"db_password": "nested-pass"}, "name": "web"},
            "env": ["API_TOKEN=env-token-1", "LANG=C"],
            "port": 8080,
        });
        let mut out = Vec::new();
        collect_config_secrets(&config, None, &mut out);
        out.sort();
        assert_eq!(out, ["env-token-1", "nested-pass", "pr0xy-pass"]);
        assert_eq!(url_password("http://u@h:1"), None);
    }

    #[test]
    fn serialized_values_are_redacted_inside_strings() {
        register("quote\"d-secret-77");
        let v = serde_json::json!({"line": "got quote\"d-secret-77 here", "n": 1});
        let clean = redact_serde(v);
        assert_eq!(clean["line"], "got *** here");
        assert_eq!(clean["n"], 1);
    }
}
