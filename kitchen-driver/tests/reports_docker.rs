//! The reports of the real binary on Docker (busybox): JUnit (valid against junit-10.xsd),
//! the closing summary, the Markdown summary, JSON lines, GitHub and GitLab markers, the live
//! display under a pseudo-terminal, and no escape codes into a pipe.

mod common;

use std::path::Path;

use common::{TestProject, text};

const KITCHEN_YML: &str = r#"
driver:
  name: docker
provisioner:
  name: shell
  sudo: false
verifier:
  name: shell
  remote_exec: true
platforms:
  - name: busybox
    driver:
      image: kitchen/busybox:latest
suites:
  - name: pass
    verifier:
      command: echo greeting=hello
  - name: fail
    verifier:
      command: "echo checking greeting; echo 'ERROR: expected greeting=hello, got hullo' >&2; exit 1"
"#;

fn project(label: &str) -> TestProject {
    let p = TestProject::new(label);
    p.write("kitchen.yml", KITCHEN_YML);
    p.write(
        "test/integration/pass/bootstrap.sh",
        "#!/bin/sh\necho converged-ok\n",
    );
    p.write(
        "test/integration/fail/bootstrap.sh",
        "#!/bin/sh\necho converged-ok\n",
    );
    p
}

fn validate_junit(path: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/validate-junit");
    let out = std::process::Command::new(script)
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stderr),
        std::fs::read_to_string(path).unwrap_or_default()
    );
}

#[test]
fn junit_summary_and_markdown_of_a_passing_and_a_failing_suite() {
    let p = project("rep-junit");
    let junit = p.root().join("reports/deep/junit.xml");
    let md = p.root().join("reports/summary.md");
    let out = p
        .kitchen_driver(300)
        .args(["test", "-c", "--destroy", "always", "--junit"])
        .arg(&junit)
        .arg("--summary-md")
        .arg(&md)
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(20),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(
        !stdout.contains('\x1b'),
        "no escape codes into a pipe: {stdout:?}"
    );
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        regex::Regex::new(r"^Summary \[[0-9hm.]+s\] 2 instances: 1 passed, 1 failed$")
            .unwrap()
            .is_match(last),
        "{stdout}"
    );
    // Peak memory shows when Docker's stats API reported it (on this host it sometimes
    // answers with empty counters).
    assert!(
        regex::Regex::new(r"(?m)^fail-busybox +verify +failed +[0-9.]+s +([0-9.]+ (B|KiB|MiB) +)?instance fail-busybox: verify failed: verifier command exited with code 1")
            .unwrap()
            .is_match(&stdout),
        "{stdout}"
    );

    validate_junit(&junit);
    let xml = std::fs::read_to_string(&junit).unwrap();
    for expected in [
        r#"<testsuites name="kitchen-driver" tests="2" failures="1" errors="0""#,
        r#"<testcase name="verify" classname="pass.busybox" time="#,
        r#"<testcase name="verify" classname="fail.busybox" time="#,
        r#"<failure message="instance fail-busybox: verify failed: verifier command exited with code 1"#,
        r#"<property name="step.converge.seconds""#,
        "<system-err>ERROR: expected greeting=hello, got hullo",
    ] {
        assert!(xml.contains(expected), "{expected} in\n{xml}");
    }
    // The failure's body is the verify step's output tail (stdout and stderr in the order
    // Docker delivered them, which is not always the order they were written).
    assert!(
        regex::Regex::new(r#"<failure message="instance fail-busybox[^>]*>[^<]*ERROR: expected greeting=hello, got hullo\n[^<]*</failure>"#)
            .unwrap()
            .is_match(&xml),
        "{xml}"
    );
    assert!(
        regex::Regex::new(r#"<testsuite name="fail-busybox" [^>]*timestamp="[^"]+" time="[0-9.]+" hostname="[^"]+""#)
            .unwrap()
            .is_match(&xml),
        "{xml}"
    );

    let markdown = std::fs::read_to_string(&md).unwrap();
    assert!(
        markdown.contains("| `fail-busybox` | verify | :x: failed |"),
        "{markdown}"
    );

    let log = std::fs::read_to_string(p.root().join(".kitchen/logs/fail-busybox.log")).unwrap();
    assert!(log.starts_with("# kitchen-driver "), "{log}");
    assert!(
        log.contains("stderr:        ERROR: expected greeting=hello, got hullo"),
        "{log}"
    );
    p.assert_no_containers();
}

#[test]
fn github_and_gitlab_markers_under_their_variables() {
    let p = project("rep-ci");
    let step_summary = p.root().join("step-summary.md");
    let out = p
        .kitchen_driver(300)
        .args(["verify", "fail"])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", &step_summary)
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(20), "{stdout}");
    assert!(
        stdout.contains("::group::[fail-busybox] -----> Converging <fail-busybox>...\n"),
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("::group::").count(),
        stdout.matches("::endgroup::").count()
    );
    assert!(
        stdout.contains(
            "::error title=fail-busybox%3A verify failed::instance fail-busybox: verify failed"
        ),
        "{stdout}"
    );
    let summary = std::fs::read_to_string(&step_summary).unwrap();
    assert!(summary.contains("| `fail-busybox` | verify |"), "{summary}");

    let out = p
        .kitchen_driver(300)
        .args(["destroy", "fail"])
        .env("GITLAB_CI", "true")
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        regex::Regex::new(r"\x1b\[0Ksection_start:\d+:fail-busybox-1\[collapsed=true\]\r\x1b\[0K\[fail-busybox\] -----> Destroying <fail-busybox>...\n")
            .unwrap()
            .is_match(&stdout),
        "{stdout:?}"
    );
    assert!(stdout.contains("\x1b[0Ksection_end:"), "{stdout:?}");
    assert!(!stdout.contains("::group::"), "{stdout}");
    p.assert_no_containers();
}

