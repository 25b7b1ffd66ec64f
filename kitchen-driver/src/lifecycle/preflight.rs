//! Refuse what cannot run before anything starts.
//!
//! test-kitchen loads every plugin of an instance when the run starts, so an unknown verifier
//! fails before create. kitchen-driver resolves plugins lazily (so `list` and `diagnose` work
//! with plugins this build lacks), and checks here, before an instance's first step, every
//! plugin the command will reach: the driver always, the provisioner for converge, the verifier
//! for verify, and the transport. Nothing is created for an instance that fails this check.
//!
//! It also checks what test-kitchen itself only finds when the step runs, after a create (and
//! a converge) it then wastes: the lifecycle hooks' entries, and the host files the provisioner
//! and verifier name (a missing script, playbook, roles or vars directory, requirements file,
//! upload source or bats directory: each plugin's `check_files`). The errors name the key as
//! written (`suites[1].provisioner.playbook`, file, line and column) and what to do. `list`,
//! `diagnose` and the other commands that take no action never run this check, so they work on
//! a project whose playbook does not exist yet, as test-kitchen's do.

use std::path::Path;

use crate::config::InstanceConfig;
use crate::config::unused::UnusedKey;
use crate::driver::Driver;
use crate::error::{Error, Result};
use crate::lifecycle::hooks::Hooks;
use crate::lifecycle::{Action, Command};
use crate::plugin::ConfigPaths;
use crate::{provisioner, verifier};

/// Transports that mean "reach the instance", which kitchen-driver always does through the
/// runtime's own exec and file APIs. Anything else (`winrm`) cannot reach a Linux container.
pub const API_TRANSPORTS: &[&str] = &[
    "ssh",
    "exec",
    "dokken",
    "docker",
    "lxd",
    "docker_cli",
    "lxd_cli",
    "lxd_api",
    "docker_api",
];

/// The furthest action `command` takes an instance to.
fn furthest(command: &Command) -> Option<Action> {
    match command {
        Command::Action(a) => Some(*a),
        Command::Test(_) => Some(Action::Verify),
        _ => None,
    }
}

/// What [`check`] found: the instance's driver, and the keys of its driver, provisioner,
/// verifier and transport blocks that have no effect here, each with its reason, for the
/// caller to warn about once.
pub struct Checked {
    /// The driver the instance names, ready to use.
    pub driver: Box<dyn Driver>,
    /// Keys without effect (none for `exec`).
    pub unused_keys: Vec<UnusedKey>,
}

/// Resolves the driver, and checks the provisioner, verifier, transport and lifecycle hooks
/// that `command` will use on `inst`, and the host files they name. Reads the project's
/// files; touches no instance.
///
/// # Errors
/// [`Error::UnknownPlugin`] or [`Error::Config`] naming the plugin, the instance and what is
/// supported, or the key as written, the file and what to do.
pub fn check(
    inst: &InstanceConfig,
    command: &Command,
    kitchen_root: &Path,
    test_base_path: &Path,
) -> Result<Checked> {
    let paths = ConfigPaths::new(inst, kitchen_root, test_base_path);
    let (checked, mut unused_keys) = crate::config::unused::collect(|| {
        let driver = crate::driver::for_instance(inst)?;
        if furthest(command).is_some() {
            driver.check_files(&paths)?;
        }
        check_plugins(&paths, command).map(|()| driver)
    });
    let driver = checked?;
    if furthest(command).is_none() {
        // `exec` and the like: the user has seen the warnings on the run that created it.
        unused_keys.clear();
    } else {
        let transport = InstanceConfig::plugin_name(&inst.transport);
        unused_keys.extend(crate::config::unused::transport_keys(
            transport,
            &inst.transport,
        ));
    }
    Ok(Checked {
        driver,
        unused_keys,
    })
}

