//! The `ansible_playbook` provisioner: `ansible-playbook` on the host, reaching the instance
//! through Ansible's own connection plugin for its runtime.
//!
//! Nothing is installed in the instance: Ansible runs on the host (Debian's `ansible`), with a
//! generated inventory (a temporary file) whose one host is the instance, connected with
//! `community.docker.docker` (Docker: the container id; `DOCKER_HOST` passed on) or
//! `community.general.lxd` (LXD: the instance name and project, through the `lxc` CLI). The
//! instance only needs python3 for the modules.
//!
//! The user's machine is never a target. kitchen-ansible runs Ansible inside the instance, so
//! test playbooks say `hosts: localhost`, `connection: local`, `delegate_to: localhost` and mean
//! the instance. Here the instance is the inventory's `localhost` ([`INVENTORY_HOST`]), and its
//! connection is pinned with extra vars, which outrank every play, task and inventory variable
//! ([`connection_vars`]). After the run, a play that matched no host, or a recap host other than
//! the instance, fails the converge ([`reach_problem`]). Lookups (`lookup('pipe', ...)`,
//! `lookup('file', ...)`) still run where Ansible runs, on the host, as they always do on
//! Ansible's controller.
//!
//! Keys, as kitchen-ansible users write them:
//! - `playbook`: default `default.yml`, found as kitchen-ansible finds it: the first file of
//!   `<tbp>/<suite>/ansible/default.yml`, `<tbp>/<suite>/default.yml`, `<tbp>/default.yml`,
//!   `<kitchen_root>/default.yml`. Relative paths are relative to the project.
//! - `roles_path`: default the first `roles` directory found the same way, else the project
//!   itself (a role under test); exported as `ANSIBLE_ROLES_PATH`, with the parent directory
//!   too when the path is a role rather than a `roles` directory (so the role is found by its
//!   directory name). `role_name` names the role under test when its directory is called
//!   something else (kitchen-ansible's key). `group_vars_path` and `host_vars_path` (default `group_vars`/`host_vars`
//!   found the same way) sit beside the inventory.
//! - `extra_vars` (a map, passed as JSON with `-e`; `attributes.extra_vars` wins, as in
//!   kitchen-ansible), `tags` and `skip_tags`, `ansible_check`, `ansible_diff`,
//!   `ansible_vault_password_file`, `ansible_cfg_path` (`ANSIBLE_CONFIG`), `hosts` (an
//!   inventory group the instance also belongs to), `ansible_binary_path`.
//! - `ansible_verbose` with `ansible_verbosity` (1-4 or `info`, `warn`, `debug`, `trace`):
//!   `-v` to `-vvvv`.
//! - `ansible_extra_flags`: more arguments (a string, split as a shell would, or a list).
//! - `env_vars` (kitchen-ansible's name) or `env`: environment for `ansible-playbook`.
//! - `requirements_path`: an `ansible-galaxy` requirements file. No network is reachable here,
//!   so only local sources are installed: role directories (a path, or `file://` + a
//!   directory) are linked in under their `name` directly, since ansible-galaxy would look a
//!   bare path up on the Galaxy API; tarballs (`file://`, paths), `git+file://` repositories and
//!   collections with `type: file|dir` go through `ansible-galaxy`, whose own reason is
//!   reported when it fails. Anything that would be downloaded is a clear error naming it.
//! - `idempotency_test`: run the playbook a second time and fail if a task changed.
//! - kitchen-ansible's keys for installing Ansible in the instance (`require_ansible_repo`,
//!   `ansible_version`, `require_chef_for_busser`, ...) are accepted and ignored: nothing is
//!   installed; `ansible_connection` is replaced by the runtime's plugin (with a warning).
//!
//! The output streams live, line by line, through the instance's output. A failed task fails
//! the converge with [`Error::ProvisionFailed`] naming the task, the host and Ansible's message.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Provisioner;
use crate::config::PluginConfig;
use crate::config::parse_block;
use crate::error::{Error, Result};
use crate::host::HostCommand;
use crate::plugin::PluginContext;
use crate::report::{OutputSink, OutputStream};
use crate::transport::Target;

/// A string (split like a shell would) or a list of words.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(untagged)]
enum Words {
    #[default]
    None,
    One(String),
    Many(Vec<Value>),
}

impl Words {
    fn split(&self, key: &str) -> std::result::Result<Vec<String>, String> {
        match self {
            Words::None => Ok(Vec::new()),
            Words::One(s) => shlex::split(s)
                .ok_or_else(|| format!("key `{key}`: `{s}` is not valid shell words")),
            Words::Many(v) => Ok(v.iter().map(scalar_text).collect()),
        }
    }

