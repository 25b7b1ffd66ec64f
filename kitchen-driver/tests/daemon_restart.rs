//! The daemon goes away in the middle of a run, on LXD and Docker: each test starts a private
//! daemon (test-support's `PrivateDaemon`: its own directory, socket and containers) and stops
//! or restarts that one, never the shared daemons other tests use.
//!
//! - stopped while `create -c 2` or `converge -c 2` runs: the run fails (exit 20) with an error
//!   that names the daemon, its socket and what to do; state files stay consistent (nothing
//!   marked created that was not, `last_error` recorded); once the daemon is back, `list` is
//!   right and `destroy` leaves no container on it;
//! - restarted between two steps while the containers keep running (LXD keeps them; this
//!   dockerd has `live-restore`): the run carries on and passes;
//! - restarted while a command runs in the instance: on LXD the stop waits for the command
//!   and the step passes; on Docker the step fails with an error that names the engine, the
//!   container survives, and the next `converge` passes (also when kitchen-driver only sees
//!   the cut once the engine is back, and the engine no longer knows the command).
//!
//! The tests never sleep for the right moment: local hooks touch a file on the host when they
//! start and wait for a file the test creates.

use std::process::Child;
use std::time::{Duration, Instant};

use kitchen_driver::state::keys;
use test_support::daemons::PrivateDaemon;
use test_support::{
    Runtime, TestProject, background_output, capture_output_in, text, wait_for_exit, wait_for_files,
};

const INSTANCES: [&str; 2] = ["a-busybox", "b-busybox"];

/// Two suites on busybox. Before `gated_step`, a local hook touches `started-<instance>` and
/// waits until `release` exists. The converge runs `converge_command` in the instance.
fn project(label: &str, runtime: Runtime, gated_step: &str, converge_command: &str) -> TestProject {
    let p = TestProject::new(label);
    p.write(
        "kitchen.yml",
        &format!(
            r#"
driver:
  name: {driver}
provisioner:
  name: shell
  sudo: false
  command: {converge_command}
lifecycle:
  pre_{gated_step}:
    - local: touch started-$KITCHEN_INSTANCE_NAME; while [ ! -e release ]; do sleep 0.1; done
platforms:
  - name: busybox
    driver:
      image: {image}
suites:
  - name: a
  - name: b
"#,
            driver = runtime.driver(),
            image = runtime.busybox_image()
        ),
    );
    p
}

/// The binary on the private daemon, its output collected into files in the project.
fn spawn(p: &TestProject, daemon: &PrivateDaemon, args: &[&str]) -> Child {
    let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("kitchen-driver"));
    c.current_dir(p.root())
        .env("HOME", p.root())
        .env_remove("CI")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("LXD_SOCKET")
        .envs(daemon.env())
        .args(args);
    capture_output_in(p, &mut c);
    c.spawn().unwrap()
}

/// Runs the binary on the private daemon to its end: (exit code, stdout, stderr).
fn run(p: &TestProject, daemon: &PrivateDaemon, args: &[&str]) -> (i32, String, String) {
    let out = p
        .kitchen_driver(300)
        .env_remove("LXD_SOCKET")
        .envs(daemon.env())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().expect("exit code"),
        text(&out.stdout),
        text(&out.stderr),
    )
}

/// Waits until each instance's gate hook has started (the run is in the gated step).
fn wait_until_gated(p: &TestProject, child: &mut Child) {
    let started: Vec<String> = INSTANCES.iter().map(|i| format!("started-{i}")).collect();
    wait_for_files(p, child, &started);
}

fn release(p: &TestProject) {
    std::fs::write(p.root().join("release"), "").unwrap();
}

/// The error says which daemon, where, and what to do.
fn assert_names_the_daemon(daemon: &PrivateDaemon, said: &str) {
    assert!(
        said.contains(daemon.name()),
        "no `{}` in:\n{said}",
        daemon.name()
    );
    let socket = daemon.socket().display().to_string();
    assert!(said.contains(&socket), "no `{socket}` in:\n{said}");
    let advice = match daemon.runtime() {
        Runtime::Docker => "is dockerd running?",
        Runtime::Lxd => "start it",
    };
    assert!(said.contains(advice), "no `{advice}` in:\n{said}");
}

/// After the daemon stopped during `step`: every state file parses, none says the instance
/// completed more than `completed`, and each records the failure.
fn assert_state_after_failed(p: &TestProject, step: &str, completed: Option<&str>) {
    for i in INSTANCES {
        let state = p.state(i);
        assert_eq!(
            state.get_str(keys::LAST_ACTION),
            completed,
            "{i}: {state:?}\n{}",
            background_output(p)
        );
        assert_eq!(
            state.get_str(keys::LAST_ATTEMPTED_ACTION),
            Some(step),
            "{i}: {state:?}"
        );
        assert!(state.get_str(keys::LAST_ERROR).is_some(), "{i}: {state:?}");
    }
}

