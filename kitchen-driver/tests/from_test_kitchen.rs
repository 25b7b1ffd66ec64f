//! What a user switching from test-kitchen meets, through the real binary on the real Docker
//! engine: unsupported plugins are refused before anything starts (an instance whose verifier
//! is `inspec` fails `test` before create, while its sibling runs), and `login` with piped
//! input runs the piped commands. Every test removes what it created.

mod common;

use common::{TestProject, text};

const YML: &str = r#"
driver: {name: docker, image: "kitchen/busybox:latest"}
provisioner: {name: shell, sudo: false, command: "echo converged"}
platforms:
  - name: busybox
suites:
  - name: inspec
    verifier: {name: inspec}
  - name: plain
    verifier: {name: shell, remote_exec: true, command: "true"}
"#;

#[test]
fn an_unsupported_verifier_fails_before_create_and_its_sibling_runs() {
    let p = TestProject::new("preflight");
    p.write("kitchen.yml", YML);
    let out = p
        .kitchen_driver(300)
        .args(["test", "-c", "2"])
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(20), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(
            "verifier plugin `inspec` is not supported by kitchen-driver (instance inspec-busybox)"
        ),
        "{stdout}\n{stderr}"
    );
    assert!(
        !stdout.contains("Creating <inspec-busybox>"),
        "create ran for the refused instance:\n{stdout}"
    );
    assert!(
        stdout.contains("Finished verifying <plain-busybox>"),
        "{stdout}"
    );
    assert!(!p.state_exists("inspec-busybox"));
    assert!(
        !p.state_exists("plain-busybox"),
        "test destroys a passing instance"
    );
    p.assert_no_containers();
}

#[test]
fn a_piped_login_runs_the_piped_commands() {
    let p = TestProject::new("login-piped");
    p.write("kitchen.yml", YML);
    let out = p
        .kitchen_driver(120)
        .args(["create", "plain"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = p
        .kitchen_driver(60)
        .args(["login", "plain-busybox"])
        .write_stdin("echo piped-$((6*7))\nexit 3\n")
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(stdout.contains("piped-42"), "{stdout}\n{stderr}");
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    // Without an `exit`, the end of the input ends the shell.
    let out = p
        .kitchen_driver(60)
        .args(["login", "plain-busybox"])
        .write_stdin("echo no-newline-$((1+1))")
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(stdout.contains("no-newline-2"), "{stdout}\n{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let out = p.kitchen_driver(120).args(["destroy"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    p.assert_no_containers();
}
