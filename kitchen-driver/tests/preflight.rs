//! Unsupported plugins are refused before anything starts: through the real binary on the real
//! Docker engine, an instance whose verifier is `inspec` fails `test` before create (nothing
//! is created, no state file is written), while its sibling with a supported verifier runs.

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
