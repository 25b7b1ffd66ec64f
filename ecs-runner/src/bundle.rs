//! The bundle: what a task needs to converge and verify an instance, and the entrypoint that
//! runs it inside the container.
//!
//! [`Plan::for_instance`] reads the provisioner and verifier blocks and refuses, before any
//! task starts, what a task cannot run. Supported: the `shell` provisioner, `ansible_playbook`
//! (as `ansible-playbook -c local` with the image's own Ansible), the `shell` verifier (its
//! command runs in the task, whatever `remote_exec` says: there is no host side in a task) and
//! `bats`. [`Plan::bundle`] packs the scripts, data and tests into a gzipped tar whose paths are
//! where they land in the container (`/tmp/kitchen/...`, as test-kitchen puts them), with the
//! entrypoint at [`ENTRYPOINT_PATH`].
//!
//! The entrypoint prints [`crate::transcript`] markers around each phase and each bats file,
//! and exits non-zero when converge or verify fails. Building the plan and the script is pure
//! (unit-tested); only [`Plan::bundle`] reads files.

use std::io::Write;
use std::path::{Path, PathBuf};

use kitchen_driver::config::{InstanceConfig, PluginConfig, Project};
use kitchen_driver::provisioner::ansible::AnsiblePlaybookProvisioner;
use kitchen_driver::transport::{TarBuilder, shell_quote};
use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::transcript::MARKER;

/// Where the entrypoint lands in the container.
pub const ENTRYPOINT_PATH: &str = "/tmp/kitchen-ecs/entrypoint.sh";

/// How the instance is converged in the task.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Converge {
    /// test-kitchen's `shell` provisioner.
    Shell {
        /// `root_path` (default `/tmp/kitchen`).
        root: String,
        /// The script on the host, copied to `<root>/<file name>` (absent with `command`).
        script: Option<PathBuf>,
        /// `data_path` on the host, copied to `<root>/data`.
        data: Option<PathBuf>,
        /// The command line run in the container.
        run: String,
    },
    /// `ansible_playbook`, run in the container with `-c local`.
    Ansible {
        /// The playbook on the host.
        playbook: PathBuf,
        /// The roles directory on the host.
        roles: Option<PathBuf>,
        /// The inventory group the playbook targets (`hosts`).
        hosts: String,
        /// `ansible-playbook` arguments before the playbook (verbosity, `-e`, check, diff).
        args: Vec<String>,
        /// `env_vars`.
        env: Vec<(String, String)>,
    },
}

/// How the instance is verified in the task.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Verify {
    /// The `shell` verifier's command.
    Shell {
        /// The command (default `true`).
        command: String,
    },
    /// `bats --tap` over each `.bats` file.
    Bats {
        /// The tests directory on the host.
        dir: PathBuf,
        /// The `.bats` files in it, sorted.
        files: Vec<String>,
        /// Where they land in the container.
        remote: String,
        /// The command before `--tap` (`[sudo_command] bats_command`).
        command: String,
        /// `--timing` (bats 1.5+).
        timing: bool,
        /// `bats_flags`, quoted.
        flags: Vec<String>,
        /// `env`.
        env: Vec<(String, String)>,
    },
}

/// What a task does for one instance.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Plan {
    /// The instance.
    pub instance: String,
    /// The suite and platform (exported as `KITCHEN_SUITE`, `KITCHEN_PLATFORM`).
    pub suite: String,
    /// The platform.
    pub platform: String,
    /// Converge.
    pub converge: Converge,
    /// Verify.
    pub verify: Verify,
}

