//! Reading `ansible-playbook`'s default output: failed tasks (without those Ansible ignored),
//! the recap, plays that matched no host, and why a run failed (pure: unit-tested).

use serde_json::Value;

use super::config::scalar_text;
use super::inventory::INVENTORY_HOST;

/// The plays that matched no host (`PLAY [name]` followed by `skipping: no hosts matched`), by
/// name (pure: unit-tested).
pub fn unmatched_plays(lines: &[String]) -> Vec<String> {
    let mut play = None;
    let mut out = Vec::new();
    for line in lines {
        let line = line.trim_end();
        if let Some(rest) = line.strip_prefix("PLAY [")
            && let Some(end) = rest.rfind(']')
        {
            play = Some(rest[..end].to_string());
        } else if line.trim() == "skipping: no hosts matched"
            && let Some(p) = play.take()
        {
            out.push(p);
        }
    }
    out
}

/// The hosts named in the last `PLAY RECAP` (pure: unit-tested).
pub fn recap_hosts(lines: &[String]) -> Vec<String> {
    let Some(start) = lines.iter().rposition(|l| l.starts_with("PLAY RECAP")) else {
        return Vec::new();
    };
    lines[start + 1..]
        .iter()
        .map(|l| l.trim_end())
        .take_while(|l| !l.is_empty())
        .filter_map(|l| {
            let (host, rest) = l.split_once(" : ")?;
            rest.trim_start()
                .starts_with("ok=")
                .then(|| host.trim().to_string())
        })
        .collect()
}

/// Why a playbook that exited 0 must still fail the converge: a play that matched no host, or
/// a host other than the instance in the recap (pure: unit-tested).
pub fn reach_problem(lines: &[String], instance: &str) -> Option<String> {
    let unmatched = unmatched_plays(lines);
    if !unmatched.is_empty() {
        let names = unmatched
            .iter()
            .map(|p| format!("`{p}`"))
            .collect::<Vec<_>>()
            .join(", ");
        return Some(format!(
            "play {names} matched no host: the instance {instance} is `{INVENTORY_HOST}` in the generated inventory, in the group `all` and in the provisioner's `hosts` group; target one of those"
        ));
    }
    let others: Vec<String> = recap_hosts(lines)
        .into_iter()
        .filter(|h| h != INVENTORY_HOST)
        .collect();
    if !others.is_empty() {
        return Some(format!(
            "Ansible reported hosts other than the instance: {} (only `{INVENTORY_HOST}`, the instance {instance}, may run)",
            others.join(", ")
        ));
    }
    None
}

/// One task that failed, as the default stdout callback reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFailure {
    /// The task's name (`TASK [<this>]`), role prefix included.
    pub task: String,
    /// The host it failed on.
    pub host: String,
    /// Ansible's message (`msg`, plus the first line of `stderr` when there is one).
    pub message: String,
    /// `FAILED`, `UNREACHABLE` or `item=...` for a loop item.
    pub kind: String,
}

impl std::fmt::Display for TaskFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "task `{}` failed on {}", self.task, self.host)?;
        if self.kind != "FAILED" {
            write!(f, " ({})", self.kind)?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

/// The message of a failed result: `msg`, then what explains it (pure).
fn result_message(v: &Value) -> String {
    let mut parts = Vec::new();
    let msg = v.get("msg").map(scalar_text).unwrap_or_default();
    let msg = msg.split_whitespace().collect::<Vec<_>>().join(" ");
    if !msg.is_empty() {
        parts.push(msg);
    }
    for key in ["stderr", "module_stderr"] {
        if let Some(s) = v.get(key).and_then(Value::as_str)
            && let Some(first) = s.lines().find(|l| !l.trim().is_empty())
        {
            parts.push(format!("{key}: {}", first.trim()));
            break;
        }
    }
    if let Some(rc) = v.get("rc").and_then(Value::as_i64) {
        parts.push(format!("rc {rc}"));
    }
    if let Some(inner) = v.get("failed_modules").and_then(Value::as_object) {
        for m in inner.values() {
            let s = result_message(m);
            if !s.is_empty() {
                parts.push(s);
                break;
            }
        }
    }
    let mut text = parts.join("; ");
    if text.contains("python")
        && (text.contains("not found") || text.contains("interpreter"))
        && !text.contains("needs python3")
    {
        text.push_str(
            " (Ansible needs python3 inside the instance: use an image that has it, such as kitchen/debian-12)",
        );
    }
    with_hint(text)
}

/// The failed tasks in the default callback's output, without those Ansible ignored
/// (`...ignoring`) (pure: unit-tested).
pub fn failed_tasks(lines: &[String]) -> Vec<TaskFailure> {
    let mut task = String::new();
    let mut failures: Vec<TaskFailure> = Vec::new();
    // Where the current task's failures start: `...ignoring` excuses all of them (every item
    // of a loop), not only the last.
    let mut task_start = 0;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim_end();
        if let Some(rest) = line.strip_prefix("TASK [")
            && let Some(end) = rest.rfind(']')
        {
            task = rest[..end].to_string();
            task_start = failures.len();
        } else if line.trim() == "...ignoring" {
            failures.truncate(task_start);
        } else if let Some((host, kind, json_start)) = failure_head(line) {
            // The result: JSON on this line, or indented over the next lines (-vvv).
            let mut text = line[json_start..].to_string();
            let mut parsed = serde_json::from_str::<Value>(&text).ok();
            let mut j = i;
            while parsed.is_none() && j + 1 < lines.len() && j < i + 5000 {
                j += 1;
                text.push('\n');
                text.push_str(&lines[j]);
                parsed = serde_json::from_str::<Value>(&text).ok();
            }
            let message = match &parsed {
                Some(v) => {
                    i = j;
                    result_message(v)
                }
                None => text
                    .lines()
                    .next()
                    .unwrap_or("")
                    .chars()
                    .take(300)
                    .collect(),
            };
            failures.push(TaskFailure {
                task: task.clone(),
                host,
                message,
                kind,
            });
        }
        i += 1;
    }
    failures
}

