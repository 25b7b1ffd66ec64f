//! No run hangs forever, on LXD and Docker, through the real `kitchen-driver` binary:
//! `--step-timeout` stops a converge that hangs and kills its commands in the instance; a
//! driver's `step_timeout` stops a local hook that hangs and kills it on the host; a converge
//! that leaves a background process holding its output open still ends (on Docker by itself;
//! on LXD, whose exec operation lasts as long as anything holds the output, through the step
//! timeout). Each test ends by asserting that nothing of its project remains.

use kitchen_driver::state::keys;
use test_support::{Runtime, TestProject, text};

/// Suite `default` on busybox, converged by `command` (through `sh -c` in the instance).
fn project(label: &str, runtime: Runtime, command: &str, extra: &str) -> TestProject {
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
  command: "{command}"
platforms:
  - name: busybox
    driver:
      image: {image}
suites:
  - name: default
{extra}"#,
            driver = runtime.driver(),
            image = runtime.busybox_image()
        ),
    );
    p
}

const INSTANCE: &str = "default-busybox";

fn destroy_leaves_nothing(p: &TestProject) {
    let out = p.kitchen_driver(300).args(["destroy"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    p.assert_no_containers();
}

/// Creates the instance, then runs `converge --step-timeout SECS`, which must fail (exit 20)
/// saying the step ran out of time. Returns converge's stdout.
fn converge_cut_by_step_timeout(p: &TestProject, secs: u32) -> String {
    let out = p.kitchen_driver(300).args(["create"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let out = p
        .kitchen_driver(300)
        .args(["converge", "--step-timeout", &secs.to_string()])
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(20),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    let message = format!("converge did not finish within its step timeout of {secs}s");
    assert!(stdout.contains(&message), "{stdout}");
    stdout
}

/// The instance's process list (`ps -o pid,args`, through `kitchen-driver exec`).
fn instance_processes(p: &TestProject) -> String {
    let ps = p
        .kitchen_driver(120)
        .args(["exec", INSTANCE, "-c", "ps -o pid,args"])
        .output()
        .unwrap();
    let listing = text(&ps.stdout);
    assert_eq!(ps.status.code(), Some(0), "{listing}");
    assert!(listing.contains("PID"), "{listing}");
    listing
}

#[test]
fn step_timeout_kills_a_hanging_converge_in_the_instance_on_lxd() {
    step_timeout_kills_a_hanging_converge(Runtime::Lxd);
}

#[test]
fn step_timeout_kills_a_hanging_converge_in_the_instance_on_docker() {
    step_timeout_kills_a_hanging_converge(Runtime::Docker);
}

fn step_timeout_kills_a_hanging_converge(runtime: Runtime) {
    // A background sleep (holding stdout) and a foreground one: both must die.
    let p = project(
        &format!("step-timeout-{}", runtime.label()),
        runtime,
        "sleep 6001 & sleep 6002",
        "",
    );
    converge_cut_by_step_timeout(&p, 3);
    let state = p.state(INSTANCE);
    assert_eq!(state.get_str(keys::LAST_ACTION), Some("create"));
    assert_eq!(
        state.get_str(keys::LAST_ERROR),
        Some("Kitchen::ActionFailed")
    );
    // Nothing of the converge runs on in the instance.
    let listing = instance_processes(&p);
    assert!(
        !listing.contains("sleep 6001") && !listing.contains("sleep 6002"),
        "the converge's processes survived:\n{listing}"
    );
    destroy_leaves_nothing(&p);
}

#[test]
fn driver_step_timeout_kills_a_hanging_local_hook_on_the_host_on_lxd() {
    driver_step_timeout_kills_a_hanging_local_hook(Runtime::Lxd);
}

#[test]
fn driver_step_timeout_kills_a_hanging_local_hook_on_the_host_on_docker() {
    driver_step_timeout_kills_a_hanging_local_hook(Runtime::Docker);
}

/// Host processes whose command line is exactly `sleep <secs>`.
fn host_sleeps(secs: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .filter(|c| *c == format!("sleep\0{secs}\0").into_bytes())
        .count()
}

fn driver_step_timeout_kills_a_hanging_local_hook(runtime: Runtime) {
    // A number no other test sleeps for, unique per runtime (both run at once).
    let secs = match runtime {
        Runtime::Docker => "6103",
        Runtime::Lxd => "6104",
    };
    let p = project(
        &format!("step-timeout-hook-{}", runtime.label()),
        runtime,
        "echo converged-ok",
        &format!(
            "    driver:\n      step_timeout: 2\n    lifecycle:\n      pre_create:\n        - local: sleep {secs}; touch hook-finished\n"
        ),
    );
    let out = p.kitchen_driver(300).args(["create"]).output().unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(20),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains("create did not finish within its step timeout of 2s"),
        "{stdout}"
    );
    assert!(!p.root().join("hook-finished").exists(), "{stdout}");
    // `step_timeout` is a known driver key: no warning calls it ignored.
    assert!(
        !stdout.contains("key `step_timeout` is ignored"),
        "{stdout}"
    );
    assert_eq!(
        host_sleeps(secs),
        0,
        "the hook's sleep survived on the host"
    );
    destroy_leaves_nothing(&p);
}

/// LXD 5.0.2 ends an exec operation only when every process holding the command's output
/// has closed it (`lxc exec c -- sh -c 'sleep 300 & echo hi'` waits 300 s too), so there the
/// step timeout is what ends such a converge.
#[test]
fn a_background_process_holding_stdout_is_ended_by_the_step_timeout_on_lxd() {
    let p = project(
        "bg-stdout-lxd",
        Runtime::Lxd,
        "sleep 6006 & echo converged-ok",
        "",
    );
    let stdout = converge_cut_by_step_timeout(&p, 5);
    assert!(stdout.contains("converged-ok"), "{stdout}");
    let listing = instance_processes(&p);
    assert!(!listing.contains("sleep 6006"), "{listing}");
    destroy_leaves_nothing(&p);
}

#[test]
fn a_background_process_holding_stdout_does_not_hang_converge_on_docker() {
    a_background_process_holding_stdout_does_not_hang_converge(Runtime::Docker);
}

fn a_background_process_holding_stdout_does_not_hang_converge(runtime: Runtime) {
    let p = project(
        &format!("bg-stdout-{}", runtime.label()),
        runtime,
        "sleep 6005 & echo converged-ok",
        "",
    );
    let out = p.kitchen_driver(300).args(["converge"]).output().unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("converged-ok"), "{stdout}");
    assert_eq!(
        p.state(INSTANCE).get_str(keys::LAST_ACTION),
        Some("converge")
    );
    destroy_leaves_nothing(&p);
}
