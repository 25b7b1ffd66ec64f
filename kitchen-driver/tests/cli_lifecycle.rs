//! The real `kitchen-driver` binary on temporary kitchen projects with `driver: docker`:
//! exit codes, live output, state, logs, concurrency, --destroy modes, exec and login.
//! Nothing a test creates survives it (drop guard on the project's label), and each test ends
//! by asserting that no container of its project remains.

use assert_cmd::Command;
use kitchen_driver::lifecycle::Action;
use test_support::{Runtime, TestProject, basic_kitchen_yml, standard_project, text};

/// A project with the standard suite's files (bootstrap.sh, data/verify.sh).
fn project(label: &str, kitchen_yml: &str) -> TestProject {
    standard_project(label, kitchen_yml)
}

/// The standard kitchen.yml on Docker (suite `default` on platform `busybox`).
fn basic() -> String {
    basic_kitchen_yml(Runtime::Docker)
}

fn kd(p: &TestProject) -> Command {
    p.kitchen_driver(300)
}

// The same cases on Docker and on LXD, with the standard project.

#[test]
fn test_passes_and_leaves_nothing_on_docker() {
    test_passes_and_leaves_nothing(Runtime::Docker);
}

#[test]
fn test_passes_and_leaves_nothing_on_lxd() {
    test_passes_and_leaves_nothing(Runtime::Lxd);
}

fn test_passes_and_leaves_nothing(runtime: Runtime) {
    let p = project(
        &format!("cli-pass-{}", runtime.label()),
        &basic_kitchen_yml(runtime),
    );
    let out = kd(&p).args(["test"]).output().unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains("[default-busybox]        converged-ok"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[default-busybox]        verified-ok"),
        "{stdout}"
    );
    assert!(stdout.contains("kitchen-driver is finished"), "{stdout}");
    assert!(!p.state_exists("default-busybox"));
    let log = std::fs::read_to_string(p.root().join(".kitchen/logs/default-busybox.log")).unwrap();
    assert!(log.contains("verified-ok"), "{log}");
    p.assert_no_containers();
}

#[test]
fn verify_failure_exits_20_with_last_error_then_destroy_cleans_up_on_docker() {
    verify_failure_exits_20_with_last_error_then_destroy_cleans_up(Runtime::Docker);
}

#[test]
fn verify_failure_exits_20_with_last_error_then_destroy_cleans_up_on_lxd() {
    verify_failure_exits_20_with_last_error_then_destroy_cleans_up(Runtime::Lxd);
}

fn verify_failure_exits_20_with_last_error_then_destroy_cleans_up(runtime: Runtime) {
    let yml = basic_kitchen_yml(runtime).replace(
        "command: sh /tmp/kitchen/data/verify.sh",
        "command: echo broken; exit 4",
    );
    let p = project(&format!("cli-verifyfail-{}", runtime.label()), &yml);
    let out = kd(&p).args(["verify", "default-busybox"]).output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(20),
        "{}\n{stderr}",
        text(&out.stdout)
    );
    assert!(stderr.contains("1 actions failed."), "{stderr}");
    assert!(stderr.contains("verify failed"), "{stderr}");
    let st = p.state("default-busybox");
    assert_eq!(st.last_action(), Some(Action::Setup));
    assert_eq!(st.last_error(), Some("Kitchen::ActionFailed"));
    // list shows the error (the loader engineer's command reads our state files).
    let list = kd(&p).args(["list", "--json"]).output().unwrap();
    assert!(
        text(&list.stdout).contains("ActionFailed"),
        "{}",
        text(&list.stdout)
    );

    let out = kd(&p).args(["destroy"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!p.state_exists("default-busybox"));
    p.assert_no_containers();
}