/// `fatal: [host]: FAILED! => `, `fatal: [host]: UNREACHABLE! => `,
/// `failed: [host] (item=x) => `: the host, the kind and where the result starts.
fn failure_head(line: &str) -> Option<(String, String, usize)> {
    let (rest, offset) = if let Some(r) = line.strip_prefix("fatal: [") {
        (r, "fatal: [".len())
    } else if let Some(r) = line.strip_prefix("failed: [") {
        (r, "failed: [".len())
    } else {
        return None;
    };
    let close = rest.find(']')?;
    let host = rest[..close].to_string();
    let after = &rest[close + 1..];
    let arrow = after.find("=> ")?;
    let middle = after[..arrow].trim().trim_start_matches(':').trim();
    let kind = if middle.starts_with("UNREACHABLE") {
        "UNREACHABLE".to_string()
    } else if let Some(item) = middle.strip_prefix('(').and_then(|m| m.strip_suffix(')')) {
        item.to_string()
    } else {
        "FAILED".to_string()
    };
    Some((host, kind, offset + close + 1 + arrow + 3))
}

/// The `changed=N` of `host` in the last `PLAY RECAP` (pure: unit-tested).
pub fn recap_changed(lines: &[String], host: &str) -> Option<u64> {
    let mut found = None;
    for line in lines {
        let mut words = line.split_whitespace();
        if words.next() == Some(host) && words.next() == Some(":") {
            for w in words {
                if let Some(n) = w.strip_prefix("changed=") {
                    found = n.parse().ok();
                }
            }
        }
    }
    found
}

/// The tasks reported `changed` (pure: unit-tested).
pub fn changed_tasks(lines: &[String]) -> Vec<String> {
    let mut task = String::new();
    let mut out: Vec<String> = Vec::new();
    for line in lines {
        if let Some(rest) = line.strip_prefix("TASK [")
            && let Some(end) = rest.rfind(']')
        {
            task = rest[..end].to_string();
        } else if line.starts_with("changed: [") && out.last() != Some(&task) {
            out.push(task.clone());
        }
    }
    out
}

/// Why the run failed when no task failure was reported: the last `ERROR!` line, or the last
/// few lines (pure).
pub(super) fn fallback_reason(lines: &[String]) -> String {
    if let Some(pos) = lines.iter().rposition(|l| l.starts_with("ERROR!")) {
        // An ERROR! message may continue on the following lines until a blank one.
        let mut msg: Vec<&str> = vec![lines[pos].as_str()];
        for l in &lines[pos + 1..] {
            if l.trim().is_empty() || msg.len() >= 4 {
                break;
            }
            msg.push(l.trim());
        }
        return msg.join(" ");
    }
    let tail: Vec<&str> = lines
        .iter()
        .rev()
        .filter(|l| !l.trim().is_empty())
        .take(3)
        .map(String::as_str)
        .collect();
    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
}

/// Adds what to do to the failures whose cause is on the host.
pub(super) fn with_hint(reason: String) -> String {
    if reason.contains("connection plugin") && reason.contains("not found") {
        format!(
            "{reason} (Ansible on the host lacks the runtime's connection plugin: Debian's `ansible` package ships community.docker and community.general; otherwise install them from a local tarball with ansible-galaxy collection install)"
        )
    } else {
        reason
    }
}
