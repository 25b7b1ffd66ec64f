//! Nothing lost, nothing leaked (issue 10, "Orphans and collisions"), on the real Docker engine
//! and LXD daemon: `test -c 4` killed with SIGKILL at random moments, colliding instance
//! names, `exec` during a `converge`, and `destroy --orphans`. Each test ends by asserting
//! that nothing of its project remains (and the project's drop guard removes what a failing
//! test left).

use std::path::Path;
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use kitchen_driver::state::StateFile;
use test_support::{Runtime, STANDARD_BOOTSTRAP, STANDARD_VERIFY, TestProject, text};

fn kd(p: &TestProject) -> Command {
    p.kitchen_driver(600)
}

/// Runs `kitchen-driver ARGS` and returns (exit code, stdout, stderr).
fn run(p: &TestProject, args: &[&str]) -> (Option<i32>, String, String) {
    let ran = test_support::run_command(kd(p).args(args));
    (ran.code, ran.stdout, ran.stderr)
}

/// Asserts `kitchen-driver ARGS` exits 0, and returns its stdout.
fn ok(p: &TestProject, args: &[&str]) -> String {
    test_support::succeed(kd(p).args(args))
}

/// Four instances of the standard suite on busybox (`test -c 4` runs them all at once).
fn four_instances(runtime: Runtime) -> String {
    let platforms: String = ["a", "b", "c", "d"]
        .iter()
        .map(|p| {
            format!(
                "  - name: {p}\n    driver:\n      image: {}\n",
                runtime.busybox_image()
            )
        })
        .collect();
    format!(
        "driver:\n  name: {}\nprovisioner:\n  name: shell\n  sudo: false\nverifier:\n  name: shell\n  remote_exec: true\n  command: sh /tmp/kitchen/data/verify.sh\nplatforms:\n{platforms}suites:\n  - name: default\n",
        runtime.driver()
    )
}

fn project(label: &str, kitchen_yml: &str) -> TestProject {
    let p = TestProject::new(label);
    p.write("kitchen.yml", kitchen_yml);
    p.write("test/integration/default/bootstrap.sh", STANDARD_BOOTSTRAP);
    p.write("test/integration/default/data/verify.sh", STANDARD_VERIFY);
    p
}

/// The names of the files in `.kitchen` (not the logs directory).
fn kitchen_files(p: &TestProject) -> Vec<String> {
    std::fs::read_dir(p.root().join(".kitchen"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// A small xorshift generator, seeded from the clock (the seed is printed, so a failure names
/// the moments it used).
struct Moments(u64);

impl Moments {
    fn new() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1;
        eprintln!("SIGKILL moments seed: {seed}");
        Self(seed)
    }

    /// A moment at random between `from` and `to` (fractions of `whole`).
    fn between(&mut self, whole: Duration, from: f64, to: f64) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let unit = (self.0 % 10_000) as f64 / 10_000.0;
        whole.mul_f64(from + (to - from) * unit)
    }
}

/// Runs `test -c 4` and kills it with SIGKILL at random moments between `from` and `to`
/// (fractions of how long one whole `test -c 4` takes here, measured first) until it was
/// really killed `kills` times; after each attempt every state file parses, a state file names
/// every container of the project (`list` mentions no orphan), `destroy` then
/// `destroy --orphans` leave nothing of the project, and no temporary state file is left.
fn sigkill_during_test(runtime: Runtime, label: &str, from: f64, to: f64, kills: usize) {
    let p = project(label, &four_instances(runtime));
    let bin = assert_cmd::cargo::cargo_bin("kitchen-driver");
    let spawn = || {
        Process::new(&bin)
            .args(["test", "-c", "4"])
            .current_dir(p.root())
            .env("HOME", p.root())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    // One whole run, to spread the kills over what a run does here.
    let started = Instant::now();
    assert!(spawn().wait().unwrap().success());
    let mut whole = started.elapsed();
    let mut moments = Moments::new();
    let (mut killed, mut attempts) = (0, 0);
    let mut orphan_removals = Vec::new();
    while killed < kills {
        attempts += 1;
        assert!(
            attempts <= 4 * kills,
            "runs kept ending before their kill: {killed} kills in {attempts} attempts"
        );
        let delay = moments.between(whole, from, to);
        let mut child = spawn();
        let started = Instant::now();
        while started.elapsed() < delay && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(5));
        }
        let ran = started.elapsed();
        let _ = child.kill(); // SIGKILL: no handler runs, nothing is saved on the way out.
        let status = child.wait().unwrap();
        let was_killed = std::os::unix::process::ExitStatusExt::signal(&status) == Some(9);
        killed += usize::from(was_killed);
        if !was_killed {
            // The run ended before its kill: runs are this fast now (the first one can be
            // slower, under load or with cold caches), so later kills aim within this time.
            whole = whole.min(ran);
        }
        eprintln!("SIGKILL at {delay:?} of {whole:?}: {status:?}");
        for name in kitchen_files(&p) {
            if let Some(instance) = name.strip_suffix(".yml").filter(|n| !n.starts_with('.')) {
                StateFile::new(p.root(), instance)
                    .load()
                    .unwrap_or_else(|e| panic!("after a kill at {delay:?}: {e}"));
            }
        }
        // State reached disk before each container existed: a state file names every one.
        let (code, _, list_err) = run(&p, &["list"]);
        assert_eq!(code, Some(0), "{list_err}");
        assert!(
            !list_err.contains("no state file knows"),
            "after a kill at {delay:?}: {list_err}"
        );
        ok(&p, &["destroy"]);
        let orphans = ok(&p, &["destroy", "--orphans"]);
        if orphans.contains("Removed") {
            orphan_removals.push((delay, orphans));
        }
        p.assert_no_containers();
        let left = kitchen_files(&p);
        assert!(
            left.iter()
                .all(|f| !f.ends_with(".yml") && !f.contains(".tmp-")),
            "after a kill at {delay:?}, .kitchen still has {left:?}"
        );
    }
    // What destroy alone left (found only by its owner marks), for the record.
    eprintln!("destroy --orphans removed something after: {orphan_removals:?}");
}