/// `list` shows each instance's last completed action (`<Not Created>` when none).
fn assert_list_says(p: &TestProject, daemon: &PrivateDaemon, last_action: &str) {
    let (code, stdout, stderr) = run(p, daemon, &["list"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    for i in INSTANCES {
        let row = stdout
            .lines()
            .find(|l| l.starts_with(i))
            .unwrap_or_else(|| panic!("no row for {i}:\n{stdout}"));
        assert!(row.contains(last_action), "{i}: {row}\n{stdout}");
    }
}

/// `destroy` on the running daemon passes and leaves no container on it.
fn assert_destroy_leaves_nothing(p: &TestProject, daemon: &PrivateDaemon) {
    let (code, stdout, stderr) = run(p, daemon, &["destroy"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let left = daemon.containers();
    assert!(left.is_empty(), "left on the {}: {left:?}", daemon.name());
    for i in INSTANCES {
        assert!(!p.state_exists(i), "{i} still has a state file");
    }
}

// Stopped while `create -c 2` runs: nothing was created, nothing is marked created.

#[test]
fn stopped_during_create_on_docker() {
    stopped_during_create(Runtime::Docker);
}

#[test]
fn stopped_during_create_on_lxd() {
    stopped_during_create(Runtime::Lxd);
}

fn stopped_during_create(runtime: Runtime) {
    let mut daemon = PrivateDaemon::start(runtime, &format!("dstop-create-{}", runtime.label()));
    let p = project("dstop-create", runtime, "create", "echo converged-ok");
    let mut child = spawn(&p, &daemon, &["create", "-c", "2"]);
    wait_until_gated(&p, &mut child);
    daemon.stop();
    release(&p);
    let code = wait_for_exit(&p, child);
    assert_eq!(code, 20, "{}", background_output(&p));
    assert_names_the_daemon(&daemon, &background_output(&p));
    assert_state_after_failed(&p, "create", None);

    daemon.start_again();
    assert!(daemon.containers().is_empty(), "{:?}", daemon.containers());
    assert_list_says(&p, &daemon, "<Not Created>");
    assert_destroy_leaves_nothing(&p, &daemon);
}

// Stopped while `converge -c 2` runs: the containers exist and keep running; the instances
// stay `create`d; after the restart, `destroy` removes them.

#[test]
fn stopped_during_converge_on_docker() {
    stopped_during_converge(Runtime::Docker);
}

#[test]
fn stopped_during_converge_on_lxd() {
    stopped_during_converge(Runtime::Lxd);
}

fn stopped_during_converge(runtime: Runtime) {
    let mut daemon = PrivateDaemon::start(runtime, &format!("dstop-conv-{}", runtime.label()));
    let p = project("dstop-converge", runtime, "converge", "echo converged-ok");
    let mut child = spawn(&p, &daemon, &["converge", "-c", "2"]);
    wait_until_gated(&p, &mut child);
    daemon.stop();
    release(&p);
    let code = wait_for_exit(&p, child);
    assert_eq!(code, 20, "{}", background_output(&p));
    assert_names_the_daemon(&daemon, &background_output(&p));
    assert_state_after_failed(&p, "converge", Some("create"));

    daemon.start_again();
    assert_eq!(
        daemon.running_containers().len(),
        2,
        "the containers did not survive the daemon's stop: {:?}",
        daemon.containers()
    );
    assert_list_says(&p, &daemon, "Created");
    assert_destroy_leaves_nothing(&p, &daemon);
}

// Restarted between `create` and `converge` of a running `converge -c 2`: the containers kept
// running, the run reconnects and passes.

#[test]
fn restarted_between_steps_on_docker() {
    restarted_between_steps(Runtime::Docker);
}

#[test]
fn restarted_between_steps_on_lxd() {
    restarted_between_steps(Runtime::Lxd);
}

fn restarted_between_steps(runtime: Runtime) {
    let mut daemon = PrivateDaemon::start(runtime, &format!("drestart-{}", runtime.label()));
    let p = project("drestart", runtime, "converge", "echo converged-ok");
    let mut child = spawn(&p, &daemon, &["converge", "-c", "2"]);
    wait_until_gated(&p, &mut child);
    daemon.stop();
    daemon.start_again();
    release(&p);
    let code = wait_for_exit(&p, child);
    assert_eq!(code, 0, "{}", background_output(&p));
    assert!(
        background_output(&p).contains("converged-ok"),
        "{}",
        background_output(&p)
    );
    assert_list_says(&p, &daemon, "Converged");
    assert_destroy_leaves_nothing(&p, &daemon);
}

// Restarted while the converge command runs in the instance. The runtimes differ, and each
// outcome is consistent:
// - LXD: a stopping daemon waits for its running operations, so the command finishes, the
//   daemon exits and comes back, and the step passes;
// - Docker (`live-restore`): the command's output stream is cut when dockerd stops; the
//   command keeps running in the container, but its result is lost, so the step fails with an
//   error that names the engine; the container survives and the next `converge` passes.

#[test]
fn restarted_during_exec_on_docker() {
    restarted_during_exec(Runtime::Docker);
}

#[test]
fn restarted_during_exec_on_lxd() {
    restarted_during_exec(Runtime::Lxd);
}

fn restarted_during_exec(runtime: Runtime) {
    let mut daemon = PrivateDaemon::start(runtime, &format!("dexec-{}", runtime.label()));
    // The gate is on `verify`, which this run never reaches. The first converge runs long
    // enough to be cut; the second one is quick.
    let p = project(
        "dexec",
        runtime,
        "verify",
        "'if [ ! -e /tmp/once ]; then touch /tmp/once /tmp/in-exec; sleep 5; fi; echo converged-ok'",
    );
    let mut child = spawn(&p, &daemon, &["converge", "-c", "2"]);
    wait_until_commands_run(&p, &daemon, &mut child);
    daemon.stop();
    daemon.start_again();
    let code = wait_for_exit(&p, child);
    match runtime {
        Runtime::Lxd => {
            assert_eq!(code, 0, "{}", background_output(&p));
            assert_list_says(&p, &daemon, "Converged");
        }
        Runtime::Docker => {
            assert_eq!(code, 20, "{}", background_output(&p));
            assert_names_the_daemon(&daemon, &background_output(&p));
            assert_state_after_failed(&p, "converge", Some("create"));
            assert_eq!(
                daemon.running_containers().len(),
                2,
                "{:?}",
                daemon.containers()
            );
            let (code, stdout, stderr) = run(&p, &daemon, &["converge"]);
            assert_eq!(code, 0, "{stdout}{stderr}");
            assert_list_says(&p, &daemon, "Converged");
        }
    }
    assert_destroy_leaves_nothing(&p, &daemon);
}

/// Waits until the converge command has started in both instances (it touches /tmp/in-exec).
fn wait_until_commands_run(p: &TestProject, daemon: &PrivateDaemon, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let names = daemon.running_containers();
        let running = names.len() == 2
            && names.iter().all(|n| {
                let mut c = daemon.cli();
                match daemon.runtime() {
                    Runtime::Docker => c.args(["exec", n, "test", "-e", "/tmp/in-exec"]),
                    Runtime::Lxd => c.args(["exec", n, "--", "test", "-e", "/tmp/in-exec"]),
                };
                c.output().is_ok_and(|o| o.status.success())
            });
        if running {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "the run ended ({status}) before its commands ran:\n{}",
                background_output(p)
            );
        }
        assert!(
            Instant::now() < deadline,
            "no command ran:\n{}",
            background_output(p)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

// Docker, with kitchen-driver paused (SIGSTOP) while the engine restarts: when it resumes, the
// engine answers again but no longer knows the exec (execs live in its memory). The step fails
// with an error that names the engine and says the command's result was lost; the next
// `converge` passes.

#[test]
fn restarted_while_paused_in_exec_on_docker() {
    let runtime = Runtime::Docker;
    let mut daemon = PrivateDaemon::start(runtime, "dpaused-docker");
    let p = project(
        "dpaused",
        runtime,
        "verify",
        "'if [ ! -e /tmp/once ]; then touch /tmp/once /tmp/in-exec; sleep 5; fi; echo converged-ok'",
    );
    let mut child = spawn(&p, &daemon, &["converge", "-c", "2"]);
    wait_until_commands_run(&p, &daemon, &mut child);
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::STOP).unwrap();
    daemon.stop();
    daemon.start_again();
    rustix::process::kill_process(pid, rustix::process::Signal::CONT).unwrap();
    let code = wait_for_exit(&p, child);
    assert_eq!(code, 20, "{}", background_output(&p));
    let said = background_output(&p);
    let engine = format!("the Docker engine at {}", daemon.env()[0].1);
    assert!(said.contains(&engine), "no `{engine}` in:\n{said}");
    assert!(said.contains("run the step again"), "{said}");
    assert_state_after_failed(&p, "converge", Some("create"));
    assert_eq!(
        daemon.running_containers().len(),
        2,
        "{:?}",
        daemon.containers()
    );
    let (code, stdout, stderr) = run(&p, &daemon, &["converge"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_destroy_leaves_nothing(&p, &daemon);
}
