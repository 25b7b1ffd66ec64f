//! `ecs-runner run --local` on the real Docker engine: the rendered task definitions run as
//! containers, with the bundle, markers and exit codes of a real task. The images are the
//! ones `scripts/setup-host` builds (`kitchen/busybox:latest`, `kitchen/debian-12:latest`).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{Project, bin, ecs_runner_in};

/// The project's local containers still present (there must be none after a run).
fn leftovers(project_dir: &Path) -> Vec<String> {
    let out = Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=kitchen.ecs.project={}", project_dir.display()),
        ])
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The closing summary's row of `instance`, as words (Instance, Last Action, Result, ...).
fn summary_row(stdout: &str, instance: &str) -> String {
    stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(instance))
        .unwrap_or_else(|| panic!("no summary row for {instance}:\n{stdout}"))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        if name == ".kitchen" {
            continue;
        }
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(&name));
        } else {
            std::fs::copy(e.path(), to.join(&name)).unwrap();
        }
    }
}

#[test]
fn the_examples_shell_suite_passes_on_both_images() {
    let dir = tempfile::Builder::new()
        .prefix(&common::unique_name("examples"))
        .tempdir()
        .unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples"),
        dir.path(),
    );
    let junit = dir.path().join("junit.xml");
    let out = ecs_runner_in(
        dir.path(),
        &[
            "run",
            "--local",
            "default-docker",
            "--junit",
            junit.to_str().unwrap(),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for instance in ["default-docker-busybox", "default-docker-debian-12"] {
        assert!(
            stdout.contains(&format!(
                "[{instance}]        PASS: /etc/hello/hello.conf is in place"
            )),
            "{stdout}"
        );
        assert!(
            summary_row(&stdout, instance).starts_with(&format!("{instance} verify passed")),
            "{stdout}"
        );
    }
    let xml = std::fs::read_to_string(&junit).unwrap();
    // kitchen-driver's reporter: an instance that passed without cases is one case `verify`.
    assert!(
        xml.contains(r#"<testsuites name="ecs-runner" tests="2" failures="0" errors="0""#),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<testcase name="verify" classname="default.docker-busybox""#),
        "{xml}"
    );
    let log = std::fs::read_to_string(dir.path().join(".kitchen/logs/default-docker-busybox.log"))
        .unwrap();
    assert!(
        log.contains("converged by kitchen-driver (TEST_KITCHEN=1)"),
        "{log}"
    );
    assert!(leftovers(dir.path()).is_empty());
}

const BATS_PROJECT: &str = r#"
driver: {name: docker, image: "kitchen/debian-12:latest"}
provisioner: {name: shell, sudo: false}
verifier: {name: bats}
platforms: [{name: debian}]
suites:
  - name: hello
  - name: broken
  - name: unconverged
    provisioner: {command: "echo converging; exit 3"}
"#;

const PROVISION: &str =
    "#!/bin/sh\nset -e\nmkdir -p /etc/hello\necho 'greeting=hi' > /etc/hello/hello.conf\n";
const PASSING: &str = "@test \"the file exists\" {\n  [ -f /etc/hello/hello.conf ]\n}\n\n@test \"it greets\" {\n  grep -qx 'greeting=hi' /etc/hello/hello.conf\n}\n\n@test \"not yet\" {\n  skip \"no network\"\n}\n";
const FAILING: &str = "@test \"the file exists\" {\n  [ -f /etc/hello/hello.conf ]\n}\n\n@test \"it says goodbye\" {\n  grep -qx 'greeting=bye' /etc/hello/hello.conf\n}\n";

#[test]
fn bats_cases_become_junit_cases_and_a_failing_suite_fails() {
    let project = Project::new(
        BATS_PROJECT,
        &[
            ("test/integration/bootstrap.sh", PROVISION),
            ("test/integration/hello/bats/hello.bats", PASSING),
            ("test/integration/broken/bats/hello.bats", FAILING),
            ("test/integration/unconverged/bats/hello.bats", PASSING),
        ],
    );
    let junit = project.path().join("junit.xml");
    let out = ecs_runner_in(
        project.path(),
        &[
            "run",
            "--local",
            "-c",
            "2",
            "--junit",
            junit.to_str().unwrap(),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(ecs_runner::EXIT_FAILED), "{stdout}");
    assert_eq!(
        summary_row(&stdout, "hello-debian").split(' ').nth(2),
        Some("passed"),
        "{stdout}"
    );
    assert!(
        summary_row(&stdout, "broken-debian").contains("verify failed"),
        "{stdout}"
    );
    assert!(
        summary_row(&stdout, "broken-debian").ends_with("1 test(s) failed: it says goodbye"),
        "{stdout}"
    );
    assert!(
        summary_row(&stdout, "unconverged-debian").contains("converge errored"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[unconverged-debian] >>>>>> converge exited with code 3"),
        "{stdout}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    // kitchen-driver's shape: a suite per instance, a case per bats test (class name
    // suite.platform), a converge failure as one error case.
    let suite = |name: &str| {
        let start = xml
            .find(&format!(r#"<testsuite name="{name}""#))
            .unwrap_or_else(|| panic!("{xml}"));
        let end = xml[start..].find("</testsuite>").unwrap() + start;
        xml[start..end].to_owned()
    };
    let hello = suite("hello-debian");
    assert!(
        hello.contains(r#"tests="3" skipped="1" errors="0" failures="0""#),
        "{hello}"
    );
    assert!(
        hello.contains(r#"<testcase name="it greets" classname="hello.debian""#),
        "{hello}"
    );
    let broken = suite("broken-debian");
    assert!(
        broken.contains(r#"tests="2" skipped="0" errors="0" failures="1""#),
        "{broken}"
    );
    assert!(
        broken.contains(r#"<testcase name="it says goodbye" classname="broken.debian""#),
        "{broken}"
    );
    assert!(broken.contains("<failure"), "{broken}");
    let unconverged = suite("unconverged-debian");
    assert!(unconverged.contains(r#"errors="1""#), "{unconverged}");
    assert!(
        unconverged.contains(r#"<error message="converge exited with code 3""#),
        "{unconverged}"
    );
    assert!(leftovers(project.path()).is_empty());
}

#[test]
fn ctrl_c_stops_the_containers_and_leaves_nothing() {
    let project = Project::new(
        "driver: {name: docker, image: \"kitchen/busybox:latest\"}\nprovisioner: {name: shell, command: 'echo started; sleep 600'}\nverifier: {name: shell}\nplatforms: [{name: bb}]\nsuites: [{name: a}, {name: b}]\n",
        &[],
    );
    let mut child = Command::new(bin())
        .current_dir(project.path())
        .args(["run", "--local"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until both containers print, then interrupt (no timed assertion: the test's
    // slow-timeout ends it if this never happens).
    let stdout = child.stdout.take().unwrap();
    let mut seen = 0;
    let mut text = String::new();
    for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
        let line = line.unwrap();
        text.push_str(&line);
        text.push('\n');
        if line.ends_with("       started") {
            seen += 1;
            if seen == 2 {
                let ok = Command::new("kill")
                    .args(["-INT", &child.id().to_string()])
                    .status()
                    .unwrap();
                assert!(ok.success());
            }
        }
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(ecs_runner::EXIT_INTERRUPTED), "{text}");
    assert!(
        text.contains("stopping the task: ecs-runner: interrupted"),
        "{text}"
    );
    assert!(
        text.contains("stopped the tasks of 2 instance(s)"),
        "{text}"
    );
    assert!(leftovers(project.path()).is_empty());
}

#[test]
fn an_image_that_is_not_there_is_an_infrastructure_error() {
    let project = Project::new(
        "driver: {name: docker, image: \"kitchen/no-such-image:never\"}\nprovisioner: {name: shell, command: 'true'}\nverifier: {name: shell}\nplatforms: [{name: x}]\nsuites: [{name: a}]\n",
        &[],
    );
    let out = ecs_runner_in(project.path(), &["run", "--local"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(ecs_runner::EXIT_INFRASTRUCTURE),
        "{stdout}"
    );
    // As an ECS agent would, the engine was asked to pull the image, and could not.
    assert!(
        summary_row(&stdout, "a-x").contains("errored")
            && summary_row(&stdout, "a-x").contains("CannotPullContainerError: kitchen"),
        "{stdout}"
    );
    assert!(leftovers(project.path()).is_empty());
}

#[test]
fn an_unsupported_verifier_is_refused_before_any_container_starts() {
    let project = Project::new(
        "driver: {name: docker, image: \"kitchen/busybox:latest\"}\nprovisioner: {name: shell, command: 'true'}\nverifier: {name: inspec}\nplatforms: [{name: x}]\nsuites: [{name: a}]\n",
        &[],
    );
    let out = ecs_runner_in(project.path(), &["run", "--local"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(ecs_runner::EXIT_USAGE), "{stderr}");
    assert!(
        stderr.contains(
            "instance a-x: verifier `inspec` cannot run in an ECS task: use `shell` or `bats`"
        ),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}