fn check_plugins(paths: &ConfigPaths<'_>, command: &Command) -> Result<()> {
    let inst = paths.instance;
    let transport = InstanceConfig::plugin_name(&inst.transport);
    if !transport.is_empty() && !API_TRANSPORTS.contains(&transport) {
        return Err(Error::UnknownPlugin {
            kind: "transport",
            name: transport.to_string(),
            instance: inst.name.clone(),
            supported: format!(
                "{} (kitchen-driver reaches Linux instances through the runtime's exec and file APIs; Windows instances and WinRM are not supported)",
                API_TRANSPORTS.join(", ")
            ),
        });
    }
    // The provisioner and verifier are checked whatever the command, for their keys; only the
    // ones the command reaches can stop it.
    let to = furthest(command);
    let provisioner = provisioner::for_instance(inst);
    let verifier = verifier::for_instance_under(inst, paths.test_base_path);
    if to.is_some() {
        // The runner reads every hook before the first step, whatever the command.
        Hooks::from_config(inst, paths.kitchen_root)?;
    }
    if to.is_some_and(|a| a >= Action::Converge) {
        provisioner?.check_files(paths)?;
    }
    if to.is_some_and(|a| a >= Action::Verify) {
        verifier?.check_files(paths)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::lifecycle::DestroyMode;

    fn inst(provisioner: Value, verifier: Value, transport: Value) -> InstanceConfig {
        serde_json::from_value(json!({
            "name": "default-p", "suite": "default", "platform": "p",
            "driver": {"name": "docker", "image": "kitchen/busybox:latest"}, "provisioner": provisioner,
            "verifier": verifier, "transport": transport, "lifecycle": {},
        }))
        .unwrap()
    }

    fn test() -> Command {
        Command::Test(DestroyMode::Passing)
    }

    #[test]
    fn an_unsupported_verifier_is_refused_only_when_verify_will_run() {
        let tbp = tempfile::tempdir().unwrap();
        let i = inst(
            json!({"name": "shell"}),
            json!({"name": "inspec"}),
            json!({"name": "ssh"}),
        );
        let err = check(&i, &test(), tbp.path(), tbp.path())
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("verifier plugin `inspec` is not supported"),
            "{err}"
        );
        assert!(err.contains("default-p"), "{err}");
        check(
            &i,
            &Command::Action(Action::Converge),
            tbp.path(),
            tbp.path(),
        )
        .unwrap();
        check(&i, &Command::Action(Action::Create), tbp.path(), tbp.path()).unwrap();
    }

    #[test]
    fn an_unsupported_provisioner_is_refused_before_create() {
        let tbp = tempfile::tempdir().unwrap();
        let i = inst(
            json!({"name": "chef_zero"}),
            json!({"name": "shell"}),
            json!({"name": "ssh"}),
        );
        let err = check(
            &i,
            &Command::Action(Action::Converge),
            tbp.path(),
            tbp.path(),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("provisioner plugin `chef_zero`"), "{err}");
        check(&i, &Command::Action(Action::Create), tbp.path(), tbp.path()).unwrap();
        check(&i, &Command::Exec("true".into()), tbp.path(), tbp.path()).unwrap();
    }

    #[test]
    fn winrm_is_refused_and_the_ssh_family_is_served_by_the_api() {
        let tbp = tempfile::tempdir().unwrap();
        let shell = json!({"name": "shell"});
        let i = inst(shell.clone(), shell.clone(), json!({"name": "winrm"}));
        let err = check(&i, &Command::Action(Action::Create), tbp.path(), tbp.path())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("transport plugin `winrm`"), "{err}");
        assert!(err.contains("WinRM are not supported"), "{err}");
        for t in ["ssh", "dokken", "lxd"] {
            let i = inst(shell.clone(), shell.clone(), json!({"name": t}));
            check(&i, &test(), tbp.path(), tbp.path()).unwrap();
        }
    }

    #[test]
    fn keys_without_effect_are_named_with_why() {
        let tbp = tempfile::tempdir().unwrap();
        let mut i = inst(
            json!({"name": "ansible_playbook", "require_ansible_repo": true, "hosts": "all"}),
            json!({"name": "shell", "comand": "typo"}),
            json!({"name": "ssh", "max_ssh_sessions": 1}),
        );
        i.driver.insert("use_sudo".into(), json!(false));
        i.driver.insert("kitchen_root".into(), json!("/p"));
        let keys = check(&i, &Command::Action(Action::Create), tbp.path(), tbp.path())
            .unwrap()
            .unused_keys;
        let shown: Vec<String> = keys.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown
                .iter()
                .map(|s| s.split(" is ignored").next().unwrap())
                .collect::<Vec<_>>(),
            [
                "driver `docker` key `use_sudo`",
                "provisioner `ansible_playbook` key `require_ansible_repo`",
                "verifier `shell` key `comand`",
                "transport `ssh` key `max_ssh_sessions`",
            ],
            "{shown:#?}"
        );
        assert!(
            shown[2].contains("a typo, or a key of another plugin"),
            "{shown:#?}"
        );
        assert!(shown[3].contains("not SSH or WinRM"), "{shown:#?}");
    }

    #[test]
    fn busser_runs_as_bats_when_the_suite_has_bats_tests() {
        let tbp = tempfile::tempdir().unwrap();
        let i = inst(
            json!({"name": "shell"}),
            json!({"name": "busser", "version": "0.7.1", "sudo": true}),
            json!({"name": "ssh"}),
        );
        let err = check(&i, &test(), tbp.path(), tbp.path())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("runs here only as bats"), "{err}");
        assert!(err.contains("default/bats"), "{err}");
        std::fs::create_dir_all(tbp.path().join("default/bats")).unwrap();
        std::fs::write(
            tbp.path().join("default/bats/a.bats"),
            "@test x { true; }\n",
        )
        .unwrap();
        check(&i, &test(), tbp.path(), tbp.path()).unwrap();
        assert_eq!(verifier::for_instance(&i).unwrap().name(), "bats");
    }
}