#[test]
fn sigkill_at_random_early_moments_of_test_leaves_nothing_on_docker() {
    sigkill_during_test(Runtime::Docker, "kill-early-docker", 0.0, 0.5, 5);
}

#[test]
fn sigkill_at_random_late_moments_of_test_leaves_nothing_on_docker() {
    sigkill_during_test(Runtime::Docker, "kill-late-docker", 0.5, 0.95, 5);
}

#[test]
fn sigkill_at_random_early_moments_of_test_leaves_nothing_on_lxd() {
    sigkill_during_test(Runtime::Lxd, "kill-early-lxd", 0.0, 0.5, 5);
}

#[test]
fn sigkill_at_random_late_moments_of_test_leaves_nothing_on_lxd() {
    sigkill_during_test(Runtime::Lxd, "kill-late-lxd", 0.5, 0.95, 5);
}

/// `CentOS-7` and `centos-7` are one LXD name: refused when kitchen.yml is loaded, with both
/// places, before anything is created.
#[test]
fn colliding_names_are_refused_when_the_config_is_loaded() {
    let yml = "driver:\n  name: lxd\nplatforms:\n  - name: CentOS-7\n    driver: {image: kitchen/busybox}\n  - name: centos-7\n    driver: {image: kitchen/busybox}\nsuites:\n  - name: default\n";
    let p = project("collide-load", yml);
    for args in [&["create"][..], &["list"], &["test", "default-centos-7"]] {
        let (code, out, err) = run(&p, args);
        assert_eq!(code, Some(20), "{args:?}\n{out}\n{err}");
        let file = p.root().join("kitchen.yml");
        let file = file.display();
        assert!(
            err.contains(&format!(
                "{file}:6:11: instances `default-CentOS-7` ({file}:4:11) and `default-centos-7` would both be the LXD container"
            )),
            "{args:?}: {err}"
        );
    }
    assert!(kitchen_files(&p).is_empty(), "{:?}", kitchen_files(&p));
    p.assert_no_containers();
}

