//! `requirements_path`: what a requirements file asks for, which sources are on this machine,
//! local role directories linked in directly, and why ansible-galaxy failed (pure:
//! unit-tested).

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::config::scalar_text;
use super::output::fallback_reason;

/// Whether a galaxy requirement's source is on this machine (pure: unit-tested).
fn is_local_source(src: &str, kitchen_root: &Path) -> bool {
    let s = src.trim();
    if s.starts_with("file://") || s.starts_with("git+file://") {
        return true;
    }
    if s.starts_with('/') || s.starts_with("./") || s.starts_with("../") || s.starts_with("~/") {
        return true;
    }
    // A bare relative path counts when it exists (ansible-galaxy runs in the project).
    !s.contains("://")
        && (s.contains('/') || s.ends_with(".tar.gz"))
        && kitchen_root.join(s).exists()
}

/// The role entries of a requirements document whose source is a directory on this machine
/// (a path, absolute or relative to the project, or `file://` + a directory), as (role name,
/// directory), and the document without them (pure but for looking at the paths).
pub fn split_local_role_dirs(doc: Value, kitchen_root: &Path) -> (Vec<(String, PathBuf)>, Value) {
    let local_dir = |src: &str| -> Option<PathBuf> {
        let s = src.trim();
        if s.contains("://") && !s.starts_with("file://") {
            return None;
        }
        let p = kitchen_root.join(s.strip_prefix("file://").unwrap_or(s));
        p.is_dir().then_some(p)
    };
    let mut found = Vec::new();
    let mut keep = |r: &Value| -> bool {
        let (src, name) = match r {
            Value::String(s) => (s.clone(), None),
            Value::Object(m) => match m.get("src").or_else(|| m.get("name")) {
                Some(src) => (scalar_text(src), m.get("name").map(scalar_text)),
                None => return true,
            },
            _ => return true,
        };
        let Some(dir) = local_dir(&src) else {
            return true;
        };
        let name = name.unwrap_or_else(|| {
            dir.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
        found.push((name, dir));
        false
    };
    let rest = match doc {
        Value::Array(v) => Value::Array(v.into_iter().filter(|r| keep(r)).collect()),
        Value::Object(mut m) => {
            if let Some(Value::Array(v)) = m.remove("roles") {
                m.insert(
                    "roles".into(),
                    Value::Array(v.into_iter().filter(|r| keep(r)).collect()),
                );
            }
            Value::Object(m)
        }
        other => other,
    };
    (found, rest)
}

/// Why ansible-galaxy failed: its `[ERROR]:` and `[WARNING]: - X was NOT installed` messages,
/// which it wraps over several lines before its closing `ERROR! - you can use
/// --ignore-errors ...`, which says nothing by itself (pure: unit-tested).
pub(super) fn galaxy_reason(lines: &[String]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut in_message = false;
    for line in lines {
        let t = line.trim();
        if t.starts_with("[ERROR]:") || t.starts_with("[WARNING]: -") {
            in_message = true;
            parts.push(
                t.trim_start_matches("[ERROR]:")
                    .trim_start_matches("[WARNING]:")
                    .trim()
                    .to_string(),
            );
        } else if in_message
            && !t.is_empty()
            && !t.starts_with("ERROR!")
            && !t.starts_with("[WARNING]")
            && !t.starts_with("[DEPRECATION")
        {
            if let Some(last) = parts.last_mut() {
                last.push(' ');
                last.push_str(t);
            }
        } else {
            in_message = false;
        }
    }
    if parts.is_empty() {
        fallback_reason(lines)
    } else {
        parts.join("; ")
    }
}

/// What a requirements file asks for: whether it has roles and collections, or the first entry
/// that would need the network (pure: unit-tested).
///
/// # Errors
/// A message naming the requirement that is not local, or the shape that is not understood.
pub fn check_requirements(
    doc: &Value,
    kitchen_root: &Path,
) -> std::result::Result<(bool, bool), String> {
    let (roles, collections): (Vec<Value>, Vec<Value>) = match doc {
        Value::Null => (Vec::new(), Vec::new()),
        Value::Array(v) => (v.clone(), Vec::new()),
        Value::Object(m) => {
            let list = |k: &str| -> std::result::Result<Vec<Value>, String> {
                match m.get(k) {
                    None | Some(Value::Null) => Ok(Vec::new()),
                    Some(Value::Array(v)) => Ok(v.clone()),
                    Some(other) => Err(format!("`{k}` must be a list, not {other}")),
                }
            };
            (list("roles")?, list("collections")?)
        }
        other => return Err(format!("expected a list or a map, not {other}")),
    };
    for r in &roles {
        let (src, label) = match r {
            Value::String(s) => (s.clone(), s.clone()),
            Value::Object(m) => {
                let src = m.get("src").or_else(|| m.get("name")).map(scalar_text);
                let name = m.get("name").map(scalar_text);
                match src {
                    Some(s) => (s.clone(), name.unwrap_or(s)),
                    None => return Err(format!("role entry {r} has no `src` or `name`")),
                }
            }
            other => return Err(format!("role entry {other} is not a string or a map")),
        };
        if !is_local_source(&src, kitchen_root) {
            return Err(format!(
                "role `{label}` would be downloaded from `{src}`, and no network is reachable here: vendor it under roles_path, or point `src` at a local role directory, a tarball, or a git+file:// repository"
            ));
        }
    }
    for c in &collections {
        let (name, kind, source) = match c {
            Value::String(s) => (s.clone(), None, None),
            Value::Object(m) => (
                m.get("name").map(scalar_text).unwrap_or_default(),
                m.get("type").map(scalar_text),
                m.get("source").map(scalar_text),
            ),
            other => return Err(format!("collection entry {other} is not a string or a map")),
        };
        let local = match kind.as_deref() {
            Some("file") | Some("dir") | Some("subdirs") => true,
            Some("git") => is_local_source(&name, kitchen_root),
            Some(_) => false,
            None => source.is_none() && is_local_source(&name, kitchen_root),
        };
        if !local {
            return Err(format!(
                "collection `{name}` would be downloaded{}, and no network is reachable here: install it on the host beforehand (ansible-galaxy collection install from a tarball) or list it with `type: file` or `type: dir` and a local path",
                source.map(|s| format!(" from {s}")).unwrap_or_default()
            ));
        }
    }
    Ok((!roles.is_empty(), !collections.is_empty()))
}
