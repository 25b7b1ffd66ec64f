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

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::Value;

mod config;
mod galaxy;
mod inventory;
mod output;
#[cfg(test)]
mod tests;

use config::{AnsibleConfig, OptPath, scalar_text};
use galaxy::galaxy_reason;
pub use galaxy::{check_requirements, split_local_role_dirs};
pub use inventory::{INVENTORY_HOST, connection_vars, inventory};
pub use output::{
    TaskFailure, changed_tasks, failed_tasks, reach_problem, recap_changed, recap_hosts,
    unmatched_plays,
};
use output::{fallback_reason, with_hint};

use super::Provisioner;
use crate::config::PluginConfig;
use crate::config::parse_block;
use crate::error::{Error, Result};
use crate::host::HostCommand;
use crate::plugin::{ConfigPaths, PluginContext};
use crate::report::{OutputSink, OutputStream};
use crate::transport::Target;

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

    /// How many `-v` flags `ansible-playbook` gets: `None` unless `ansible_verbose` is on,
    /// else `ansible_verbosity` as a level (1-6; `info`, `warn`, `debug`, `trace` are 1-4).
    /// ecs-runner reads it too, so one kitchen.yml runs at one verbosity under both tools.
    pub fn verbosity(&self) -> Option<usize> {
        self.verbosity
    }

    /// Resolves playbook, roles and vars directories (kitchen-ansible's lookups).
    ///
    /// # Errors
    /// [`Error::Config`] naming the key (as written) of a path that does not exist.
    fn paths(&self, at: &ConfigPaths<'_>) -> Result<Paths> {
        let lookup = |name: &str, file: bool| {
            ansible_path(
                at.test_base_path,
                &at.instance.suite,
                at.kitchen_root,
                name,
                file,
            )
        };
        let playbook = match &self.config.playbook {
            Some(p) => {
                let p = at.expand_path(p);
                if !p.is_file() {
                    return Err(at.refuse(
                        "provisioner",
                        "provisioner.playbook",
                        &format!("the playbook {} does not exist", p.display()),
                        "create it, or correct the path (relative paths start at the directory holding kitchen.yml)",
                    ));
                }
                p
            }
            None => lookup("default.yml", true).ok_or_else(|| {
                at.refuse(
                    "provisioner",
                    "provisioner.playbook",
                    "no playbook is set and none was found",
                    &format!(
                        "set `playbook`, or create {}",
                        at.test_base_path
                            .join(&at.instance.suite)
                            .join("default.yml")
                            .display()
                    ),
                )
            })?,
        };
        let roles_dir = match &self.config.roles_path {
            Some(r) => {
                let r = at.expand_path(r);
                if !r.is_dir() {
                    return Err(at.refuse(
                        "provisioner",
                        "provisioner.roles_path",
                        &format!("the roles directory {} does not exist", r.display()),
                        "create it, or correct or remove `roles_path`",
                    ));
                }
                r
            }
            None => lookup("roles", false).unwrap_or_else(|| at.kitchen_root.to_path_buf()),
        };
        let vars = |configured: &OptPath, name: &str| -> Result<Option<PathBuf>> {
            match configured.path() {
                Some(p) => {
                    let p = at.expand_path(p);
                    if p.is_dir() {
                        Ok(Some(p))
                    } else {
                        Err(at.refuse(
                            "provisioner",
                            &format!("provisioner.{name}_path"),
                            &format!("the {name} directory {} does not exist", p.display()),
                            &format!("create it, or correct or remove `{name}_path`"),
                        ))
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

    /// The other files the configuration names: the requirements file (read and checked as
    /// `converge` reads it), the vault password file and `ansible.cfg`.
    ///
    /// # Errors
    /// [`Error::Config`] naming the key (as written) and the file.
    fn check_other_files(&self, at: &ConfigPaths<'_>) -> Result<()> {
        if let Some(req) = self.config.requirements_path.path() {
            let req = at.expand_path(req);
            read_requirements(&req, at.kitchen_root).map_err(|problem| {
                at.refuse(
                    "provisioner",
                    "provisioner.requirements_path",
                    &format!("the requirements file {}: {problem}", req.display()),
                    "correct the file or the path, or remove `requirements_path`",
                )
            })?;
        }
        for (key, configured) in [
            (
                "ansible_vault_password_file",
                &self.config.ansible_vault_password_file,
            ),
            ("ansible_cfg_path", &self.config.ansible_cfg_path),
        ] {
            if let Some(p) = configured.path() {
                let p = at.expand_path(p);
                if !p.is_file() {
                    return Err(at.refuse(
                        "provisioner",
                        &format!("provisioner.{key}"),
                        &format!("the file {} does not exist", p.display()),
                        &format!("create it, or correct or remove `{key}`"),
                    ));
                }
            }
        }
        Ok(())
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

    /// Writes [`extra_vars_file`] for `inventory`, readable only by its owner, when there are
    /// extra vars.
    ///
    /// # Errors
    /// [`Error::Io`] when it cannot be written.
    fn write_extra_vars(&self, inventory: &Path) -> Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let Some(vars) = self.extra_vars() else {
            return Ok(());
        };
        let path = extra_vars_file(inventory);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut f| f.write_all(vars.as_bytes()))
            .map_err(|e| Error::io("writing extra_vars to", &path, e))
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
        if self.extra_vars().is_some() {
            // From a file beside the inventory (written 0600 by `converge`), so that values
            // such as passwords never appear in the command line, which is logged.
            a.push("-e".into());
            a.push(format!("@{}", extra_vars_file(inventory).display()));
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

/// Where the extra vars of a run are kept: beside its inventory, in the run's private
/// temporary directory.
fn extra_vars_file(inventory: &Path) -> PathBuf {
    inventory.with_file_name("extra_vars.json")
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
/// (`file`) or a directory. ecs-runner finds a task's playbook and roles with it too.
pub fn ansible_path(
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

    fn check_files(&self, paths: &ConfigPaths<'_>) -> Result<()> {
        self.paths(paths)?;
        self.check_other_files(paths)
    }

    async fn converge(&self, ctx: &PluginContext<'_>) -> Result<()> {
        let out = ctx.output;
        let instance = ctx.instance.name.as_str();
        let paths = self.paths(&ctx.paths())?;
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
        self.write_extra_vars(&inventory_path)?;
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

/// A galaxy requirements file, read and checked.
struct Requirements {
    /// Roles that are plain local directories (linked in, not installed): ansible-galaxy
    /// cannot install them (it asks the Galaxy API for a bare path, and wants a tarball
    /// behind file://).
    local_dirs: Vec<(String, PathBuf)>,
    /// The rest, for ansible-galaxy.
    doc: Value,
    has_roles: bool,
    has_collections: bool,
}

/// Reads the requirements file `req` and checks its sources (no network here: see
/// [`check_requirements`]). The preflight check and `converge` both read it with this.
///
/// # Errors
/// What is wrong, for a message that names the file.
fn read_requirements(req: &Path, kitchen_root: &Path) -> std::result::Result<Requirements, String> {
    let text = std::fs::read_to_string(req).map_err(|e| format!("cannot be read: {e}"))?;
    let doc: Value = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_saphyr::from_str(&text).map_err(|e| format!("not valid YAML: {e}"))?
    };
    let (local_dirs, doc) = split_local_role_dirs(doc, kitchen_root);
    let (has_roles, has_collections) = check_requirements(&doc, kitchen_root)?;
    Ok(Requirements {
        local_dirs,
        doc,
        has_roles,
        has_collections,
    })
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
        let requirements = read_requirements(req, ctx.kitchen_root).map_err(|message| {
            let message = format!("requirements_path {}: {message}", req.display());
            Error::config("provisioner", instance, message)
        })?;
        let Requirements {
            local_dirs,
            doc,
            has_roles,
            has_collections,
        } = requirements;
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