/// An LXD container of a renamed instance whose name is the new instance's LXD name: create
/// refuses to delete it (the instance key differs), and `destroy --orphans` removes it.
#[test]
fn a_colliding_container_of_another_instance_is_kept_until_destroy_orphans_on_lxd() {
    let yml = |platform: &str| {
        format!(
            "driver:\n  name: lxd\nprovisioner:\n  name: shell\nplatforms:\n  - name: {platform}\n    driver: {{image: kitchen/busybox}}\nsuites:\n  - name: default\n"
        )
    };
    let p = project("collide-lxd", &yml("CentOS-7"));
    ok(&p, &["create"]);
    let first = p.lxd_instances();
    assert_eq!(first.len(), 1, "{first:?}");
    // Renamed in kitchen.yml: the old state file stays, the new instance has none.
    p.write("kitchen.yml", &yml("centos-7"));
    let (code, out, err) = run(&p, &["create"]);
    assert_eq!(code, Some(20), "{out}\n{err}");
    assert!(
        out.contains("belongs to this project's instance `default-CentOS-7`"),
        "{out}\n{err}"
    );
    assert_eq!(
        p.lxd_instances(),
        first,
        "the other instance's container survives"
    );
    let (_, _, list_err) = run(&p, &["list"]);
    assert!(
        list_err.contains("`kitchen-driver destroy --orphans` removes them")
            && list_err.contains(&format!("LXD instance {}", first[0]))
            && list_err.contains("instance default-CentOS-7 is no longer in kitchen.yml"),
        "{list_err}"
    );
    let out = ok(&p, &["destroy", "--orphans"]);
    assert!(
        out.contains(&format!("Removed LXD instance {}", first[0])),
        "{out}"
    );
    assert!(
        !p.state_exists("default-CentOS-7"),
        "the removed instance's state goes too"
    );
    let out = ok(&p, &["destroy", "--orphans"]);
    assert!(out.contains("No orphans"), "{out}");
    ok(&p, &["destroy"]);
    p.assert_no_containers();
}

/// Removes a Docker image tag on drop (a test's built image, even when it fails).
struct ImageGuard(String);

impl Drop for ImageGuard {
    fn drop(&mut self) {
        let _ = Process::new("docker").args(["rmi", "-f", &self.0]).output();
    }
}

fn image_exists(tag: &str) -> bool {
    Process::new("docker")
        .args(["image", "inspect", tag])
        .output()
        .unwrap()
        .status
        .success()
}