    /// A comma-joined list (for `--tags`), `None` when empty.
    fn joined(&self) -> Option<String> {
        let v: Vec<String> = match self {
            Words::None => Vec::new(),
            Words::One(s) => vec![s.clone()],
            Words::Many(v) => v.iter().map(scalar_text).collect(),
        };
        let v: Vec<String> = v.into_iter().filter(|s| !s.is_empty()).collect();
        (!v.is_empty()).then(|| v.join(","))
    }
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `ansible_verbosity`: a level number or one of kitchen-ansible's names.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
enum Verbosity {
    Num(i64),
    Name(String),
}

impl Default for Verbosity {
    fn default() -> Self {
        Verbosity::Num(1)
    }
}

impl Verbosity {
    fn level(&self) -> Option<usize> {
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
enum OptPath {
    #[default]
    None,
    Off(bool),
    Path(String),
}

impl OptPath {
    fn path(&self) -> Option<&str> {
        match self {
            OptPath::Path(p) if !p.is_empty() => Some(p),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
struct Attributes {
    extra_vars: Option<serde_json::Map<String, Value>>,
    tags: Option<Words>,
}

/// The typed `provisioner:` block.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
struct AnsibleConfig {
    playbook: Option<String>,
    roles_path: Option<String>,
    role_name: Option<String>,
    group_vars_path: OptPath,
    host_vars_path: OptPath,
    extra_vars: serde_json::Map<String, Value>,
    attributes: Option<Attributes>,
    tags: Words,
    skip_tags: Words,
    ansible_verbose: bool,
    ansible_verbosity: Verbosity,
    ansible_extra_flags: Words,
    ansible_check: bool,
    ansible_diff: bool,
    ansible_vault_password_file: OptPath,
    ansible_cfg_path: OptPath,
    ansible_binary_path: Option<String>,
    requirements_path: OptPath,
    hosts: Option<String>,
    env_vars: BTreeMap<String, Value>,
    env: BTreeMap<String, Value>,
    idempotency_test: bool,
    ansible_connection: Option<String>,
}

/// The ansible_playbook provisioner.
#[derive(Debug, Clone)]
pub struct AnsiblePlaybookProvisioner {
    config: AnsibleConfig,
    extra_flags: Vec<String>,
    verbosity: Option<usize>,
}

/// The paths one converge uses, resolved on the host.
#[derive(Debug, Clone, PartialEq)]
struct Paths {
    playbook: PathBuf,
    /// The `roles_path` directory (or the one found by lookup).
    roles_dir: PathBuf,
    roles: Vec<PathBuf>,
    group_vars: Option<PathBuf>,
    host_vars: Option<PathBuf>,
}

impl AnsiblePlaybookProvisioner {
    /// Reads the `provisioner:` block of `instance`.
    ///
    /// # Errors
    /// [`Error::Config`] naming the bad key.
    pub fn from_config(instance: &str, block: &PluginConfig) -> Result<Self> {
        let config: AnsibleConfig = parse_block("provisioner", instance, block)?;
        let bad = |message: String| Error::config("provisioner", instance, message);
        let extra_flags = config
            .ansible_extra_flags
            .split("ansible_extra_flags")
            .map_err(bad)?;
        let verbosity = if config.ansible_verbose {
            Some(config.ansible_verbosity.level().ok_or_else(|| {
                bad(format!(
                    "key `ansible_verbosity`: {:?} is not 1, 2, 3, 4 or info, warn, debug, trace",
                    config.ansible_verbosity
                ))
            })?)
        } else {
            None
        };
        for k in config.env_vars.keys().chain(config.env.keys()) {
            if k.is_empty() || k.contains('=') {
                return Err(bad(format!(
                    "key `env_vars`: `{k}` is not a valid environment variable name"
                )));
            }
        }
        Ok(Self {
            config,
            extra_flags,
            verbosity,
        })
    }

    /// Resolves playbook, roles and vars directories (kitchen-ansible's lookups).
    fn paths(&self, ctx: &PluginContext<'_>) -> Result<Paths> {
        let lookup = |name: &str, file: bool| {
            ansible_path(
                ctx.test_base_path,
                &ctx.instance.suite,
                ctx.kitchen_root,
                name,
                file,
            )
        };
        let bad = |message: String| Error::config("provisioner", &ctx.instance.name, message);
        let playbook = match &self.config.playbook {
            Some(p) => {
                let p = ctx.expand_path(p);
                if !p.is_file() {
                    return Err(bad(format!("playbook {} does not exist", p.display())));
                }
                p
            }
            None => lookup("default.yml", true).ok_or_else(|| {
                bad(format!(
                    "no playbook found or specified: set `playbook` or create {}",
                    ctx.test_base_path
                        .join(&ctx.instance.suite)
                        .join("default.yml")
                        .display()
                ))
            })?,
        };
        let roles_dir = match &self.config.roles_path {
            Some(r) => {
                let r = ctx.expand_path(r);
                if !r.is_dir() {
                    return Err(bad(format!(
                        "roles_path {} is not a directory",
                        r.display()
                    )));
                }
                r
            }
            None => lookup("roles", false).unwrap_or_else(|| ctx.kitchen_root.to_path_buf()),
        };
        let vars = |configured: &OptPath, name: &str| -> Result<Option<PathBuf>> {
            match configured.path() {
                Some(p) => {
                    let p = ctx.expand_path(p);
                    if p.is_dir() {
                        Ok(Some(p))
                    } else {
                        Err(bad(format!(
                            "{name}_path {} is not a directory",
                            p.display()
                        )))
                    }
                }
                None => Ok(lookup(name, false)),
            }
        };
        Ok(Paths {
            playbook,
            roles: roles_search_path(&roles_dir),
            roles_dir,
            group_vars: vars(&self.config.group_vars_path, "group_vars")?,
            host_vars: vars(&self.config.host_vars_path, "host_vars")?,
        })
    }

    fn extra_vars(&self) -> Option<String> {
        let vars = self
            .config
            .attributes
            .as_ref()
            .and_then(|a| a.extra_vars.as_ref())
            .unwrap_or(&self.config.extra_vars);
        (!vars.is_empty()).then(|| Value::Object(vars.clone()).to_string())
    }

    /// The `ansible-playbook` arguments after the program (pure: unit-tested). `pin` is
    /// [`connection_vars`] as JSON: it comes last but for the playbook, after the user's own
    /// flags, so nothing outranks it.
    fn args(
        &self,
        inventory: &Path,
        playbook: &Path,
        vault_password_file: Option<&Path>,
        pin: &str,
    ) -> Vec<String> {
        let mut a = vec!["-i".to_string(), inventory.to_string_lossy().into_owned()];
        if let Some(n) = self.verbosity {
            a.push(format!("-{}", "v".repeat(n)));
        }
        if self.config.ansible_check {
            a.push("--check".into());
        }
        if self.config.ansible_diff {
            a.push("--diff".into());
        }
        if let Some(v) = self.extra_vars() {
            a.push("-e".into());
            a.push(v);
        }
        let tags = self
            .config
            .attributes
            .as_ref()
            .and_then(|x| x.tags.as_ref())
            .unwrap_or(&self.config.tags);
        if let Some(t) = tags.joined() {
            a.push("--tags".into());
            a.push(t);
        }
        if let Some(t) = self.config.skip_tags.joined() {
            a.push("--skip-tags".into());
            a.push(t);
        }
        if let Some(v) = vault_password_file {
            a.push(format!("--vault-password-file={}", v.display()));
        }
        a.extend(self.extra_flags.iter().cloned());
        a.push("-e".into());
        a.push(pin.to_string());
        a.push(playbook.to_string_lossy().into_owned());
        a
    }

    fn program(&self, name: &str) -> PathBuf {
        match &self.config.ansible_binary_path {
            Some(dir) => Path::new(dir).join(name),
            None => PathBuf::from(name),
        }
    }

    /// The environment `ansible-playbook` runs with, on top of the host's.
    fn env(
        &self,
        roles: &[PathBuf],
        collections: Option<&Path>,
        target: &Target,
        host_env: &[(String, String)],
        kitchen_root: &Path,
    ) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = vec![
            ("PYTHONUNBUFFERED".into(), "1".into()),
            ("ANSIBLE_NOCOLOR".into(), "1".into()),
            ("ANSIBLE_FORCE_COLOR".into(), "0".into()),
            ("ANSIBLE_RETRY_FILES_ENABLED".into(), "0".into()),
            // One exec per module instead of several (mkdir, put, chmod, run, rm).
            ("ANSIBLE_PIPELINING".into(), "True".into()),
            (
                "ANSIBLE_ROLES_PATH".into(),
                join_paths(roles.iter().map(PathBuf::as_path)),
            ),
        ];
        if let Some(c) = collections {
            let mut paths = vec![c.to_string_lossy().into_owned()];
            match host_var(host_env, "ANSIBLE_COLLECTIONS_PATH")
                .or_else(|| host_var(host_env, "ANSIBLE_COLLECTIONS_PATHS"))
            {
                Some(existing) => paths.push(existing.to_string()),
                None => {
                    paths.push("~/.ansible/collections:/usr/share/ansible/collections".to_string())
                }
            }
            env.push(("ANSIBLE_COLLECTIONS_PATH".into(), paths.join(":")));
        }
        if let Some(cfg) = self.config.ansible_cfg_path.path() {
            env.push((
                "ANSIBLE_CONFIG".into(),
                kitchen_root.join(cfg).to_string_lossy().into_owned(),
            ));
        }
        if let Target::Docker {
            docker_host: Some(h),
            ..
        } = target
        {
            env.push(("DOCKER_HOST".into(), h.clone()));
        }
        for (k, v) in self.config.env_vars.iter().chain(self.config.env.iter()) {
            env.push((k.clone(), scalar_text(v)));
        }
        env
    }
}

fn host_var<'a>(env: &'a [(String, String)], key: &str) -> Option<&'a str> {
    env.iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn join_paths<'a>(paths: impl Iterator<Item = &'a Path>) -> String {
    paths
        .map(|p| p.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(":")
}

/// kitchen-ansible's `calculate_path`: the first of `<tbp>/<suite>/ansible/<name>`,
/// `<tbp>/<suite>/<name>`, `<tbp>/<name>`, `<kitchen_root>/<name>` that exists as a file
/// (`file`) or a directory.
fn ansible_path(
    test_base_path: &Path,
    suite: &str,
    kitchen_root: &Path,
    name: &str,
    file: bool,
) -> Option<PathBuf> {
    [
        test_base_path.join(suite).join("ansible").join(name),
        test_base_path.join(suite).join(name),
        test_base_path.join(name),
        kitchen_root.join(name),
    ]
    .into_iter()
    .find(|p| if file { p.is_file() } else { p.is_dir() })
}

/// `ANSIBLE_ROLES_PATH` for a `roles_path`: a `roles` directory as is; any other directory
/// (a role under test, or a directory of roles) with its parent after it, so the role is found
/// by its directory name as kitchen-ansible's copy to `roles/<basename>` makes it.
fn roles_search_path(roles: &Path) -> Vec<PathBuf> {
    let mut v = vec![roles.to_path_buf()];
    if roles.file_name().is_some_and(|n| n != "roles")
        && let Some(parent) = roles.parent()
        && parent != Path::new("")
    {
        v.push(parent.to_path_buf());
    }
    v
}

/// The name of the instance in the generated inventory. kitchen-ansible runs Ansible inside the
/// instance, so test playbooks say `hosts: localhost`, `connection: local`, `delegate_to:
/// localhost` or `local_action` and mean the instance. Naming the instance `localhost` here
/// makes all of these reach it: an inventory host named `localhost` also stands for Ansible's
/// implicit `127.0.0.1` and `::1`, so Ansible never creates its own local host, which would be
/// the user's machine.
pub const INVENTORY_HOST: &str = "localhost";

/// The connection variables that point Ansible at the instance through its runtime's
/// connection plugin (pure: unit-tested). They are both the inventory host's variables and the
/// last `-e` of the command line: extra vars outrank every other variable, so a play's
/// `connection: local`, `vars: {ansible_connection: local}` or a delegation to another host
/// still reaches the instance and never runs on the host.
///
/// # Errors
/// A message when the runtime has no Ansible connection plugin known here.
pub fn connection_vars(
    target: &Target,
) -> std::result::Result<serde_json::Map<String, Value>, String> {
    let mut vars = serde_json::Map::new();
    match target {
        Target::Docker { container_id, .. } => {
            vars.insert(
                "ansible_connection".into(),
                "community.docker.docker".into(),
            );
            vars.insert("ansible_host".into(), container_id.clone().into());
        }
        Target::Lxd { name, project } => {
            vars.insert("ansible_connection".into(), "community.general.lxd".into());
            vars.insert("ansible_host".into(), name.clone().into());
            if !project.is_empty() && project != "default" {
                vars.insert("ansible_lxd_project".into(), project.clone().into());
            }
        }
        #[allow(unreachable_patterns)]
        other => {
            return Err(format!(
                "ansible_playbook cannot reach this kind of instance ({other:?})"
            ));
        }
    }
    Ok(vars)
}

/// The generated inventory: one host, [`INVENTORY_HOST`], which is the instance, with the
/// connection for its runtime, in `all` and in the `hosts` group when one is configured
/// (pure: unit-tested).
///
/// # Errors
/// A message when the runtime has no Ansible connection plugin known here.
pub fn inventory(target: &Target, group: Option<&str>) -> std::result::Result<Value, String> {
    let mut host = connection_vars(target)?;
    host.insert("ansible_python_interpreter".into(), "auto_silent".into());
    let mut all = json!({"hosts": {INVENTORY_HOST: Value::Object(host)}});
    if let Some(g) = group.filter(|g| !g.is_empty() && *g != "all") {
        all["children"] = json!({g: {"hosts": {INVENTORY_HOST: {}}}});
    }
    Ok(json!({ "all": all }))
}

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
fn fallback_reason(lines: &[String]) -> String {
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
fn with_hint(reason: String) -> String {
    if reason.contains("connection plugin") && reason.contains("not found") {
        format!(
            "{reason} (Ansible on the host lacks the runtime's connection plugin: Debian's `ansible` package ships community.docker and community.general; otherwise install them from a local tarball with ansible-galaxy collection install)"
        )
    } else {
        reason
    }
}

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
fn galaxy_reason(lines: &[String]) -> String {
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

/// An output sink that forwards each line and keeps a copy.
struct Tee<'a> {
    inner: &'a dyn OutputSink,
    lines: Mutex<Vec<String>>,
}

impl OutputSink for Tee<'_> {
    fn line(&self, stream: OutputStream, line: &str) {
        // Blank lines stay: they are part of `--diff` hunks and of Ansible's own layout.
        self.inner.line(stream, line);
        self.lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(line.to_string());
    }
}

/// Runs `program args` on the host in `cwd` with exactly `env`, streaming each line to `sink`;
/// returns the exit code and every line (stdout and stderr interleaved as they came).
async fn run_host(
    instance: &str,
    program: &Path,
    args: &[String],
    cwd: &Path,
    env: &[(String, String)],
    sink: &dyn OutputSink,
) -> Result<(i64, Vec<String>)> {
    let tee = Tee {
        inner: sink,
        lines: Mutex::new(Vec::new()),
    };
    let run = HostCommand::new(program, cwd)
        .args(args.iter().cloned())
        .envs(env.iter().cloned())
        .run(&tee)
        .await;
    let code = match run {
        Ok(code) => code,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::MissingTool {
                instance: instance.to_string(),
                tool: program.display().to_string(),
                location: "on the host",
                hint: "install Ansible (Debian: apt-get install ansible; scripts/setup-host does) or set provisioner.ansible_binary_path to its directory".into(),
            });
        }
        Err(e) => return Err(Error::io("running", program, e)),
    };
    let lines = tee.lines.into_inner().unwrap_or_else(|p| p.into_inner());
    Ok((code, lines))
}

#[async_trait]
impl Provisioner for AnsiblePlaybookProvisioner {
    fn name(&self) -> &'static str {
        "ansible_playbook"
    }

