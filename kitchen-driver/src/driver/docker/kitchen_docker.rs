//! kitchen-docker's own forms of container settings, translated to this driver's keys (pure:
//! unit-tested): `volume` (its name for `volumes`) and `run_options` (`docker run` options, as
//! a map or a string of flags). `provision_command` is applied when the image is resolved
//! ([`super::image`]): it becomes `RUN` lines of a derived image, as kitchen-docker puts it in
//! the Dockerfile it generates. Options with no counterpart are reported as unused keys
//! (`run_options.<option>`), so the user is told.

use serde::Deserialize;
use serde_json::Value;

use super::config::{DockerConfig, OneOrMany, StrOrNum, TmpfsSpec};

/// `run_options`: a map of `docker run` options, or a string of its flags.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(untagged)]
pub(super) enum RunOptions {
    #[default]
    None,
    Flags(String),
    Map(serde_json::Map<String, Value>),
}

/// The `docker run` flags that take no value.
const BOOLEAN_FLAGS: &[&str] = &["privileged"];

/// `--flag value`, `--flag=value`, `-v value` and bare boolean flags as (option, value) pairs,
/// in order; `None` when the string is not valid shell words.
fn parse_flags(flags: &str) -> Option<Vec<(String, Value)>> {
    let words = shlex::split(flags)?;
    let mut out = Vec::new();
    let mut it = words.into_iter().peekable();
    while let Some(w) = it.next() {
        let Some(flag) = w.strip_prefix("--").or_else(|| w.strip_prefix('-')) else {
            out.push((w, Value::Null));
            continue;
        };
        if let Some((k, v)) = flag.split_once('=') {
            out.push((k.to_string(), Value::String(v.to_string())));
        } else if BOOLEAN_FLAGS.contains(&flag) {
            out.push((flag.to_string(), Value::Bool(true)));
        } else {
            let v = it.next().map(Value::String).unwrap_or(Value::Null);
            out.push((flag.to_string(), v));
        }
    }
    Some(out)
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items.iter().flat_map(strings).collect(),
        Value::String(s) => vec![s.clone()],
        Value::Null => Vec::new(),
        other => vec![other.to_string()],
    }
}

fn push_all(target: &mut OneOrMany, more: Vec<String>) {
    if more.is_empty() {
        return;
    }
    let mut v = std::mem::take(target).into_vec();
    v.extend(more);
    *target = OneOrMany::Many(v);
}

fn push_tmpfs(target: &mut TmpfsSpec, more: Vec<String>) {
    if more.is_empty() {
        return;
    }
    let mut v: Vec<String> = match std::mem::take(target) {
        TmpfsSpec::None => Vec::new(),
        TmpfsSpec::One(s) => vec![s],
        TmpfsSpec::List(v) => v,
        TmpfsSpec::Map(m) => m
            .into_iter()
            .map(|(p, o)| if o.is_empty() { p } else { format!("{p}:{o}") })
            .collect(),
    };
    v.extend(more);
    *target = TmpfsSpec::List(v);
}

