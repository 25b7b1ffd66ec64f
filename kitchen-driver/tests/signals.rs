//! Interrupting the real `kitchen-driver` binary in the middle of `converge -c 4`, on LXD and
//! Docker: SIGTERM (a CI timeout), a second SIGINT, and a terminal's Ctrl-C sent to the whole
//! process group while a host-side hook runs. After each: exit 130, every container of the
//! project known to a state file, and `destroy` leaves nothing.
//!
//! The tests never sleep for the right moment: local `pre_converge` hooks touch a file on the
//! host when they start and wait for a file the test creates, so the signal arrives while
//! every instance is inside its converge step.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use kitchen_driver::state::keys;
use rustix::process::{Pid, Signal};
use test_support::{
    Runtime, TestProject, background_output, capture_output_in, text, wait_for_exit, wait_for_files,
};

const SUITES: [&str; 4] = ["a", "b", "c", "d"];

/// Four suites on busybox; each converge first runs a local hook that touches
/// `started-<instance>` and waits until `release` exists.
fn project(label: &str, runtime: Runtime) -> TestProject {
    let p = TestProject::new(label);
    let suites: String = SUITES.iter().map(|s| format!("  - name: {s}\n")).collect();
    p.write(
        "kitchen.yml",
        &format!(
            r#"
driver:
  name: {driver}
provisioner:
  name: shell
  sudo: false
  command: echo converged-ok
verifier:
  name: shell
  remote_exec: true
  command: echo verified-ok
lifecycle:
  pre_converge:
    - local: touch started-$KITCHEN_INSTANCE_NAME; while [ ! -e release ]; do sleep 0.1; done; touch finished-$KITCHEN_INSTANCE_NAME
platforms:
  - name: busybox
    driver:
      image: {image}
suites:
{suites}"#,
            driver = runtime.driver(),
            image = runtime.busybox_image()
        ),
    );
    p
}

fn instances() -> Vec<String> {
    SUITES.iter().map(|s| format!("{s}-busybox")).collect()
}

/// The binary, started in a process group of its own (as a shell starts a foreground job),
/// its output collected into files in the project.
fn spawn(p: &TestProject, args: &[&str]) -> Child {
    let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("kitchen-driver"));
    c.current_dir(p.root())
        .env("HOME", p.root())
        .env_remove("CI")
        .env_remove("GITHUB_ACTIONS")
        .args(args);
    capture_output_in(p, &mut c);
    std::os::unix::process::CommandExt::process_group(&mut c, 0);
    c.spawn().unwrap()
}

/// Waits until the run's output contains `needle`.
fn wait_for_output(p: &TestProject, child: &mut Child, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(240);
    while !background_output(p).contains(needle) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "the run ended ({status}) before `{needle}`:\n{}",
                background_output(p)
            );
        }
        assert!(
            Instant::now() < deadline,
            "never saw `{needle}`:\n{}",
            background_output(p)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn signal(child: &Child, sig: Signal) {
    let pid = Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, sig).unwrap();
}