/// A packed bundle: the gzipped tar and the entrypoint in it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Bundle {
    /// The gzipped tar, extracted at `/` in the container.
    pub archive: Vec<u8>,
    /// The entrypoint script (also inside the archive).
    pub entrypoint: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ShellProvisionerKeys {
    script: Option<String>,
    command: Option<String>,
    arguments: Option<Value>,
    data_path: Option<String>,
    root_path: Option<String>,
    sudo: Option<bool>,
    sudo_command: Option<String>,
    command_prefix: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AnsibleKeys {
    playbook: Option<String>,
    roles_path: Option<String>,
    hosts: Option<String>,
    extra_vars: serde_json::Map<String, Value>,
    ansible_check: bool,
    ansible_diff: bool,
    env_vars: std::collections::BTreeMap<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ShellVerifierKeys {
    command: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct BatsKeys {
    bats_path: Option<String>,
    remote_path: Option<String>,
    bats_command: Option<String>,
    bats_flags: Option<Value>,
    timing: Option<bool>,
    sudo: bool,
    sudo_command: Option<String>,
    env: std::collections::BTreeMap<String, Value>,
}

/// Keys whose behaviour a task cannot reproduce: refused when set, rather than ignored.
const SHELL_UNSUPPORTED: &[&str] = &["uploads", "downloads", "retry_on_exit_code"];
const ANSIBLE_UNSUPPORTED: &[&str] = &[
    "requirements_path",
    "idempotency_test",
    "group_vars_path",
    "host_vars_path",
    "ansible_vault_password_file",
    "ansible_cfg_path",
    "ansible_binary_path",
    "tags",
    "skip_tags",
    "ansible_extra_flags",
    "attributes",
];

fn is_set(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => false,
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::String(s) => !s.is_empty(),
        _ => true,
    }
}

fn refuse_keys(instance: &str, kind: &str, block: &PluginConfig, keys: &[&str]) -> Result<()> {
    for k in keys {
        if block.get(*k).is_some_and(is_set) {
            return Err(Error::unsupported(
                instance,
                format!(
                    "{kind} `{}` key `{k}` cannot run in an ECS task; remove it, or use \
                     kitchen-driver for this suite",
                    InstanceConfig::plugin_name(block)
                ),
            ));
        }
    }
    Ok(())
}

fn keys<T: serde::de::DeserializeOwned>(
    instance: &str,
    kind: &str,
    block: &PluginConfig,
) -> Result<T> {
    serde_path_to_error::deserialize(Value::Object(block.clone())).map_err(|e| {
        Error::unsupported(
            instance,
            format!("{kind} key `{}`: {}", e.path(), e.inner()),
        )
    })
}

/// The file a provisioner runs: the one its key names, else the one kitchen's lookup
/// finds; it must exist.
///
/// `what` is how messages name the file and which key sets it; `default` is where the
/// lookup's first place is (what to create).
fn input_file(
    instance: &str,
    configured: Option<PathBuf>,
    lookup: impl FnOnce() -> Option<PathBuf>,
    (what, key): (&str, &str),
    default: PathBuf,
) -> Result<PathBuf> {
    let Some(path) = configured.or_else(lookup) else {
        return Err(Error::unsupported(
            instance,
            format!(
                "no {what} found or specified: set `{key}` or create {}",
                default.display()
            ),
        ));
    };
    if !path.is_file() {
        return Err(Error::unsupported(
            instance,
            format!("{what} {} does not exist", path.display()),
        ));
    }
    Ok(path)
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A path from kitchen.yml: absolute as written, else relative to the project.
fn expand(root: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        root.join(p)
    }
}

impl Plan {
    /// The plan for `instance`, or an error naming what a task cannot run.
    ///
    /// # Errors
    /// [`Error::Unsupported`] for another provisioner or verifier, a key a task cannot honour,
    /// or a script, playbook or test directory that does not exist.
    pub fn for_instance(project: &Project, instance: &InstanceConfig) -> Result<Plan> {
        let name = &instance.name;
        let root = &project.kitchen_root;
        let tbp = &project.test_base_path;
        let find = |file: &str, is_file: bool| {
            kitchen_driver::plugin::calculate_path(tbp, &instance.suite, root, file, is_file)
        };
        let converge = match instance.provisioner_name() {
            "shell" => {
                refuse_keys(
                    name,
                    "provisioner",
                    &instance.provisioner,
                    SHELL_UNSUPPORTED,
                )?;
                let k: ShellProvisionerKeys = keys(name, "provisioner", &instance.provisioner)?;
                let root_path = k.root_path.unwrap_or_else(|| "/tmp/kitchen".into());
                let data = match &k.data_path {
                    Some(p) => {
                        let d = expand(root, p);
                        if !d.is_dir() {
                            return Err(Error::unsupported(
                                name,
                                format!("provisioner data_path {} is not a directory", d.display()),
                            ));
                        }
                        Some(d)
                    }
                    None => None,
                };
                let (script, mut run) = match &k.command {
                    Some(c) => (None, c.clone()),
                    None => {
                        let script = input_file(
                            name,
                            k.script.as_ref().map(|s| expand(root, s)),
                            || find("bootstrap.sh", true),
                            ("provisioner script", "script"),
                            tbp.join(&instance.suite).join("bootstrap.sh"),
                        )?;
                        let file = file_name(&script);
                        let mut run =
                            shell_quote(&format!("{}/{file}", root_path.trim_end_matches('/')));
                        if k.sudo.unwrap_or(true) {
                            run =
                                format!("{} {run}", k.sudo_command.as_deref().unwrap_or("sudo -E"));
                        }
                        (Some(script), run)
                    }
                };
                match &k.arguments {
                    Some(Value::Array(a)) => {
                        for w in a {
                            run.push(' ');
                            run.push_str(&shell_quote(&scalar_text(w)));
                        }
                    }
                    Some(Value::Null) | None => {}
                    Some(other) => {
                        run.push(' ');
                        run.push_str(&scalar_text(other));
                    }
                }
                if let Some(p) = &k.command_prefix {
                    run = format!("{p} {run}");
                }
                Converge::Shell {
                    root: root_path,
                    script,
                    data,
                    run,
                }
            }
            "ansible_playbook" => {
                refuse_keys(
                    name,
                    "provisioner",
                    &instance.provisioner,
                    ANSIBLE_UNSUPPORTED,
                )?;
                let k: AnsibleKeys = keys(name, "provisioner", &instance.provisioner)?;
                let lookup = |file: &str, is_file: bool| {
                    kitchen_driver::provisioner::ansible::ansible_path(
                        tbp,
                        &instance.suite,
                        root,
                        file,
                        is_file,
                    )
                };
                let playbook = input_file(
                    name,
                    k.playbook.as_ref().map(|p| expand(root, p)),
                    || lookup("default.yml", true),
                    ("playbook", "playbook"),
                    tbp.join(&instance.suite).join("default.yml"),
                )?;
                let roles = match &k.roles_path {
                    Some(p) => Some(expand(root, p)),
                    None => lookup("roles", false),
                };
                let mut args = Vec::new();
                // kitchen-driver's own reading of the block, so both tools agree on the level
                // (and refuse the same bad values).
                let verbosity =
                    AnsiblePlaybookProvisioner::from_config(name, &instance.provisioner)
                        .map_err(|e| Error::Provisioner(Box::new(e)))?
                        .verbosity();
                if let Some(n) = verbosity {
                    args.push(format!("-{}", "v".repeat(n)));
                }
                if k.ansible_check {
                    args.push("--check".into());
                }
                if k.ansible_diff {
                    args.push("--diff".into());
                }
                if !k.extra_vars.is_empty() {
                    args.push("-e".into());
                    args.push(Value::Object(k.extra_vars.clone()).to_string());
                }
                Converge::Ansible {
                    playbook,
                    roles,
                    hosts: k.hosts.unwrap_or_else(|| "all".into()),
                    args,
                    env: k
                        .env_vars
                        .iter()
                        .map(|(k, v)| (k.clone(), scalar_text(v)))
                        .collect(),
                }
            }
            other => {
                return Err(Error::unsupported(
                    name,
                    format!(
                        "provisioner `{other}` cannot run in an ECS task: use `shell` or \
                         `ansible_playbook`"
                    ),
                ));
            }
        };
        let verify = match instance.verifier_name() {
            "shell" => {
                let k: ShellVerifierKeys = keys(name, "verifier", &instance.verifier)?;
                Verify::Shell {
                    command: k.command.unwrap_or_else(|| "true".into()),
                }
            }
            "bats" => {
                let k: BatsKeys = keys(name, "verifier", &instance.verifier)?;
                let dir = match &k.bats_path {
                    Some(p) => expand(root, p),
                    None => tbp.join(&instance.suite).join("bats"),
                };
                let mut files: Vec<String> = std::fs::read_dir(&dir)
                    .map_err(|e| Error::io("reading the bats directory", &dir, e))?
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".bats"))
                    .collect();
                files.sort();
                if files.is_empty() {
                    return Err(Error::unsupported(
                        name,
                        format!("no .bats files in {}", dir.display()),
                    ));
                }
                let flags = match &k.bats_flags {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(a)) => {
                        a.iter().map(|w| shell_quote(&scalar_text(w))).collect()
                    }
                    Some(other) => shlex::split(&scalar_text(other))
                        .ok_or_else(|| {
                            Error::unsupported(
                                name,
                                "verifier key `bats_flags` is not valid shell words",
                            )
                        })?
                        .iter()
                        .map(|w| shell_quote(w))
                        .collect(),
                };
                let mut command = k.bats_command.unwrap_or_else(|| "bats".into());
                if k.sudo {
                    command = format!(
                        "{} {command}",
                        k.sudo_command.as_deref().unwrap_or("sudo -E")
                    );
                }
                Verify::Bats {
                    dir,
                    files,
                    remote: k
                        .remote_path
                        .unwrap_or_else(|| "/tmp/kitchen/bats".into())
                        .trim_end_matches('/')
                        .to_owned(),
                    command,
                    timing: k.timing.unwrap_or(true),
                    flags,
                    env: k
                        .env
                        .iter()
                        .map(|(k, v)| (k.clone(), scalar_text(v)))
                        .collect(),
                }
            }
            other => {
                return Err(Error::unsupported(
                    name,
                    format!("verifier `{other}` cannot run in an ECS task: use `shell` or `bats`"),
                ));
            }
        };
        Ok(Plan {
            instance: name.clone(),
            suite: instance.suite.clone(),
            platform: instance.platform.clone(),
            converge,
            verify,
        })
    }

    /// The entrypoint script (pure).
    pub fn entrypoint(&self) -> String {
        let mut s = String::new();
        s.push_str("#!/bin/sh\n# Written by ecs-runner: converge, then verify, between markers the runner parses.\n");
        s.push_str(&format!("M='{MARKER}'\n"));
        s.push_str("export TEST_KITCHEN=1\n");
        s.push_str(&format!(
            "export KITCHEN_INSTANCE={} KITCHEN_SUITE={} KITCHEN_PLATFORM={}\n",
            shell_quote(&self.instance),
            shell_quote(&self.suite),
            shell_quote(&self.platform)
        ));
        s.push_str("echo \"$M phase converge\"\n");
        match &self.converge {
            Converge::Shell { run, .. } => {
                s.push_str(&format!("sh -c {}\nrc=$?\n", shell_quote(run)));
            }
            Converge::Ansible { args, env, .. } => {
                let mut cmd = String::from("cd /tmp/kitchen/ansible && ");
                for (k, v) in env {
                    cmd.push_str(&format!("{k}={} ", shell_quote(v)));
                }
                cmd.push_str("ANSIBLE_ROLES_PATH=/tmp/kitchen/ansible/roles ANSIBLE_HOST_KEY_CHECKING=False ");
                cmd.push_str("ansible-playbook -c local -i inventory");
                for a in args {
                    cmd.push(' ');
                    cmd.push_str(&shell_quote(a));
                }
                cmd.push_str(" playbook.yml");
                s.push_str("if command -v ansible-playbook >/dev/null 2>&1; then\n");
                s.push_str(&format!("  ( {cmd} )\n  rc=$?\nelse\n"));
                s.push_str("  echo 'ansible-playbook is not in this image: ansible_playbook runs with the image'\"'\"'s own Ansible in a task' >&2\n  rc=127\nfi\n");
            }
        }
        s.push_str("echo \"$M end converge $rc\"\n");
        s.push_str("if [ \"$rc\" -ne 0 ]; then echo \"$M done $rc\"; exit \"$rc\"; fi\n");
        s.push_str("echo \"$M phase verify\"\nstatus=0\n");
        match &self.verify {
            Verify::Shell { command } => {
                s.push_str(&format!("sh -c {}\nstatus=$?\n", shell_quote(command)));
            }
            Verify::Bats {
                files,
                remote,
                command,
                timing,
                flags,
                env,
                ..
            } => {
                let mut exports = String::new();
                for (k, v) in env {
                    exports.push_str(&format!("export {k}={}; ", shell_quote(v)));
                }
                for f in files {
                    let mut words = vec![command.clone(), "--tap".into()];
                    if *timing {
                        words.push("--timing".into());
                    }
                    words.extend(flags.iter().cloned());
                    words.push(shell_quote(f));
                    s.push_str(&format!("echo \"$M tap {f}\"\n"));
                    s.push_str(&format!(
                        "( {exports}cd {} && {} )\nrc=$?\n",
                        shell_quote(remote),
                        words.join(" ")
                    ));
                    s.push_str(&format!("echo \"$M end tap {f} $rc\"\n"));
                    s.push_str("[ \"$rc\" -eq 0 ] || status=$rc\n");
                }
            }
        }
        s.push_str("echo \"$M end verify $status\"\necho \"$M done $status\"\nexit \"$status\"\n");
        s
    }

    /// Packs the bundle: the files each phase needs at their container paths, and the
    /// entrypoint.
    ///
    /// # Errors
    /// [`Error::Io`] when a file cannot be read.
    pub fn bundle(&self) -> Result<Bundle> {
        let wrap = |e: kitchen_driver::Error| {
            Error::io(
                "packing the bundle",
                "",
                std::io::Error::other(e.to_string()),
            )
        };
        let mut tar = TarBuilder::new();
        let rel = |p: &str| p.trim_start_matches('/').to_owned();
        match &self.converge {
            Converge::Shell {
                root, script, data, ..
            } => {
                let root = rel(root.trim_end_matches('/'));
                if let Some(script) = script {
                    let bytes =
                        std::fs::read(script).map_err(|e| Error::io("reading", script, e))?;
                    tar.add_bytes(&format!("{root}/{}", file_name(script)), &bytes, 0o755)
                        .map_err(wrap)?;
                }
                if let Some(d) = data {
                    tar.add_path(d, &format!("{root}/data")).map_err(wrap)?;
                }
            }
            Converge::Ansible {
                playbook,
                roles,
                hosts,
                ..
            } => {
                let bytes =
                    std::fs::read(playbook).map_err(|e| Error::io("reading", playbook, e))?;
                tar.add_bytes("tmp/kitchen/ansible/playbook.yml", &bytes, 0o644)
                    .map_err(wrap)?;
                let inventory = format!(
                    "[{hosts}]\nlocalhost ansible_connection=local ansible_python_interpreter=auto_silent\n"
                );
                tar.add_bytes("tmp/kitchen/ansible/inventory", inventory.as_bytes(), 0o644)
                    .map_err(wrap)?;
                if let Some(r) = roles {
                    tar.add_path(r, "tmp/kitchen/ansible/roles").map_err(wrap)?;
                }
            }
        }
        if let Verify::Bats {
            dir, remote, files, ..
        } = &self.verify
        {
            let remote = rel(remote);
            for f in files {
                tar.add_path(&dir.join(f), &format!("{remote}/{f}"))
                    .map_err(wrap)?;
            }
            // busser's shared helpers, so `load` of helper files works.
            if let Some(helpers) = dir
                .parent()
                .and_then(Path::parent)
                .map(|t| t.join("helpers").join("bats"))
                && helpers.is_dir()
            {
                tar.add_path(&helpers, &remote).map_err(wrap)?;
            }
        }
        let entrypoint = self.entrypoint();
        tar.add_bytes(&rel(ENTRYPOINT_PATH), entrypoint.as_bytes(), 0o755)
            .map_err(wrap)?;
        let raw = tar.finish().map_err(wrap)?;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&raw)
            .and_then(|()| gz.flush())
            .map_err(|e| Error::io("compressing the bundle", "", e))?;
        let archive = gz
            .finish()
            .map_err(|e| Error::io("compressing the bundle", "", e))?;
        Ok(Bundle {
            archive,
            entrypoint,
        })
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bootstrap.sh".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kitchen_driver::config::{self, LoadOptions};

    fn project(yaml: &str, files: &[(&str, &str)]) -> (tempfile::TempDir, Project) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("kitchen.yml"), yaml).unwrap();
        for (p, text) in files {
            let path = dir.path().join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let p = config::load(&LoadOptions::new(dir.path().into(), Default::default())).unwrap();
        (dir, p)
    }

    #[test]
    fn shell_provisioner_and_bats_become_a_script_with_markers() {
        let (_d, p) = project(
            "provisioner: {name: shell, sudo: false, arguments: [a b, c]}\nverifier: {name: bats}\nplatforms: [{name: p}]\nsuites: [{name: s}]\n",
            &[
                ("test/integration/s/bootstrap.sh", "echo hi\n"),
                ("test/integration/s/bats/b.bats", "@test x { true; }\n"),
                ("test/integration/s/bats/a.bats", "@test y { true; }\n"),
            ],
        );
        let plan = Plan::for_instance(&p, &p.instances[0]).unwrap();
        let script = plan.entrypoint();
        assert!(
            script.contains(r"sh -c '/tmp/kitchen/bootstrap.sh '\''a b'\'' c'"),
            "{script}"
        );
        let a = script.find("$M tap a.bats").unwrap();
        let b = script.find("$M tap b.bats").unwrap();
        assert!(a < b, "files run sorted: {script}");
        assert!(
            script.contains("cd /tmp/kitchen/bats && bats --tap --timing a.bats"),
            "{script}"
        );
        assert!(
            script.contains("echo \"$M end verify $status\""),
            "{script}"
        );
        let bundle = plan.bundle().unwrap();
        let names = archive_names(&bundle.archive);
        assert_eq!(
            names,
            [
                "tmp/kitchen/bootstrap.sh",
                "tmp/kitchen/bats/a.bats",
                "tmp/kitchen/bats/b.bats",
                "tmp/kitchen-ecs/entrypoint.sh"
            ]
        );
    }

    #[test]
    fn sudo_is_test_kitchens_default() {
        let (_d, p) = project(
            "platforms: [{name: p}]\nsuites: [{name: s}]\nverifier: {name: shell, command: 'test -f /x'}\n",
            &[("test/integration/s/bootstrap.sh", "true\n")],
        );
        let plan = Plan::for_instance(&p, &p.instances[0]).unwrap();
        let Converge::Shell { run, .. } = &plan.converge else {
            panic!()
        };
        assert_eq!(run, "sudo -E /tmp/kitchen/bootstrap.sh");
        assert!(plan.entrypoint().contains("sh -c 'test -f /x'\nstatus=$?"));
    }

    #[test]
    fn ansible_runs_locally_against_an_inventory_of_its_hosts_group() {
        let (_d, p) = project(
            "provisioner: {name: ansible_playbook, hosts: web, extra_vars: {g: hi}}\nverifier: {name: shell}\nplatforms: [{name: p}]\nsuites: [{name: s}]\n",
            &[
                ("test/integration/s/default.yml", "- hosts: web\n"),
                ("roles/r/tasks/main.yml", "[]\n"),
            ],
        );
        let plan = Plan::for_instance(&p, &p.instances[0]).unwrap();
        let script = plan.entrypoint();
        assert!(
            script.contains(
                "ansible-playbook -c local -i inventory -e '{\"g\":\"hi\"}' playbook.yml"
            ),
            "{script}"
        );
        let names = archive_names(&plan.bundle().unwrap().archive);
        assert!(
            names.contains(&"tmp/kitchen/ansible/roles/r/tasks/main.yml".to_string()),
            "{names:?}"
        );
        assert!(
            names.contains(&"tmp/kitchen/ansible/inventory".to_string()),
            "{names:?}"
        );
    }

    #[test]
    fn ansible_verbosity_is_read_as_kitchen_driver_reads_it() {
        let plan_for = |verbosity: &str| {
            let (_d, p) = project(
                &format!(
                    "provisioner: {{name: ansible_playbook, ansible_verbose: true, ansible_verbosity: {verbosity}}}\nverifier: {{name: shell}}\nplatforms: [{{name: p}}]\nsuites: [{{name: s}}]\n"
                ),
                &[("test/integration/s/default.yml", "- hosts: all\n")],
            );
            Plan::for_instance(&p, &p.instances[0]).map(|plan| plan.entrypoint())
        };
        // kitchen-ansible's names, its `:symbol` spelling, and levels above 4 (ansible's -vvvvvv).
        for (verbosity, flag) in [
            ("debug", " -vvv "),
            ("':trace'", " -vvvv "),
            ("6", " -vvvvvv "),
        ] {
            let script = plan_for(verbosity).unwrap();
            assert!(script.contains(flag), "{verbosity}: {script}");
        }
        let e = plan_for("loud").unwrap_err();
        assert!(matches!(e, Error::Provisioner(_)), "{e:?}");
        assert!(e.to_string().contains("ansible_verbosity"), "{e}");
    }

    #[test]
    fn a_missing_script_or_playbook_names_the_key_and_the_file_to_create() {
        let refusal = |provisioner: &str| {
            let (_d, p) = project(
                &format!(
                    "provisioner: {provisioner}\nplatforms: [{{name: p}}]\nsuites: [{{name: s}}]\n"
                ),
                &[],
            );
            Plan::for_instance(&p, &p.instances[0])
                .unwrap_err()
                .to_string()
        };
        let e = refusal("{name: shell}");
        assert!(
            e.contains("no provisioner script found or specified: set `script` or create ")
                && e.contains("test/integration/s/bootstrap.sh"),
            "{e}"
        );
        let e = refusal("{name: shell, script: nope.sh}");
        assert!(
            e.contains("provisioner script ") && e.contains("nope.sh does not exist"),
            "{e}"
        );
        let e = refusal("{name: ansible_playbook}");
        assert!(
            e.contains("no playbook found or specified: set `playbook` or create ")
                && e.contains("test/integration/s/default.yml"),
            "{e}"
        );
    }

    #[test]
    fn what_a_task_cannot_run_is_refused_by_name() {
        let (_d, p) = project(
            "provisioner: {name: chef_zero}\nplatforms: [{name: p}]\nsuites: [{name: s}]\n",
            &[],
        );
        let e = Plan::for_instance(&p, &p.instances[0])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("s-p") && e.contains("chef_zero") && e.contains("ansible_playbook"),
            "{e}"
        );
        let (_d, p) = project(
            "provisioner: {name: shell, command: x}\nverifier: {name: inspec}\nplatforms: [{name: p}]\nsuites: [{name: s}]\n",
            &[],
        );
        let e = Plan::for_instance(&p, &p.instances[0])
            .unwrap_err()
            .to_string();
        assert!(e.contains("verifier `inspec`"), "{e}");
        let (_d, p) = project(
            "provisioner: {name: shell, command: x, uploads: {a: /b}}\nverifier: {name: shell}\nplatforms: [{name: p}]\nsuites: [{name: s}]\n",
            &[],
        );
        let e = Plan::for_instance(&p, &p.instances[0])
            .unwrap_err()
            .to_string();
        assert!(e.contains("key `uploads`"), "{e}");
    }

    fn archive_names(gz: &[u8]) -> Vec<String> {
        let mut a = tar::Archive::new(flate2::read::GzDecoder::new(gz));
        a.entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .filter(|n| !n.ends_with('/'))
            .collect()
    }
}