/// Folds `volume` and `run_options` into `config`'s own keys, and returns the `run_options`
/// entries that have no counterpart here (as `run_options.<option>`), or a message when
/// `run_options` cannot be read.
pub(super) fn translate(config: &mut DockerConfig) -> Result<Vec<String>, String> {
    let volume = std::mem::take(&mut config.volume).into_vec();
    push_all(&mut config.volumes, volume);
    let entries: Vec<(String, Value)> = match std::mem::take(&mut config.run_options) {
        RunOptions::None => Vec::new(),
        RunOptions::Map(m) => m.into_iter().collect(),
        RunOptions::Flags(s) => parse_flags(&s).ok_or_else(|| {
            format!("key `run_options`: `{s}` is not valid shell words (unbalanced quotes?)")
        })?,
    };
    let mut unused = Vec::new();
    for (option, value) in entries {
        let text = || strings(&value).into_iter().next().unwrap_or_default();
        match option.replace('_', "-").as_str() {
            "tmpfs" => push_tmpfs(&mut config.tmpfs, strings(&value)),
            "volume" | "v" => push_all(&mut config.volumes, strings(&value)),
            "cap-add" => push_all(&mut config.cap_add, strings(&value)),
            "cap-drop" => push_all(&mut config.cap_drop, strings(&value)),
            "privileged" => config.privileged = value.as_bool().unwrap_or(text() == "true"),
            "memory" | "m" => config.memory = Some(StrOrNum::Str(text())),
            "cpus" => config.cpus = text().parse().ok().or(config.cpus),
            "user" | "u" => config.user = Some(text()),
            "hostname" | "h" => config.hostname = Some(text()),
            "network" | "net" => config.network_mode = Some(text()),
            "publish" | "p" => config
                .forward
                .extend(strings(&value).into_iter().map(StrOrNum::Str)),
            "env" | "e" => {
                let mut env = std::mem::take(&mut config.env).into_vec();
                env.extend(strings(&value));
                config.env = super::config::EnvSpec::List(env);
            }
            "label" | "l" => {
                for l in strings(&value) {
                    let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
                    config
                        .labels
                        .insert(k.to_string(), StrOrNum::Str(v.to_string()));
                }
            }
            _ => unused.push(format!("run_options.{option}")),
        }
    }
    Ok(unused)
}

/// The Dockerfile of the image derived from `base` by kitchen-docker's `provision_command`s.
pub(super) fn provision_dockerfile(base: &str, commands: &[String]) -> String {
    let mut s = format!("FROM {base}\n");
    for c in commands {
        s.push_str("RUN ");
        s.push_str(c);
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn config(v: Value) -> DockerConfig {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn volume_and_a_run_options_map_become_the_driver_keys() {
        // dev-sec/ansible-os-hardening's kitchen.yml (kitchen-docker) as written.
        let mut c = config(json!({
            "image": "x", "volume": ["/sys/fs/cgroup:/sys/fs/cgroup:ro"],
            "run_options": {"tmpfs": ["/tmp", "/run", "/run/lock"], "cap-add": "NET_ADMIN",
                            "env": ["A=1"], "label": "team=infra", "ulimit": "nofile=1024"},
            "tmpfs": "/var/cache",
        }));
        let unused = translate(&mut c).unwrap();
        assert_eq!(unused, ["run_options.ulimit"]);
        assert_eq!(
            c.volumes.clone().into_vec(),
            ["/sys/fs/cgroup:/sys/fs/cgroup:ro"]
        );
        assert_eq!(
            c.tmpfs,
            TmpfsSpec::List(vec![
                "/var/cache".into(),
                "/tmp".into(),
                "/run".into(),
                "/run/lock".into()
            ])
        );
        assert_eq!(c.cap_add.clone().into_vec(), ["NET_ADMIN"]);
        assert_eq!(c.env.clone().into_vec(), ["A=1"]);
        assert_eq!(c.labels["team"], StrOrNum::Str("infra".into()));
    }

    #[test]
    fn a_run_options_string_is_read_as_docker_run_flags() {
        let mut c = config(json!({
            "image": "x",
            "run_options": "--privileged -v /a:/b --tmpfs=/tmp -e 'MSG=hello world' --memory 512m --init",
        }));
        let unused = translate(&mut c).unwrap();
        assert_eq!(unused, ["run_options.init"]);
        assert!(c.privileged);
        assert_eq!(c.volumes.clone().into_vec(), ["/a:/b"]);
        assert_eq!(c.tmpfs, TmpfsSpec::List(vec!["/tmp".into()]));
        assert_eq!(c.env.clone().into_vec(), ["MSG=hello world"]);
        assert_eq!(c.memory, Some(StrOrNum::Str("512m".into())));
        let mut bad = config(json!({"image": "x", "run_options": "-v 'unbalanced"}));
        assert!(translate(&mut bad).unwrap_err().contains("run_options"));
    }

    #[test]
    fn provision_commands_are_run_lines() {
        assert_eq!(
            provision_dockerfile(
                "kitchen/debian-12:latest",
                &["echo a > /a".into(), "true".into()]
            ),
            "FROM kitchen/debian-12:latest\nRUN echo a > /a\nRUN true\n"
        );
    }
}