/// Every container of the project is named by a state file; then `destroy` leaves none.
fn assert_known_then_destroy(p: &TestProject, runtime: Runtime) {
    let known: Vec<String> = instances()
        .iter()
        .filter(|i| p.state_exists(i))
        .filter_map(|i| {
            let state = p.state(i);
            let key = match runtime {
                Runtime::Docker => keys::CONTAINER_ID,
                Runtime::Lxd => keys::CONTAINER_NAME,
            };
            state.get_str(key).map(str::to_string)
        })
        .collect();
    let existing = match runtime {
        Runtime::Docker => p.containers(None),
        Runtime::Lxd => p.lxd_instances(),
    };
    assert!(
        !existing.is_empty(),
        "the run created nothing:\n{}",
        background_output(p)
    );
    for c in &existing {
        assert!(
            known.contains(c),
            "{c} is known to no state file ({known:?}):\n{}",
            background_output(p)
        );
    }
    let out = p.kitchen_driver(300).args(["destroy"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    p.assert_no_containers();
    for i in instances() {
        assert!(!p.state_exists(&i), "{i} still has a state file");
    }
}

fn release(p: &TestProject) {
    std::fs::write(p.root().join("release"), "").unwrap();
}

fn started() -> Vec<String> {
    instances().iter().map(|i| format!("started-{i}")).collect()
}

fn finished(p: &Path) -> Vec<String> {
    instances()
        .into_iter()
        .filter(|i| p.join(format!("finished-{i}")).exists())
        .collect()
}

// SIGTERM: the steps in progress finish, no further step starts, the JUnit report is
// written, exit 130.

#[test]
fn sigterm_during_converge_on_lxd() {
    sigterm_during_converge(Runtime::Lxd);
}

#[test]
fn sigterm_during_converge_on_docker() {
    sigterm_during_converge(Runtime::Docker);
}

fn sigterm_during_converge(runtime: Runtime) {
    let p = project(&format!("sigterm-{}", runtime.label()), runtime);
    let mut child = spawn(&p, &["converge", "-c", "4", "--junit", "junit.xml"]);
    wait_for_files(&p, &mut child, &started());
    signal(&child, Signal::TERM);
    release(&p);
    let code = wait_for_exit(&p, child);
    let out = background_output(&p);
    assert_eq!(code, 130, "{out}");
    assert!(out.contains("Interrupted (SIGTERM)"), "{out}");
    // The steps in progress finished: every hook ran to its end, every converge passed.
    assert_eq!(finished(p.root()), instances(), "{out}");
    for i in instances() {
        assert_eq!(
            p.state(&i).get_str(keys::LAST_ACTION),
            Some("converge"),
            "{i}: {out}"
        );
    }
    let junit = std::fs::read_to_string(p.root().join("junit.xml")).unwrap();
    assert!(junit.contains("<testsuites"), "{junit}");
    assert_known_then_destroy(&p, runtime);
}

// A second SIGINT: the steps in progress stop (their host hooks killed), each records the
// interruption as its last error, the reports are written, exit 130.

#[test]
fn second_sigint_during_converge_on_lxd() {
    second_sigint_during_converge(Runtime::Lxd);
}

#[test]
fn second_sigint_during_converge_on_docker() {
    second_sigint_during_converge(Runtime::Docker);
}

fn second_sigint_during_converge(runtime: Runtime) {
    let p = project(&format!("sigint2-{}", runtime.label()), runtime);
    let mut child = spawn(&p, &["converge", "-c", "4", "--junit", "junit.xml"]);
    wait_for_files(&p, &mut child, &started());
    signal(&child, Signal::INT);
    // Two signals sent at once may reach the process as one: send the second after the
    // first was seen.
    wait_for_output(&p, &mut child, "Interrupted (SIGINT)");
    signal(&child, Signal::INT);
    let code = wait_for_exit(&p, child);
    let out = background_output(&p);
    assert_eq!(code, 130, "{out}");
    assert!(out.contains("Interrupted again (SIGINT)"), "{out}");
    // The hooks were stopped: none reached its end (the test never released them).
    assert_eq!(finished(p.root()), Vec::<String>::new(), "{out}");
    for i in instances() {
        let state = p.state(&i);
        assert_eq!(
            state.get_str(keys::LAST_ACTION),
            Some("create"),
            "{i}: {out}"
        );
        assert_eq!(
            state.get_str(keys::LAST_ERROR),
            Some("Interrupt"),
            "{i}: {out}"
        );
        assert!(
            state
                .get_str(keys::LAST_ERROR_MESSAGE)
                .is_some_and(|m| m.contains("second interrupt")),
            "{i}: {out}"
        );
    }
    let junit = std::fs::read_to_string(p.root().join("junit.xml")).unwrap();
    assert!(junit.contains("<testsuites"), "{junit}");
    assert_known_then_destroy(&p, runtime);
}

// A terminal's Ctrl-C goes to the whole foreground process group. The host-side hook runs in
// a group of its own, so it does not see it: the step finishes, and the run ends with 130
// (not 20, a failed hook).

#[test]
fn terminal_ctrl_c_does_not_reach_host_hooks_on_lxd() {
    terminal_ctrl_c_does_not_reach_host_hooks(Runtime::Lxd);
}

#[test]
fn terminal_ctrl_c_does_not_reach_host_hooks_on_docker() {
    terminal_ctrl_c_does_not_reach_host_hooks(Runtime::Docker);
}

fn terminal_ctrl_c_does_not_reach_host_hooks(runtime: Runtime) {
    let p = project(&format!("sigint-pgrp-{}", runtime.label()), runtime);
    let mut child = spawn(&p, &["test", "-c", "4", "--destroy", "passing"]);
    wait_for_files(&p, &mut child, &started());
    let group = Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process_group(group, Signal::INT).unwrap();
    release(&p);
    let code = wait_for_exit(&p, child);
    let out = background_output(&p);
    assert_eq!(code, 130, "{out}");
    assert_eq!(finished(p.root()), instances(), "{out}");
    for i in instances() {
        let state = p.state(&i);
        // Converge passed; verify never started; nothing counts as failed.
        assert_eq!(
            state.get_str(keys::LAST_ACTION),
            Some("converge"),
            "{i}: {out}"
        );
        assert_eq!(state.get_str(keys::LAST_ERROR), None, "{i}: {out}");
    }
    assert_known_then_destroy(&p, runtime);
}