#[test]
fn json_format_is_one_versioned_object_per_line() {
    let p = project("rep-json");
    let out = p
        .kitchen_driver(300)
        .args(["test", "pass", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let mut kinds = Vec::new();
    for line in stdout.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(v["v"], 1, "{line}");
        kinds.push(v["event"].as_str().unwrap().to_string());
    }
    assert_eq!(kinds.first().map(String::as_str), Some("run_started"));
    assert_eq!(kinds.last().map(String::as_str), Some("run_finished"));
    for k in [
        "instance_started",
        "step_started",
        "step_finished",
        "output",
        "instance_finished",
    ] {
        assert!(kinds.iter().any(|x| x == k), "{k} in {kinds:?}");
    }
    assert!(stdout.contains(r#""text":"converged-ok""#), "{stdout}");
    p.assert_no_containers();
}

#[test]
fn live_lines_under_a_pseudo_terminal() {
    let p = project("rep-pty");
    let bin = assert_cmd::cargo::cargo_bin("kitchen-driver");
    let run = |no_color: bool| {
        let mut c = std::process::Command::new("script");
        c.args(["-qec", &format!("{} test pass", bin.display()), "/dev/null"])
            .current_dir(p.root())
            .env("HOME", p.root())
            .env("TERM", "xterm")
            .env_remove("CI")
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITLAB_CI")
            .env_remove("NO_COLOR");
        if no_color {
            c.env("NO_COLOR", "1");
        }
        let out = c.output().expect("script (util-linux) runs");
        assert!(out.status.success(), "{}", text(&out.stdout));
        text(&out.stdout)
    };
    let shown = run(false);
    // The status line: spinner, instance, action, elapsed time, drawn with cursor movement.
    assert!(
        regex::Regex::new(
            r"pass-busybox\x1b\[0m (destroying|creating|converging|setting up|verifying) \[\d+s\]"
        )
        .unwrap()
        .is_match(&shown),
        "{shown:?}"
    );
    assert!(
        shown.contains("\x1b[2K"),
        "indicatif clears and redraws its lines: {shown:?}"
    );
    assert!(shown.contains("Summary ["), "{shown:?}");

    let plain = run(true);
    assert!(
        regex::Regex::new(
            r"pass-busybox (destroying|creating|converging|setting up|verifying) \[\d+s\]"
        )
        .unwrap()
        .is_match(&plain),
        "{plain:?}"
    );
    assert!(
        !regex::Regex::new(r"\x1b\[(1|3\d|9\d)m")
            .unwrap()
            .is_match(&plain),
        "NO_COLOR: no colour codes: {plain:?}"
    );
    p.assert_no_containers();
}

#[test]
fn an_unwritable_junit_path_is_refused_before_the_run() {
    let p = project("rep-unwritable");
    p.write("blocker", "a file where a directory should be\n");
    let out = p
        .kitchen_driver(60)
        .args(["test", "pass", "--junit", "blocker/junit.xml"])
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("blocker"), "{stderr}");
    assert!(stderr.contains("choose a writable path"), "{stderr}");
    assert!(!text(&out.stdout).contains("Creating"), "nothing ran");
    assert!(!p.root().join(".kitchen/pass-busybox.yml").exists());
    p.assert_no_containers();
}