    async fn converge(&self, ctx: &PluginContext<'_>) -> Result<()> {
        let out = ctx.output;
        let instance = ctx.instance.name.as_str();
        let paths = self.paths(ctx)?;
        let target = ctx.connection.target();
        let pin =
            connection_vars(&target).map_err(|m| Error::config("provisioner", instance, m))?;
        let inv = inventory(&target, self.config.hosts.as_deref())
            .map_err(|m| Error::config("provisioner", instance, m))?;

        // Inventory, vars and galaxy installs live in a temporary directory removed on return.
        let tmp = tempfile::Builder::new()
            .prefix(&format!("kitchen-ansible-{instance}-"))
            .tempdir()
            .map_err(|e| Error::io("creating temporary directory in", std::env::temp_dir(), e))?;
        let inventory_path = tmp.path().join("inventory.yml");
        let body = serde_json::to_string_pretty(&inv)
            .map_err(|e| Error::io("encoding", &inventory_path, std::io::Error::other(e)))?;
        std::fs::write(&inventory_path, &body)
            .map_err(|e| Error::io("writing", &inventory_path, e))?;
        for (dir, name) in [
            (&paths.group_vars, "group_vars"),
            (&paths.host_vars, "host_vars"),
        ] {
            if let Some(d) = dir {
                let link = tmp.path().join(name);
                std::os::unix::fs::symlink(d, &link).map_err(|e| Error::io("linking", &link, e))?;
            }
        }
        let plugin = pin
            .get("ansible_connection")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        out.info(&format!(
            "Inventory {} names {instance} `{INVENTORY_HOST}` ({plugin}), as kitchen-ansible's does",
            inventory_path.display(),
        ));
        out.debug(&format!("Inventory: {body}"));
        if let Some(c) = &self.config.ansible_connection
            && *c != plugin
        {
            out.warn(&format!(
                "ansible_connection `{c}` is not used: Ansible runs on the host and reaches the instance with {plugin}"
            ));
        }
        for key in pin.keys() {
            if self
                .extra_vars()
                .is_some_and(|v| v.contains(&format!("\"{key}\"")))
                || self.extra_flags.iter().any(|f| f.contains(key.as_str()))
            {
                out.warn(&format!(
                    "`{key}` from extra_vars or ansible_extra_flags is replaced: every task runs in the instance, through {plugin}"
                ));
            }
        }
        let pin = Value::Object(pin).to_string();

        let mut roles = paths.roles.clone();
        if let Some(name) = self.config.role_name.as_deref().filter(|n| !n.is_empty()) {
            // kitchen-ansible's `role_name`: the role under test (`roles_path`) is known by
            // this name, whatever its directory is called.
            let dir = tmp.path().join("role-under-test");
            let link = dir.join(name);
            std::fs::create_dir_all(&dir).map_err(|e| Error::io("creating", &dir, e))?;
            std::os::unix::fs::symlink(&paths.roles_dir, &link)
                .map_err(|e| Error::io("linking", &link, e))?;
            roles.insert(0, dir);
        }
        let mut collections = None;
        if let Some(req) = self.config.requirements_path.path() {
            let req = ctx.expand_path(req);
            let (r, c) = self.install_requirements(ctx, &req, tmp.path()).await?;
            if let Some(r) = r {
                roles.insert(0, r);
            }
            collections = c;
        }

        let vault = self
            .config
            .ansible_vault_password_file
            .path()
            .map(|p| ctx.expand_path(p));
        let args = self.args(&inventory_path, &paths.playbook, vault.as_deref(), &pin);
        let mut env: Vec<(String, String)> = ctx.host_env.to_vec();
        env.extend(self.env(
            &roles,
            collections.as_deref(),
            &target,
            ctx.host_env,
            ctx.kitchen_root,
        ));
        let program = self.program("ansible-playbook");
        out.info(&format!(
            "Running {} {} (roles path {})",
            program.display(),
            args.iter()
                .map(|a| crate::transport::shell_quote(a))
                .collect::<Vec<_>>()
                .join(" "),
            join_paths(roles.iter().map(PathBuf::as_path))
        ));
        let runs = if self.config.idempotency_test { 2 } else { 1 };
        for run in 1..=runs {
            if run == 2 {
                out.info("Running the playbook again (idempotency_test)");
            }
            let (code, lines) =
                run_host(instance, &program, &args, ctx.kitchen_root, &env, out).await?;
            if code != 0 {
                let mut failures = failed_tasks(&lines);
                for f in &mut failures {
                    if f.host == INVENTORY_HOST {
                        f.host = instance.to_string();
                    }
                }
                let what = if failures.is_empty() {
                    with_hint(fallback_reason(&lines))
                } else {
                    let shown: Vec<String> = failures
                        .iter()
                        .rev()
                        .take(3)
                        .rev()
                        .map(ToString::to_string)
                        .collect();
                    let more = failures.len().saturating_sub(3);
                    let mut s = shown.join("; ");
                    if more > 0 {
                        s.push_str(&format!(" (and {more} more failures)"));
                    }
                    s
                };
                return Err(Error::ProvisionFailed {
                    instance: instance.to_string(),
                    message: format!("ansible-playbook exited with code {code}: {what}"),
                });
            }
            if let Some(problem) = reach_problem(&lines, instance) {
                return Err(Error::ProvisionFailed {
                    instance: instance.to_string(),
                    message: problem,
                });
            }
            if run == 2 {
                let changed = recap_changed(&lines, INVENTORY_HOST).unwrap_or(0);
                if changed > 0 {
                    return Err(Error::ProvisionFailed {
                        instance: instance.to_string(),
                        message: format!(
                            "idempotency test failed: {changed} task(s) changed on the second run: {}",
                            changed_tasks(&lines).join(", ")
                        ),
                    });
                }
            }
        }
        Ok(())
    }
}

impl AnsiblePlaybookProvisioner {
    /// Installs the local sources of a galaxy requirements file into `tmp`; returns the roles
    /// and collections directories to add to Ansible's search paths.
    async fn install_requirements(
        &self,
        ctx: &PluginContext<'_>,
        req: &Path,
        tmp: &Path,
    ) -> Result<(Option<PathBuf>, Option<PathBuf>)> {
        let instance = ctx.instance.name.as_str();
        let text = std::fs::read_to_string(req).map_err(|e| Error::io("reading", req, e))?;
        let bad = |message: String| {
            let message = format!("requirements_path {}: {message}", req.display());
            Error::config("provisioner", instance, message)
        };
        let doc: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_saphyr::from_str(&text).map_err(|e| bad(format!("not valid YAML: {e}")))?
        };
        // Roles that are plain local directories are linked in here: ansible-galaxy cannot
        // install them (it asks the Galaxy API for a bare path, and wants a tarball behind
        // file://). The rest goes to ansible-galaxy.
        let (local_dirs, doc) = split_local_role_dirs(doc, ctx.kitchen_root);
        let mut result = (None, None);
        if !local_dirs.is_empty() {
            let roles = tmp.join("roles");
            std::fs::create_dir_all(&roles).map_err(|e| Error::io("creating", &roles, e))?;
            for (name, dir) in &local_dirs {
                let link = roles.join(name);
                std::os::unix::fs::symlink(dir, &link)
                    .map_err(|e| Error::io("linking", &link, e))?;
                ctx.output.info(&format!(
                    "Role {name} is the local directory {}",
                    dir.display()
                ));
            }
            result.0 = Some(roles);
        }
        let (has_roles, has_collections) =
            check_requirements(&doc, ctx.kitchen_root).map_err(bad)?;
        let galaxy = self.program("ansible-galaxy");
        let mut env: Vec<(String, String)> = ctx.host_env.to_vec();
        env.push(("PYTHONUNBUFFERED".into(), "1".into()));
        env.push(("ANSIBLE_NOCOLOR".into(), "1".into()));
        let req_s = if local_dirs.is_empty() {
            req.to_string_lossy().into_owned()
        } else {
            // JSON is YAML: the requirements without the linked directories.
            let rest = tmp.join("requirements.yml");
            std::fs::write(&rest, doc.to_string()).map_err(|e| Error::io("writing", &rest, e))?;
            rest.to_string_lossy().into_owned()
        };
        for (kind, wanted) in [("role", has_roles), ("collection", has_collections)] {
            if !wanted {
                continue;
            }
            let dir = tmp.join(if kind == "role" {
                "roles"
            } else {
                "collections"
            });
            let args: Vec<String> = vec![
                kind.into(),
                "install".into(),
                "-r".into(),
                req_s.clone(),
                "-p".into(),
                dir.to_string_lossy().into_owned(),
            ];
            ctx.output
                .info(&format!("Running {} {}", galaxy.display(), args.join(" ")));
            let (code, lines) =
                run_host(instance, &galaxy, &args, ctx.kitchen_root, &env, ctx.output).await?;
            if code != 0 {
                return Err(Error::ProvisionFailed {
                    instance: instance.to_string(),
                    message: format!(
                        "ansible-galaxy {kind} install -r {} exited with code {code}: {}",
                        req.display(),
                        galaxy_reason(&lines)
                    ),
                });
            }
            if kind == "role" {
                result.0 = Some(dir);
            } else {
                result.1 = Some(dir);
            }
        }
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prov(v: Value) -> Result<AnsiblePlaybookProvisioner> {
        let Value::Object(m) = v else {
            panic!("object")
        };
        AnsiblePlaybookProvisioner::from_config("default-debian-12", &m)
    }

