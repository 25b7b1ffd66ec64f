//! A test process that nextest's timeout ends with SIGTERM still removes what its guards hold.
//!
//! The parent test runs this same test binary as a child, running only
//! [`child_holds_guards_until_sigterm`] (ignored in normal runs): it creates a project with a
//! Docker container and an LXD instance labelled with it, and a private Docker engine with a
//! running container, then waits. The parent sends SIGTERM to the child's process group, as
//! nextest does, and checks that nothing is left: no container, no instance, no daemon process,
//! no mount, no directory.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kitchen_driver::driver::docker::LABEL_PROJECT;
use test_support::daemons::{PrivateDaemon, alive, mounts_under, remove_left_behind};
use test_support::guards::EXIT_AFTER_SIGTERM;
use test_support::{Runtime, TestProject, text, unique_name};

/// Where the child writes what it created, one `key=value` a line.
const REPORT_ENV: &str = "KDTEST_SIGTERM_REPORT";

#[test]
#[ignore = "run as a child process by sigterm_runs_every_live_guard"]
fn child_holds_guards_until_sigterm() {
    let report = std::env::var(REPORT_ENV).expect("run by sigterm_runs_every_live_guard");
    let project = TestProject::new("sigterm-child");
    let root = project.root().display().to_string();
    let label = format!("{LABEL_PROJECT}={root}");
    let docker_id = output(
        Command::new("docker")
            .env_remove("DOCKER_HOST")
            .args(["create", "--label", &label])
            .arg(Runtime::Docker.busybox_image())
            .args(["sleep", "600"]),
    );
    let lxd_name = unique_name("sigterm-child");
    output(
        Command::new("lxc")
            .env_remove("LXD_DIR")
            .env_remove("LXD_SOCKET")
            .args(["init", Runtime::Lxd.busybox_image(), &lxd_name])
            .args(["-c", &format!("user.kitchen.project={root}")]),
    );
    let daemon = PrivateDaemon::start(Runtime::Docker, "sigterm-child");
    output(
        daemon
            .cli()
            .args(["run", "-d", Runtime::Docker.busybox_image(), "sleep", "600"]),
    );
    let pid = std::fs::read_to_string(daemon.dir().join("docker.pid")).unwrap();
    std::fs::write(
        &report,
        format!(
            "root={root}\ndocker={docker_id}\nlxd={lxd_name}\ndaemon_dir={}\ndaemon_pid={}\n",
            daemon.dir().display(),
            pid.trim()
        ),
    )
    .unwrap();
    // nextest's SIGTERM ends this (the parent panics long before 120 s).
    std::thread::sleep(Duration::from_secs(120));
    panic!("no SIGTERM came");
}

#[test]
fn sigterm_runs_every_live_guard() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report");
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([
        "--exact",
        "child_holds_guards_until_sigterm",
        "--ignored",
        "--nocapture",
    ])
    .env(REPORT_ENV, &report)
    .stdin(Stdio::null())
    .stdout(std::fs::File::create(dir.path().join("stdout")).unwrap())
    .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap());
    // Its own process group, signalled as a whole, as nextest signals a test.
    std::os::unix::process::CommandExt::process_group(&mut c, 0);
    let mut child = c.spawn().unwrap();
    let said = || {
        let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap_or_default();
        format!("stdout:\n{}\nstderr:\n{}", read("stdout"), read("stderr"))
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while !std::fs::read_to_string(&report).is_ok_and(|r| r.contains("daemon_pid=")) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "the child ended ({status}) before it was ready:\n{}",
                said()
            );
        }
        assert!(
            Instant::now() < deadline,
            "the child never got ready:\n{}",
            said()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let report = std::fs::read_to_string(&report).unwrap();
    let get = |key: &str| {
        report
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key} in {report}"))
            .to_string()
    };
    let (root, docker_id, lxd_name) = (get("root"), get("docker"), get("lxd"));
    let (daemon_dir, daemon_pid) = (get("daemon_dir"), get("daemon_pid"));
    // Whatever this test finds left is removed at the end, pass or fail.
    let _leftovers = Leftovers {
        root: root.clone(),
        docker_id: docker_id.clone(),
        lxd_name: lxd_name.clone(),
        daemon_dir: daemon_dir.clone(),
    };

    let group = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process_group(group, rustix::process::Signal::TERM).unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the child did not exit after SIGTERM:\n{}", said());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(EXIT_AFTER_SIGTERM), "{}", said());

    assert!(
        !Path::new(&root).exists(),
        "project {root} left:\n{}",
        said()
    );
    let docker = Command::new("docker")
        .env_remove("DOCKER_HOST")
        .args(["inspect", &docker_id])
        .output()
        .unwrap();
    assert!(!docker.status.success(), "container {docker_id} left");
    let lxd = Command::new("lxc")
        .env_remove("LXD_DIR")
        .env_remove("LXD_SOCKET")
        .args(["info", &lxd_name])
        .output()
        .unwrap();
    assert!(!lxd.status.success(), "LXD instance {lxd_name} left");
    assert!(
        !alive(daemon_pid.parse().unwrap()),
        "the private dockerd (pid {daemon_pid}) still runs:\n{}",
        said()
    );
    let mounts = mounts_under(Path::new(&daemon_dir));
    assert!(mounts.is_empty(), "still mounted: {mounts:?}");
    assert!(!Path::new(&daemon_dir).exists(), "{daemon_dir} left");
    let mut processes = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if text(&cmdline).contains(&daemon_dir) {
            processes.push(text(&cmdline).replace('\0', " "));
        }
    }
    assert!(
        processes.is_empty(),
        "processes of the private daemon left: {processes:?}"
    );
}

/// Removes what the child may have left, when the test fails.
struct Leftovers {
    root: String,
    docker_id: String,
    lxd_name: String,
    daemon_dir: String,
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
        if Path::new(&self.daemon_dir).exists() {
            remove_left_behind(Runtime::Docker, Path::new(&self.daemon_dir));
        }
        let _ = Command::new("docker")
            .env_remove("DOCKER_HOST")
            .args(["rm", "-f", &self.docker_id])
            .output();
        let _ = Command::new("lxc")
            .env_remove("LXD_DIR")
            .env_remove("LXD_SOCKET")
            .args(["delete", "--force", &self.lxd_name])
            .output();
    }
}

fn output(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(out.status.success(), "{c:?}: {}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}