/// A removed instance's container and the image kitchen-driver built for it: `list` mentions
/// them, `destroy --orphans` removes them, and then nothing is left.
#[test]
fn destroy_orphans_removes_a_removed_instance_container_and_its_built_image_on_docker() {
    let yml = |suite: &str| {
        format!(
            "driver:\n  name: docker\nprovisioner:\n  name: shell\nplatforms:\n  - name: built\n    driver: {{dockerfile: Dockerfile}}\nsuites:\n  - name: {suite}\n"
        )
    };
    let p = project("orphans-docker", &yml("default"));
    // Content unique to this test, so the tag is this test's alone.
    let marker = p.root().file_name().unwrap().to_string_lossy().into_owned();
    p.write(
        "Dockerfile",
        &format!("FROM kitchen/busybox:latest\nRUN echo {marker} > /marker\n"),
    );
    ok(&p, &["create"]);
    let state = p.state("default-built");
    let tag = state.get_str("image").unwrap().to_string();
    let _image = ImageGuard(tag.clone());
    assert!(tag.starts_with("kitchen-driver-build:"), "{tag}");
    assert!(image_exists(&tag));
    let (_, _, err) = run(&p, &["list"]);
    assert!(
        !err.contains("destroy --orphans"),
        "nothing is orphaned yet: {err}"
    );
    // The suite is renamed: its container and image belong to no instance of kitchen.yml.
    p.write("kitchen.yml", &yml("renamed"));
    let (code, out, err) = run(&p, &["list"]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(
        err.contains("2 resource(s) of this checkout")
            && err.contains("instance default-built is no longer in kitchen.yml")
            && err.contains(&format!("Docker image {tag}")),
        "{err}"
    );
    let out = ok(&p, &["destroy", "--orphans"]);
    assert!(out.contains("Removed Docker container"), "{out}");
    assert!(
        out.contains(&format!("Removed Docker image {tag}")),
        "{out}"
    );
    assert!(!image_exists(&tag));
    assert!(!p.state_exists("default-built"));
    p.assert_no_containers();
    let (_, _, err) = run(&p, &["list"]);
    assert!(!err.contains("destroy --orphans"), "{err}");
}

/// A converge that runs until an `exec` has run beside it: exec says it runs without the
/// lock, and afterwards both logs are whole (no NUL gap, no truncation, every line in place).
fn exec_during_converge(runtime: Runtime) {
    let bootstrap = "#!/bin/sh\necho converge-started\ni=0\nwhile [ ! -f /tmp/exec-done ]; do\n  i=$((i+1))\n  echo converge-line-$i\n  [ $i -lt 1500 ] || exit 3\n  sleep 0.2\ndone\necho converge-finished\n";
    let yml = format!(
        "driver:\n  name: {}\nprovisioner:\n  name: shell\n  sudo: false\nplatforms:\n  - name: busybox\n    driver: {{image: {}}}\nsuites:\n  - name: default\n",
        runtime.driver(),
        runtime.busybox_image()
    );
    let p = project(&format!("exec-during-{}", runtime.label()), &yml);
    p.write("test/integration/default/bootstrap.sh", bootstrap);
    let bin = assert_cmd::cargo::cargo_bin("kitchen-driver");
    let converge = Process::new(&bin)
        .args(["converge"])
        .current_dir(p.root())
        .env("HOME", p.root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = p.root().join(".kitchen/logs/default-busybox.log");
    let read = |path: &Path| std::fs::read_to_string(path).unwrap_or_default();
    let started = Instant::now();
    while !read(&log).contains("converge-line-3") {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "converge never started: {}",
            read(&p.root().join(".kitchen/logs/kitchen.log"))
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = ok(
        &p,
        &[
            "exec",
            "default-busybox",
            "-c",
            "echo exec-output; touch /tmp/exec-done",
        ],
    );
    assert!(out.contains("exec-output"), "{out}");
    assert!(
        out.contains(
            "default-busybox is locked by another kitchen-driver process; exec runs beside it"
        ),
        "{out}"
    );
    let converged = converge.wait_with_output().unwrap();
    assert_eq!(
        converged.status.code(),
        Some(0),
        "{}\n{}",
        text(&converged.stdout),
        text(&converged.stderr)
    );
    let instance_log = read(&log);
    let kitchen_log = read(&p.root().join(".kitchen/logs/kitchen.log"));
    for (name, body) in [("instance", &instance_log), ("kitchen", &kitchen_log)] {
        assert!(!body.contains('\0'), "{name} log has a NUL gap: {body:?}");
        for line in body.lines() {
            assert!(
                line.starts_with("[20") || line.starts_with("# "),
                "{name} log has a broken line {line:?}:\n{body}"
            );
        }
    }
    // The converge's log is whole, in order, and only the converge's.
    let n = instance_log.matches("converge-line-").count();
    assert!(n >= 3, "{instance_log}");
    let mut at = 0;
    for i in 1..=n {
        let needle = format!("converge-line-{i}\n");
        at = at
            + instance_log[at..]
                .find(&needle)
                .unwrap_or_else(|| panic!("{needle} after {at}:\n{instance_log}"));
    }
    assert!(
        instance_log.starts_with("# kitchen-driver "),
        "{instance_log}"
    );
    assert!(instance_log.contains("converge-finished"), "{instance_log}");
    assert!(!instance_log.contains("exec-output"), "{instance_log}");
    // kitchen.log has both runs: two headers, the converge's lines and the exec's.
    assert_eq!(
        kitchen_log.matches("# command line: ").count(),
        2,
        "{kitchen_log}"
    );
    assert!(kitchen_log.contains("converge-finished"), "{kitchen_log}");
    assert!(kitchen_log.contains("exec-output"), "{kitchen_log}");
    assert!(
        !p.root().join(".kitchen/logs/previous").exists(),
        "the exec moved the converge's logs away"
    );
    ok(&p, &["destroy"]);
    p.assert_no_containers();
}

#[test]
fn exec_during_converge_leaves_both_logs_whole_on_docker() {
    exec_during_converge(Runtime::Docker);
}

#[test]
fn exec_during_converge_leaves_both_logs_whole_on_lxd() {
    exec_during_converge(Runtime::Lxd);
}