    fn lines(s: &str) -> Vec<String> {
        s.lines().map(str::to_string).collect()
    }

    fn docker_target() -> Target {
        Target::Docker {
            container_id: "8f68f65a".into(),
            container_name: "kitchen-x-default".into(),
            docker_host: None,
        }
    }

    #[test]
    fn argv_follows_the_keys() {
        let p = prov(json!({
            "name": "ansible_playbook", "ansible_verbose": true, "ansible_verbosity": 2,
            "extra_vars": {"port": 8080, "name": "web"}, "tags": ["a", "b"],
            "skip_tags": "slow", "ansible_check": true, "ansible_diff": true,
            "ansible_extra_flags": "--forks 1 --limit 'default-*'"
        }))
        .unwrap();
        let a = p.args(
            Path::new("/t/inv.yml"),
            Path::new("/p/site.yml"),
            None,
            "{}",
        );
        assert_eq!(
            a,
            [
                "-i",
                "/t/inv.yml",
                "-vv",
                "--check",
                "--diff",
                "-e",
                r#"{"port":8080,"name":"web"}"#,
                "--tags",
                "a,b",
                "--skip-tags",
                "slow",
                "--forks",
                "1",
                "--limit",
                "default-*",
                "-e",
                "{}",
                "/p/site.yml"
            ]
        );
        let p = prov(json!({})).unwrap();
        assert_eq!(
            p.args(
                Path::new("i"),
                Path::new("pb.yml"),
                Some(Path::new("/v")),
                "{}"
            ),
            ["-i", "i", "--vault-password-file=/v", "-e", "{}", "pb.yml"]
        );
    }

