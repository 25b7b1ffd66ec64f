//! The `lxc-lite` example run as a real process against the real daemon, its results checked
//! against the `lxc` CLI on the same instance.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use common::*;

/// The `lxc-lite` example binary.
fn lite() -> PathBuf {
    example("lxc-lite")
}

/// An example binary cargo built next to this test's binary.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let path = dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} missing: build the examples",
        path.display()
    );
    path
}

fn run(args: &[&str]) -> Output {
    Command::new(lite())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "lxc-lite {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn lxc(args: &[&str]) -> String {
    let out = Command::new("lxc").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "lxc {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn lxc_lite_agrees_with_lxc() {
    let name = unique_name("lite");
    let _guard = InstanceGuard { name: name.clone() };
    ok(&["launch", BUSYBOX, &name]);

    // list --format json agrees with lxc's.
    let ours: serde_json::Value = serde_json::from_str(&ok(&["list", "--format", "json"])).unwrap();
    let theirs: serde_json::Value =
        serde_json::from_str(&lxc(&["list", &name, "--format", "json"])).unwrap();
    let mine = ours
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == name.as_str())
        .unwrap();
    let lxcs = &theirs[0];
    for key in [
        "name",
        "status",
        "type",
        "architecture",
        "profiles",
        "created_at",
    ] {
        assert_eq!(mine[key], lxcs[key], "{key}");
    }
    assert_eq!(mine["state"]["pid"], lxcs["state"]["pid"]);

    // exec passes exit codes, env, cwd and stdin through.
    let out = run(&[
        "exec",
        &name,
        "--env",
        "A=b c",
        "--cwd",
        "/tmp",
        "--",
        "sh",
        "-c",
        "echo $A; pwd; exit 9",
    ]);
    assert_eq!(out.status.code(), Some(9));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "b c\n/tmp\n");
    let mut child = Command::new(lite())
        .args(["exec", &name, "--", "sh", "-c", "tr a-z A-Z"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"shout\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.stdout, b"SHOUT\n");
    assert!(out.status.success());
    assert_eq!(
        run(&["exec", &name, "--", "kdtest-no-such-cmd"])
            .status
            .code(),
        Some(127)
    );

    // file push with mode/uid/gid, as lxc sees it.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("f.txt");
    std::fs::write(&src, "content\n").unwrap();
    let target = format!("{name}/root/f.txt");
    ok(&[
        "file",
        "push",
        src.to_str().unwrap(),
        &target,
        "--mode",
        "0640",
        "--uid",
        "7",
        "--gid",
        "8",
    ]);
    assert_eq!(
        lxc(&["exec", &name, "--", "stat", "-c", "%a %u %g", "/root/f.txt"]),
        "640 7 8\n"
    );
    let back = dir.path().join("back.txt");
    ok(&["file", "pull", &target, back.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "content\n");

    // snapshot and restore.
    ok(&["snapshot", &name, "s0"]);
    assert!(lxc(&["info", &name]).contains("s0"));
    ok(&["exec", &name, "--", "rm", "/root/f.txt"]);
    ok(&["restore", &name, "s0"]);
    assert_eq!(
        lxc(&["exec", &name, "--", "cat", "/root/f.txt"]),
        "content\n"
    );

    // A duplicate launch says so; a missing file is named with its instance.
    let out = run(&["launch", BUSYBOX, &name]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("instance {name} already exists")),
        "{stderr}"
    );
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("x");
    let out = run(&[
        "file",
        "pull",
        &format!("{name}/root/kdtest-missing"),
        target.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("/root/kdtest-missing in instance {name}"))
            && stderr.contains("Not Found"),
        "{stderr}"
    );
    // Each cause once.
    assert_eq!(stderr.matches("Not Found").count(), 1, "{stderr}");

    // stop / start / delete.
    ok(&["stop", &name, "--force"]);
    assert!(lxc(&["list", &name, "--format", "csv", "-c", "s"]).contains("STOPPED"));
    ok(&["start", &name]);
    assert!(lxc(&["list", &name, "--format", "csv", "-c", "s"]).contains("RUNNING"));
    ok(&["delete", &name, "--force"]);
    assert_eq!(lxc(&["list", &name, "--format", "csv"]), "");

    // Errors exit 1 with a message.
    let out = run(&["start", &name]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
}

#[test]
fn the_readme_first_program_runs_and_leaves_nothing_behind() {
    let name = unique_name("first");
    let _guard = InstanceGuard { name: name.clone() };
    let out = Command::new(example("first_program"))
        .arg(&name)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("Linux ") && stdout.ends_with("exit code 0\n"),
        "{stdout}"
    );
    assert_eq!(lxc(&["list", &name, "--format", "csv"]), "");
}

#[test]
fn the_readme_prints_the_first_program_as_compiled() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let example =
        std::fs::read_to_string(format!("{root}/lxd-client/examples/first_program.rs")).unwrap();
    let body = &example[example.find("use lxd_client").unwrap()..];
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    assert!(
        readme.contains(body.trim_end()),
        "README.md's first program differs from examples/first_program.rs"
    );
}