#[test]
fn converge_failure_and_destroy_modes() {
    let p = project("cli-convfail", &basic());
    p.write(
        "test/integration/default/bootstrap.sh",
        "#!/bin/sh\necho converge-breaks\nexit 2\n",
    );
    // passing (default): a failed instance is kept for inspection.
    let out = kd(&p).args(["test"]).output().unwrap();
    assert_eq!(out.status.code(), Some(20), "{}", text(&out.stderr));
    assert_eq!(p.containers(Some("default-busybox")).len(), 1);
    assert_eq!(
        p.state("default-busybox").last_action(),
        Some(Action::Create)
    );
    // always: destroyed even though it failed.
    let out = kd(&p)
        .args(["test", "--destroy", "always"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(20), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("converge-breaks"));
    assert!(!p.state_exists("default-busybox"));
    p.assert_no_containers();
    // never: kept even when passing.
    p.write(
        "test/integration/default/bootstrap.sh",
        "#!/bin/sh\nmkdir -p /etc/hello; echo 'hello from x' > /etc/hello/hello.conf\n",
    );
    let out = kd(&p).args(["test", "-d", "never"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        p.state("default-busybox").last_action(),
        Some(Action::Verify)
    );
    assert_eq!(p.containers(Some("default-busybox")).len(), 1);
    let out = kd(&p).args(["destroy", "all"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    p.assert_no_containers();
}

#[test]
fn three_suites_with_c_3_and_regex_selection() {
    let yml = r#"
driver: {name: docker}
provisioner: {name: shell, sudo: false, command: "echo converged-$(hostname)"}
verifier: {name: shell, command: 'test "$KITCHEN_SUITE" != ""'}
platforms:
  - name: busybox
    driver: {image: "kitchen/busybox:latest"}
suites:
  - name: alpha
  - name: beta
  - name: gamma
  - name: other
"#;
    let p = project("cli-conc", yml);
    let out = kd(&p)
        .args(["test", "-c", "3", "alpha", "beta", "gamma"])
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    for s in ["alpha", "beta", "gamma"] {
        assert!(
            stdout.contains(&format!("[{s}-busybox]        converged-{s}-busybox")),
            "{stdout}"
        );
    }
    assert!(!stdout.contains("other-busybox"), "not selected: {stdout}");
    // Nothing matched: exit 1.
    let out = kd(&p).args(["create", "nomatch"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("nomatch"),
        "{}",
        text(&out.stderr)
    );
    p.assert_no_containers();
}

#[test]
fn fail_fast_stops_the_next_instance() {
    let yml = r#"
driver: {name: docker}
provisioner: {name: shell, sudo: false, command: "exit 1"}
platforms:
  - name: busybox
    driver: {image: "kitchen/busybox:latest"}
suites:
  - name: first
  - name: second
"#;
    let p = project("cli-failfast", yml);
    let out = kd(&p).args(["converge", "--fail-fast"]).output().unwrap();
    assert_eq!(out.status.code(), Some(20), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("1 actions failed."),
        "{}",
        text(&out.stderr)
    );
    let stderr = text(&out.stderr);
    assert!(p.state_exists("first-busybox"), "first ran first: {stderr}");
    assert!(
        !p.state_exists("second-busybox"),
        "second never started: {stderr}"
    );
    let out = kd(&p).args(["destroy"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    p.assert_no_containers();
}

#[test]
fn unknown_driver_fails_only_when_an_action_runs() {
    let yml = basic().replace("name: docker", "name: vagrant");
    let p = project("cli-unknown", &yml);
    let out = kd(&p).args(["list"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = kd(&p).args(["create"]).output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(20), "{stderr}");
    assert!(
        stderr.contains("`vagrant`") && stderr.contains("lxd, docker"),
        "{stderr}"
    );
    p.assert_no_containers();
}

#[test]
fn exec_debug_log_level_and_login_through_a_pty() {
    let p = project("cli-exec", &basic());
    let out = kd(&p).args(["create", "-l", "debug"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("Creating container kitchen-"),
        "debug lines shown: {}",
        text(&out.stdout)
    );

    let out = kd(&p)
        .args(["exec", "default-busybox", "-c", "echo in-$(hostname)"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("[default-busybox]        in-default-busybox"),
        "{}",
        text(&out.stdout)
    );
    let out = kd(&p)
        .args(["exec", "default-busybox", "-c", "exit 3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(20));

    // login: the runtime's client gets a real terminal (util-linux `script` provides the pty).
    let tty = test_support::login_through_pty(
        &p,
        "default-busybox",
        "[ -t 0 ] && echo tty-yes-$(hostname)",
        "tty-yes-default-busybox",
    );
    assert!(tty.contains("tty-yes-default-busybox"), "{tty}");

    let out = kd(&p).args(["destroy"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    // login to a destroyed instance says so.
    let out = kd(&p).args(["login", "default-busybox"]).output().unwrap();
    assert_eq!(out.status.code(), Some(20));
    assert!(
        text(&out.stderr).contains("not yet been created"),
        "{}",
        text(&out.stderr)
    );
    p.assert_no_containers();
}

#[test]
fn six_instances_with_c_leave_no_container_and_no_state() {
    let yml = r#"
driver: {name: docker}
provisioner: {name: shell, sudo: false}
verifier: {name: shell, remote_exec: true, command: "sh /tmp/kitchen/data/verify.sh"}
platforms:
  - name: busybox
    driver: {image: "kitchen/busybox:latest"}
  - name: debian-12
    driver: {image: "kitchen/debian-12:latest"}
suites:
  - name: default
  - name: second
  - name: third
"#;
    let p = project("cli-six", yml);
    for s in ["second", "third"] {
        for f in ["bootstrap.sh", "data/verify.sh"] {
            let src =
                std::fs::read_to_string(p.root().join("test/integration/default").join(f)).unwrap();
            p.write(&format!("test/integration/{s}/{f}"), &src);
        }
    }
    let out = kd(&p).args(["test", "-c"]).output().unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert_eq!(stdout.matches("verified-ok").count(), 6, "{stdout}");
    let mut left: Vec<String> = std::fs::read_dir(p.root().join(".kitchen"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["logs"], "no state or lock files remain");
    p.assert_no_containers();
}

#[test]
fn ctrl_c_finishes_the_running_step_and_destroy_always_still_cleans_up() {
    use std::io::{BufRead, BufReader};
    let p = project("cli-sigint", &basic());
    p.write(
        "test/integration/default/bootstrap.sh",
        "#!/bin/sh\necho converge-started\nsleep 3\necho converge-done\n",
    );
    let bin = assert_cmd::cargo::cargo_bin("kitchen-driver");
    let mut child = std::process::Command::new(bin)
        .args(["test", "--destroy", "always"])
        .current_dir(p.root())
        .env("HOME", p.root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = Vec::new();
    let mut sent = false;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if !sent && line.contains("converge-started") {
            let pid = child.id().to_string();
            let ok = std::process::Command::new("kill")
                .args(["-INT", &pid])
                .status()
                .unwrap();
            assert!(ok.success());
            sent = true;
        }
        lines.push(line);
    }
    let status = child.wait().unwrap();
    let out = lines.join("\n");
    assert!(sent, "{out}");
    assert_eq!(status.code(), Some(130), "{out}");
    assert!(out.contains("Interrupted"), "{out}");
    assert!(
        out.contains("converge-done"),
        "the running step finished: {out}"
    );
    assert!(!out.contains("Verifying"), "no further step started: {out}");
    assert!(out.contains("Destroying <default-busybox>"), "{out}");
    assert!(!p.state_exists("default-busybox"));
    p.assert_no_containers();
}

/// Replaces what changes between runs (ids, hashes, durations, paths) with stable tokens.
fn redact(p: &TestProject, s: &str) -> String {
    let s = s.replace(&p.root().to_string_lossy().into_owned(), "[PROJECT]");
    let s = regex::Regex::new(r"kitchen-[0-9a-f]{8}-")
        .unwrap()
        .replace_all(&s, "kitchen-[HASH]-");
    let s = regex::Regex::new(r"\b[0-9a-f]{64}\b|\([0-9a-f]{12}\)")
        .unwrap()
        .replace_all(&s, "[ID]");
    let s = regex::Regex::new(r"\((\d+m)?\d+\.\d+s\)")
        .unwrap()
        .replace_all(&s, "([TIME])");
    // The summary's duration columns: redacted to a fixed width so the table stays aligned.
    let s = regex::Regex::new(r"\b(\d+h)?(\d+m)?\d+\.\d+s\b")
        .unwrap()
        .replace_all(&s, "[T]");
    // The summary's peak memory: Docker's stats API reports it on some samples and not on
    // others here, so the cell is blanked (its column is as wide either way).
    let s = regex::Regex::new(r"\b\d+(\.\d)? (B|KiB|MiB|GiB)\b")
        .unwrap()
        .replace_all(&s, |c: &regex::Captures| " ".repeat(c[0].len()));
    let s: Vec<&str> = s.lines().map(str::trim_end).collect();
    s.join("\n") + "\n"
}

#[test]
fn output_of_a_passing_and_a_failing_test_is_stable() {
    let p = project("cli-snap", &basic());
    let out = kd(&p).args(["test"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    insta::assert_snapshot!("test_passing_stdout", redact(&p, &text(&out.stdout)));

    p.write(
        "test/integration/default/bootstrap.sh",
        "#!/bin/sh\necho about to fail >&2\nexit 3\n",
    );
    let out = kd(&p)
        .args(["test", "--destroy", "always"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(20));
    insta::assert_snapshot!("test_failing_stdout", redact(&p, &text(&out.stdout)));
    insta::assert_snapshot!("test_failing_stderr", redact(&p, &text(&out.stderr)));
    p.assert_no_containers();
}

#[test]
fn junit_report_has_a_suite_per_instance_and_the_converge_failure() {
    // The standard project plus a suite whose converge fails.
    let yml = format!(
        "{}  - name: broken\n    provisioner:\n      command: echo broken-converge; exit 4\n",
        basic()
    );
    let p = project("cli-junit", &yml);
    let report = p.root().join("junit.xml");
    let out = kd(&p)
        .args(["test", "-c", "--destroy", "always", "--junit"])
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(20), "{}", text(&out.stderr));
    let xml = std::fs::read_to_string(&report).expect("the report is written on failure too");
    // junit-10.xsd has no `skipped` on <testsuites>; the converge failure is an error, with
    // its reason as the message and the converge's output in the body.
    assert!(
        xml.contains(r#"<testsuites name="kitchen-driver" tests="2" failures="0" errors="1""#),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<testsuite name="default-busybox""#),
        "{xml}"
    );
    assert!(xml.contains(r#"<testsuite name="broken-busybox""#), "{xml}");
    assert!(
        xml.contains(r#"<testcase name="converge" classname="broken.busybox""#),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<error message="instance broken-busybox: converge exited with code 4"#),
        "{xml}"
    );
    assert!(xml.contains("broken-converge\n"), "{xml}");
    p.assert_no_containers();
}