    #[test]
    fn verbosity_needs_ansible_verbose_and_accepts_names() {
        assert_eq!(
            prov(json!({"ansible_verbosity": 3})).unwrap().verbosity,
            None
        );
        for (v, n) in [
            (json!(1), 1),
            (json!("debug"), 3),
            (json!(":trace"), 4),
            (json!("warn"), 2),
        ] {
            let p = prov(json!({"ansible_verbose": true, "ansible_verbosity": v})).unwrap();
            assert_eq!(p.verbosity, Some(n));
        }
        assert_eq!(
            prov(json!({"ansible_verbose": true})).unwrap().verbosity,
            Some(1)
        );
        let e = prov(json!({"ansible_verbose": true, "ansible_verbosity": "loud"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("ansible_verbosity"), "{e}");
        let e = prov(json!({"ansible_extra_flags": "'open"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("ansible_extra_flags"), "{e}");
        let e = prov(json!({"extra_vars": ["not", "a", "map"]}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("extra_vars"), "{e}");
    }

    #[test]
    fn attributes_override_extra_vars_and_tags() {
        let p = prov(json!({
            "extra_vars": {"a": 1}, "tags": ["x"],
            "attributes": {"extra_vars": {"b": 2}, "tags": ["y"]},
            "requirements_path": false
        }))
        .unwrap();
        let a = p.args(Path::new("i"), Path::new("pb"), None, "{}");
        assert!(a.contains(&r#"{"b":2}"#.to_string()), "{a:?}");
        assert!(a.contains(&"y".to_string()), "{a:?}");
        assert_eq!(p.config.requirements_path.path(), None);
    }

    #[test]
    fn inventory_names_the_instance_localhost_with_the_runtime_connection() {
        let inv = inventory(&docker_target(), Some("webservers")).unwrap();
        let hosts = inv["all"]["hosts"].as_object().unwrap();
        assert_eq!(hosts.keys().collect::<Vec<_>>(), ["localhost"]);
        let host = &hosts["localhost"];
        assert_eq!(host["ansible_connection"], "community.docker.docker");
        assert_eq!(host["ansible_host"], "8f68f65a");
        assert_eq!(host["ansible_python_interpreter"], "auto_silent");
        assert!(
            inv["all"]["children"]["webservers"]["hosts"]
                .get("localhost")
                .is_some()
        );

        let lxd = Target::Lxd {
            name: "kitchen-abc-default".into(),
            project: "kitchen".into(),
        };
        let inv = inventory(&lxd, None).unwrap();
        let host = &inv["all"]["hosts"]["localhost"];
        assert_eq!(host["ansible_connection"], "community.general.lxd");
        assert_eq!(host["ansible_host"], "kitchen-abc-default");
        assert_eq!(host["ansible_lxd_project"], "kitchen");
        assert!(inv["all"].get("children").is_none());
        let lxd = Target::Lxd {
            name: "n".into(),
            project: "default".into(),
        };
        let inv = inventory(&lxd, Some("all")).unwrap();
        assert!(
            inv["all"]["hosts"]["localhost"]
                .get("ansible_lxd_project")
                .is_none()
        );
        assert!(inv["all"].get("children").is_none());
    }

    #[test]
    fn the_pin_is_the_connection_alone() {
        let pin = connection_vars(&docker_target()).unwrap();
        assert_eq!(
            Value::Object(pin),
            json!({"ansible_connection": "community.docker.docker", "ansible_host": "8f68f65a"})
        );
    }

    /// ansible-playbook 2.14 with the instance as `localhost` (recorded here): a play for a
    /// group that does not exist, and the recap.
    const UNMATCHED_RUN: &str = r#"
PLAY [localhost] ***************************************************************

TASK [copy] ********************************************************************
changed: [localhost]
[WARNING]: Could not match supplied host pattern, ignoring: nosuchgroup

PLAY [configure the web tier] **************************************************
skipping: no hosts matched

PLAY RECAP *********************************************************************
localhost                  : ok=1    changed=1    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0   
"#;

    #[test]
    fn a_play_that_matches_no_host_is_named() {
        let l = lines(UNMATCHED_RUN);
        assert_eq!(unmatched_plays(&l), ["configure the web tier"]);
        assert_eq!(recap_hosts(&l), ["localhost"]);
        let why = reach_problem(&l, "default-debian-12").unwrap();
        assert!(
            why.contains("play `configure the web tier` matched no host"),
            "{why}"
        );
        assert!(why.contains("default-debian-12"), "{why}");
    }

    #[test]
    fn a_recap_host_other_than_the_instance_is_a_problem() {
        let l = lines(FAILED_RUN);
        assert_eq!(recap_hosts(&l), ["probe-host"]);
        let why = reach_problem(&l, "i").unwrap();
        assert!(why.contains("other than the instance: probe-host"), "{why}");
        let ok = lines(&UNMATCHED_RUN.replace("skipping: no hosts matched", ""));
        assert_eq!(reach_problem(&ok, "i"), None);
    }

    /// Output of ansible-playbook 2.14 against kitchen/debian-12 on Docker (recorded here).
    const FAILED_RUN: &str = r#"
PLAY [all] *********************************************************************

TASK [Gathering Facts] *********************************************************
ok: [probe-host]

TASK [write a file] ************************************************************
changed: [probe-host]

TASK [this fails] **************************************************************
fatal: [probe-host]: FAILED! => {"changed": true, "cmd": ["/bin/false"], "delta": "0:00:00.004587", "end": "2026-11-26 05:56:56.777892", "msg": "non-zero return code", "rc": 1, "start": "2026-11-26 05:56:56.773305", "stderr": "", "stderr_lines": [], "stdout": "", "stdout_lines": []}

PLAY RECAP *********************************************************************
probe-host                 : ok=2    changed=1    unreachable=0    failed=1    skipped=0    rescued=0    ignored=0   
"#;

    /// ansible-playbook 2.14: a loop task with `ignore_errors: true` whose items all failed,
    /// then a task that really failed (recorded here, abridged).
    const IGNORED_LOOP: &str = r#"
TASK [try each item] ***********************************************************
failed: [localhost] (item=a) => {"ansible_loop_var": "item", "changed": true, "cmd": ["false"], "item": "a", "msg": "non-zero return code", "rc": 1}
failed: [localhost] (item=b) => {"ansible_loop_var": "item", "changed": true, "cmd": ["false"], "item": "b", "msg": "non-zero return code", "rc": 1}
...ignoring

TASK [the real failure] ********************************************************
fatal: [localhost]: FAILED! => {"changed": false, "msg": "really broken"}
"#;

    #[test]
    fn an_ignored_loop_excuses_every_item() {
        let f = failed_tasks(&lines(IGNORED_LOOP));
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].task, "the real failure");
        assert_eq!(f[0].message, "really broken");
    }

    #[test]
    fn the_failing_task_is_named() {
        let l = lines(FAILED_RUN);
        let f = failed_tasks(&l);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].task, "this fails");
        assert_eq!(f[0].host, "probe-host");
        assert_eq!(f[0].kind, "FAILED");
        assert_eq!(f[0].message, "non-zero return code; rc 1");
        assert_eq!(
            f[0].to_string(),
            "task `this fails` failed on probe-host: non-zero return code; rc 1"
        );
        assert_eq!(recap_changed(&l, "probe-host"), Some(1));
        assert_eq!(changed_tasks(&l), ["write a file"]);
    }

    #[test]
    fn loop_items_ignored_failures_unreachable_and_missing_python() {
        let out = r#"TASK [role1 : loop fails] ****
changed: [h] => (item=a)
failed: [h] (item=b) => {"ansible_loop_var": "item", "changed": true, "item": "b", "msg": "non-zero return code", "rc": 1, "stderr": "boom\nmore"}
TASK [tolerated] ****
fatal: [h]: FAILED! => {"changed": false, "msg": "nope"}
...ignoring
TASK [Gathering Facts] ****
fatal: [bb]: FAILED! => {"ansible_facts": {}, "changed": false, "failed_modules": {"ansible.legacy.setup": {"failed": true, "module_stderr": "/bin/sh: /usr/bin/python: not found\n", "msg": "The module failed to execute correctly, you probably need to set the interpreter.\nSee stdout/stderr for the exact error", "rc": 127}}, "msg": "The following modules failed to execute: ansible.legacy.setup\n"}
TASK [connect] ****
fatal: [u]: UNREACHABLE! => {"changed": false, "msg": "Failed to create temporary directory.", "unreachable": true}
"#;
        let f = failed_tasks(&lines(out));
        assert_eq!(f.len(), 3, "{f:?}");
        assert_eq!(f[0].task, "role1 : loop fails");
        assert_eq!(f[0].kind, "item=b");
        assert_eq!(f[0].message, "non-zero return code; stderr: boom; rc 1");
        assert_eq!(f[1].host, "bb");
        assert!(
            f[1].message.contains("ansible.legacy.setup"),
            "{}",
            f[1].message
        );
        assert_eq!(
            f[1].message.matches("needs python3").count(),
            1,
            "{}",
            f[1].message
        );
        assert_eq!(f[2].kind, "UNREACHABLE");
        assert!(f[2].to_string().contains("(UNREACHABLE)"));
    }

    #[test]
    fn verbose_results_span_lines() {
        let out = "TASK [t] ***\nfatal: [h]: FAILED! => {\n    \"changed\": false,\n    \"msg\": \"multi\"\n}\nPLAY RECAP ***\n";
        let f = failed_tasks(&lines(out));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].message, "multi");
    }

    #[test]
    fn fallback_uses_error_lines() {
        let l = lines("noise\nERROR! the playbook: missing.yml could not be found\n\nmore");
        assert_eq!(
            fallback_reason(&l),
            "ERROR! the playbook: missing.yml could not be found"
        );
        assert_eq!(fallback_reason(&lines("a\nb\n\nc\nd")), "b | c | d");
        let r = with_hint(fallback_reason(&lines(
            "ERROR! the connection plugin 'community.docker.docker' was not found",
        )));
        assert!(r.contains("ships community.docker"), "{r}");
        // What ansible-playbook 2.14 prints when the plugin is missing.
        let f = failed_tasks(&lines(
            "TASK [t] ***\nfatal: [h]: FAILED! => {\"msg\": \"the connection plugin 'community.nope.nope' was not found\"}",
        ));
        assert!(
            f[0].message
                .contains("lacks the runtime's connection plugin"),
            "{f:?}"
        );
        assert_eq!(with_hint("ERROR! other".into()), "ERROR! other");
    }

    /// ansible-galaxy 2.14 with no network (recorded here).
    const GALAXY_OFFLINE: &str = "Starting galaxy role install process
[WARNING]: - myrole was NOT installed successfully: Unknown error when
attempting to call Galaxy at 'https://galaxy.ansible.com/api/': <urlopen error
[Errno -2] Name or service not known>. <urlopen error [Errno -2] Name or
service not known>
ERROR! - you can use --ignore-errors to skip failed roles and finish processing the list.";

    #[test]
    fn the_galaxy_failure_says_why() {
        let why = galaxy_reason(&lines(GALAXY_OFFLINE));
        assert!(why.starts_with("- myrole was NOT installed successfully: Unknown error when attempting to call Galaxy"), "{why}");
        assert!(why.contains("Name or service not known"), "{why}");
        assert!(!why.contains("--ignore-errors"), "{why}");
    }

    #[test]
    fn local_role_directories_are_taken_out_of_the_requirements() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("vendor/web")).unwrap();
        let web = d.path().join("vendor/web");
        let doc = json!({"roles": [
            {"src": "vendor/web", "name": "nginx"},
            "./vendor/web",
            format!("file://{}", web.display()),
            {"src": "file:///srv/x.tar.gz", "name": "x"},
        ], "collections": []});
        let (dirs, rest) = split_local_role_dirs(doc, d.path());
        let names: Vec<&str> = dirs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["nginx", "web", "web"]);
        assert!(dirs.iter().all(|(_, p)| p.is_dir()));
        assert_eq!(
            rest,
            json!({"roles": [{"src": "file:///srv/x.tar.gz", "name": "x"}], "collections": []})
        );
        let (dirs, rest) = split_local_role_dirs(json!(["geerlingguy.nginx"]), d.path());
        assert!(dirs.is_empty());
        assert_eq!(rest, json!(["geerlingguy.nginx"]));
    }

    #[test]
    fn requirements_must_be_local() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("vendor")).unwrap();
        std::fs::write(d.path().join("vendor/r.tar.gz"), "").unwrap();
        let root = d.path();
        let ok = json!([{"src": "file:///srv/role.tar.gz", "name": "x"}, {"src": "./vendor/r.tar.gz"}, "vendor/r.tar.gz"]);
        assert_eq!(check_requirements(&ok, root), Ok((true, false)));
        let ok = json!({"collections": [{"name": "/srv/ns-c-1.0.0.tar.gz", "type": "file"}, {"name": "./c", "type": "dir"}]});
        assert_eq!(check_requirements(&ok, root), Ok((false, true)));
        assert_eq!(check_requirements(&Value::Null, root), Ok((false, false)));

        let e = check_requirements(&json!(["geerlingguy.nginx"]), root).unwrap_err();
        assert!(
            e.contains("role `geerlingguy.nginx`") && e.contains("no network"),
            "{e}"
        );
        let e = check_requirements(
            &json!({"roles": [{"src": "https://github.com/x/y.git", "scm": "git", "name": "y"}]}),
            root,
        )
        .unwrap_err();
        assert!(
            e.contains("role `y`") && e.contains("https://github.com/x/y.git"),
            "{e}"
        );
        let e =
            check_requirements(&json!({"collections": ["community.general"]}), root).unwrap_err();
        assert!(e.contains("collection `community.general`"), "{e}");
        let e = check_requirements(
            &json!({"collections": [{"name": "a.b", "source": "https://galaxy.example"}]}),
            root,
        )
        .unwrap_err();
        assert!(e.contains("from https://galaxy.example"), "{e}");
        assert!(check_requirements(&json!({"roles": "x"}), root).is_err());
        assert!(check_requirements(&json!(3), root).is_err());
        // A relative path that does not exist is a Galaxy name, not a local source.
        assert!(check_requirements(&json!(["missing/role.tar.gz"]), root).is_err());
    }

    #[test]
    fn playbook_and_roles_are_found_as_kitchen_ansible_finds_them() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        let tbp = root.join("test/integration");
        std::fs::create_dir_all(tbp.join("web/ansible")).unwrap();
        assert_eq!(ansible_path(&tbp, "web", root, "default.yml", true), None);
        std::fs::write(root.join("default.yml"), "").unwrap();
        assert_eq!(
            ansible_path(&tbp, "web", root, "default.yml", true),
            Some(root.join("default.yml"))
        );
        std::fs::write(tbp.join("web/default.yml"), "").unwrap();
        assert_eq!(
            ansible_path(&tbp, "web", root, "default.yml", true),
            Some(tbp.join("web/default.yml"))
        );
        std::fs::write(tbp.join("web/ansible/default.yml"), "").unwrap();
        assert_eq!(
            ansible_path(&tbp, "web", root, "default.yml", true),
            Some(tbp.join("web/ansible/default.yml"))
        );
        assert_eq!(
            roles_search_path(Path::new("/p/roles")),
            [PathBuf::from("/p/roles")]
        );
        assert_eq!(
            roles_search_path(Path::new("/src/myrole")),
            [PathBuf::from("/src/myrole"), PathBuf::from("/src")]
        );
    }

    #[test]
    fn env_has_roles_docker_host_and_user_vars() {
        let p = prov(
            json!({"env_vars": {"A": 1}, "env": {"B": "two"}, "ansible_cfg_path": "ansible.cfg"}),
        )
        .unwrap();
        let target = Target::Docker {
            container_id: "c".into(),
            container_name: "n".into(),
            docker_host: Some("unix:///run/podman/podman.sock".into()),
        };
        let host_env = vec![("ANSIBLE_COLLECTIONS_PATH".to_string(), "/c".to_string())];
        let env = p.env(
            &[PathBuf::from("/r1"), PathBuf::from("/r2")],
            Some(Path::new("/tmp/col")),
            &target,
            &host_env,
            Path::new("/proj"),
        );
        let get = |k: &str| {
            env.iter()
                .rev()
                .find(|(x, _)| x == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("ANSIBLE_ROLES_PATH"), Some("/r1:/r2"));
        assert_eq!(get("ANSIBLE_COLLECTIONS_PATH"), Some("/tmp/col:/c"));
        assert_eq!(get("DOCKER_HOST"), Some("unix:///run/podman/podman.sock"));
        assert_eq!(get("PYTHONUNBUFFERED"), Some("1"));
        assert_eq!(get("A"), Some("1"));
        assert_eq!(get("B"), Some("two"));
        assert_eq!(get("ANSIBLE_CONFIG"), Some("/proj/ansible.cfg"));
    }
}
