//! What the workspace's tests share, so each helper is written once:
//! - [`unique_name`]: the `kdtest-<pid>-<n>-<label>` prefix of everything a test creates;
//! - [`TestProject`]: a temporary kitchen project whose drop guard removes every Docker
//!   container and LXD instance labelled with its path, even when the test panics;
//! - [`on_fresh_runtime`]: async clean-up from `Drop` or from inside another runtime;
//! - the standard projects ([`Runtime`], [`standard_project`], [`basic_kitchen_yml`]) that the
//!   Docker and LXD lifecycle tests share, with the driver as a parameter;
//! - [`run`] and friends: the library's `Runner` with its live output captured;
//! - [`daemons`]: a private Docker engine or LXD daemon for one test, to stop and restart;
//! - [`guards`]: the registry that lets every guard clean up on SIGTERM (nextest's timeout).

pub mod daemons;
pub mod guards;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use bollard::Docker;
use bollard::query_parameters::{ListContainersOptions, RemoveContainerOptions};
use kitchen_driver::config::InstanceConfig;
use kitchen_driver::driver::docker::{LABEL_INSTANCE, LABEL_PROJECT};
use kitchen_driver::events::EventBus;
use kitchen_driver::lifecycle::{Command, InstanceOutcome, RunOptions, Runner};
use kitchen_driver::report::{LogFiles, TextOptions, TextReporter};
use kitchen_driver::state::{State, StateFile};
use serde_json::{Value, json};

/// The prefix every resource created by the tests carries, so clean-up touches nothing else.
pub const TEST_PREFIX: &str = "kdtest";

/// A name unique to this process and call, such as `kdtest-4242-0-busybox`.
///
/// LXD instance names must be valid hostnames, so use only `[a-z0-9-]` in `label`.
pub fn unique_name(label: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{TEST_PREFIX}-{}-{n}-{label}", std::process::id())
}

/// A temporary directory named `kdtest-<pid>-<n>-<label>-...`, removed on drop.
pub fn unique_dir(label: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("{}-", unique_name(label)))
        .tempdir()
        .expect("temp dir")
}

/// A temporary kitchen project directory `kdtest-<pid>-<n>-<label>...`; every container
/// labelled with its path is removed on drop, even when the test panics.
/// The clean-up is also registered with [`guards`], so it runs on SIGTERM too.
pub struct TestProject {
    /// The directory (removed on drop).
    pub dir: tempfile::TempDir,
    _on_sigterm: guards::Registration,
}

impl TestProject {
    /// An empty project.
    pub fn new(label: &str) -> Self {
        let dir = unique_dir(label);
        let root = dir.path().to_path_buf();
        let _on_sigterm = guards::register(move || {
            remove_project_containers(&root.to_string_lossy());
            let _ = std::fs::remove_dir_all(&root);
        });
        Self { dir, _on_sigterm }
    }

    /// The project directory (`kitchen_root`).
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The real `kitchen-driver` binary, run in this project with no KITCHEN_* file variables
    /// from the caller's environment, HOME pointing into the project, and a deadline.
    pub fn kitchen_driver(&self, timeout_secs: u64) -> assert_cmd::Command {
        let mut c = assert_cmd::Command::cargo_bin("kitchen-driver").expect("binary");
        c.current_dir(self.root())
            .env("HOME", self.root())
            .env_remove("KITCHEN_YAML")
            .env_remove("KITCHEN_LOCAL_YAML")
            .env_remove("KITCHEN_GLOBAL_YAML")
            // Output as on a plain pipe, whatever CI runs the tests.
            .env_remove("CI")
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITHUB_STEP_SUMMARY")
            .env_remove("GITLAB_CI")
            .env_remove("NO_COLOR")
            .timeout(std::time::Duration::from_secs(timeout_secs));
        c
    }

    /// `<root>/test/integration`.
    pub fn tbp(&self) -> PathBuf {
        self.root().join("test/integration")
    }

    /// Writes a file (creating parents) relative to the project root.
    pub fn write(&self, rel: &str, content: &str) -> PathBuf {
        let p = self.root().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        p
    }

    /// The state of `instance` (through the library's one reader).
    pub fn state(&self, instance: &str) -> State {
        StateFile::new(self.root(), instance).load().unwrap()
    }

    /// Whether `instance` has a state file.
    pub fn state_exists(&self, instance: &str) -> bool {
        StateFile::new(self.root(), instance).path().exists()
    }

    /// Container ids labelled with this project (optionally one instance).
    pub fn containers(&self, instance: Option<&str>) -> Vec<String> {
        let root = self.root().to_string_lossy().into_owned();
        let instance = instance.map(str::to_string);
        on_fresh_runtime(async move {
            let docker = docker().await;
            let mut labels = vec![format!("{LABEL_PROJECT}={root}")];
            if let Some(i) = instance {
                labels.push(format!("{LABEL_INSTANCE}={i}"));
            }
            docker
                .list_containers(Some(ListContainersOptions {
                    all: true,
                    filters: Some([("label".to_string(), labels)].into_iter().collect()),
                    ..Default::default()
                }))
                .await
                .expect("list containers")
                .into_iter()
                .filter_map(|c| c.id)
                .collect()
        })
    }

    /// LXD instances whose `user.kitchen.project` is this project.
    pub fn lxd_instances(&self) -> Vec<String> {
        let root = self.root().to_string_lossy().into_owned();
        on_fresh_runtime(async move { lxd_owned(&root).await })
    }

    /// The end-of-test assertion: nothing of this project remains, in Docker or LXD.
    pub fn assert_no_containers(&self) {
        let left = self.containers(None);
        assert!(left.is_empty(), "containers left behind: {left:?}");
        let left = self.lxd_instances();
        assert!(left.is_empty(), "LXD instances left behind: {left:?}");
    }
}

impl Drop for TestProject {
    fn drop(&mut self) {
        remove_project_containers(&self.root().to_string_lossy());
    }
}

/// Removes every LXD instance (local daemon) and Docker container (`DOCKER_HOST` or the
/// default engine) labelled with the project `root`.
fn remove_project_containers(root: &str) {
    let lxd_root = root.to_string();
    on_fresh_runtime(async move {
        let Ok(client) = lxd_client::Client::connect_local().await else {
            return;
        };
        let Ok(list) = client.instances().list().await else {
            return;
        };
        let owned = list.into_iter().filter(|i| {
            i.config.get("user.kitchen.project").map(String::as_str) == Some(lxd_root.as_str())
        });
        for name in owned.map(|i| i.name) {
            if let Ok(op) = client.instances().stop(&name).force().await {
                let _ = op.wait().await;
            }
            if let Ok(op) = client.instances().delete(&name).await {
                let _ = op.wait().await;
            }
        }
    });
    let root = root.to_string();
    on_fresh_runtime(async move {
        let Ok(docker) = Docker::connect_with_defaults() else {
            return;
        };
        let Ok(docker) = docker.negotiate_version().await else {
            return;
        };
        let Ok(list) = docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(
                    [("label".to_string(), vec![format!("{LABEL_PROJECT}={root}")])]
                        .into_iter()
                        .collect(),
                ),
                ..Default::default()
            }))
            .await
        else {
            return;
        };
        for c in list {
            if let Some(id) = c.id {
                let _ = docker
                    .remove_container(
                        &id,
                        Some(RemoveContainerOptions {
                            force: true,
                            ..Default::default()
                        }),
                    )
                    .await;
            }
        }
    });
}

/// Names of the LXD instances whose `user.kitchen.project` is `root`.
pub async fn lxd_owned(root: &str) -> Vec<String> {
    let client = lxd_client::Client::connect_local()
        .await
        .expect("LXD socket (run scripts/setup-host)");
    client
        .instances()
        .list()
        .await
        .expect("list LXD instances")
        .into_iter()
        .filter(|i| i.config.get("user.kitchen.project").map(String::as_str) == Some(root))
        .map(|i| i.name)
        .collect()
}

/// The Docker engine at `DOCKER_HOST` (or the default socket), version negotiated.
pub async fn docker() -> Docker {
    Docker::connect_with_defaults()
        .expect("docker socket (run scripts/setup-host)")
        .negotiate_version()
        .await
        .expect("docker answers (run scripts/setup-host)")
}

/// Runs a future to completion on a new runtime in its own thread (usable from Drop and from
/// inside another runtime).
pub fn on_fresh_runtime<T: Send + 'static>(
    fut: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(fut)
    })
    .join()
    .expect("helper thread")
}

/// An instance built the way the loader hands it over (the struct is `non_exhaustive`).
pub fn instance(
    suite: &str,
    platform: &str,
    driver: Value,
    provisioner: Value,
    verifier: Value,
    lifecycle: Value,
) -> InstanceConfig {
    serde_json::from_value(json!({
        "name": format!("{suite}-{platform}"),
        "suite": suite,
        "platform": platform,
        "driver": driver,
        "provisioner": provisioner,
        "verifier": verifier,
        "transport": {"name": "ssh"},
        "lifecycle": lifecycle,
    }))
    .expect("instance config")
}

/// The Docker driver block for `kitchen/busybox:latest`.
pub fn busybox() -> Value {
    json!({"name": "docker", "image": "kitchen/busybox:latest"})
}

/// Captured live output.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Runs `command` on `instances` of `project` with the real Docker engine.
pub async fn run(
    project: &TestProject,
    instances: &[InstanceConfig],
    command: Command,
    concurrency: usize,
) -> (Vec<InstanceOutcome>, String) {
    run_with_env(project, instances, command, concurrency, &[]).await
}

/// [`run`] on the one instance `instance`.
pub async fn run_one(
    project: &TestProject,
    instance: &InstanceConfig,
    command: Command,
) -> (Vec<InstanceOutcome>, String) {
    run(project, std::slice::from_ref(instance), command, 1).await
}

/// [`run`] with extra host environment for the plugins.
pub async fn run_with_env(
    project: &TestProject,
    instances: &[InstanceConfig],
    command: Command,
    concurrency: usize,
    env: &[(&str, &str)],
) -> (Vec<InstanceOutcome>, String) {
    let out = Captured::default();
    let bus = EventBus::new();
    bus.subscribe(LogFiles::new(project.root()).unwrap());
    bus.subscribe(TextReporter::plain(
        Box::new(out.clone()),
        TextOptions::default(),
    ));
    let mut runner = Runner::new(project.root(), project.tbp(), bus);
    for (k, v) in env {
        runner = runner.with_env(*k, *v);
    }
    let outcomes = runner
        .run(instances, &command, RunOptions::new(concurrency, false))
        .await;
    (outcomes, out.text())
}

/// Runs `kitchen-driver login INSTANCE` in the project under a pseudo-terminal (util-linux
/// `script`), types `command`, waits (up to 120 s) until `marker` appears in the output, then
/// types `exit`. Returns everything the terminal showed.
pub fn login_through_pty(
    project: &TestProject,
    instance: &str,
    command: &str,
    marker: &str,
) -> String {
    login_through_pty_with_env(project, instance, command, marker, &[])
}

/// [`login_through_pty`] with extra environment for `kitchen-driver` (`DOCKER_HOST`,
/// `LXD_CONF`, ...).
pub fn login_through_pty_with_env(
    project: &TestProject,
    instance: &str,
    command: &str,
    marker: &str,
    env: &[(&str, &str)],
) -> String {
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};
    let bin = assert_cmd::cargo::cargo_bin("kitchen-driver");
    let mut child = Command::new("script")
        .args([
            "-qec",
            &format!("{} login {instance}", bin.display()),
            "/dev/null",
        ])
        .current_dir(project.root())
        .env("HOME", project.root())
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("script (util-linux) runs");
    let mut stdout = child.stdout.take().expect("piped");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let seen = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    let mut stdin = child.stdin.take().expect("piped");
    let text = || String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
    let started = std::time::Instant::now();
    // Type the command until its answer shows (the shell may not be up yet at first).
    let mut typed_at = None;
    while started.elapsed() < std::time::Duration::from_secs(120) {
        if text().contains(marker) {
            break;
        }
        if typed_at
            .is_none_or(|t: std::time::Instant| t.elapsed() > std::time::Duration::from_secs(5))
        {
            let _ = stdin.write_all(format!("{command}\n").as_bytes());
            typed_at = Some(std::time::Instant::now());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = stdin.write_all(b"exit\n");
    drop(stdin);
    let _ = child.wait();
    let _ = reader.join();
    text()
}

/// Process output as text, for assertions and their messages.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Sends a command's stdout and stderr to `stdout.txt` and `stderr.txt` in the project, where
/// [`background_output`] reads them while it runs (tests that signal or stop a run midway).
pub fn capture_output_in(p: &TestProject, cmd: &mut std::process::Command) {
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(p.root().join("stdout.txt")).unwrap())
        .stderr(std::fs::File::create(p.root().join("stderr.txt")).unwrap());
}

/// What a run started with [`capture_output_in`] has printed so far.
pub fn background_output(p: &TestProject) -> String {
    let read = |f: &str| std::fs::read_to_string(p.root().join(f)).unwrap_or_default();
    format!(
        "stdout:\n{}\nstderr:\n{}",
        read("stdout.txt"),
        read("stderr.txt")
    )
}

/// How long a background run may take to reach a point or to end before the test panics
/// with its output (well inside nextest's slow-timeout).
const BACKGROUND_DEADLINE: std::time::Duration = std::time::Duration::from_secs(240);

/// Waits until every file in `names` exists in the project; panics with the run's output if
/// the run ends first or the deadline passes.
pub fn wait_for_files(p: &TestProject, child: &mut std::process::Child, names: &[String]) {
    let deadline = std::time::Instant::now() + BACKGROUND_DEADLINE;
    while !names.iter().all(|n| p.root().join(n).exists()) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "the run ended ({status}) before {names:?}:\n{}",
                background_output(p)
            );
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never saw {names:?}:\n{}",
            background_output(p)
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Waits for a background run to end and returns its exit code; panics with its output if
/// a signal ended it or the deadline passes (then it is killed).
pub fn wait_for_exit(p: &TestProject, mut child: std::process::Child) -> i32 {
    let deadline = std::time::Instant::now() + BACKGROUND_DEADLINE;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status
                .code()
                .unwrap_or_else(|| panic!("{status}:\n{}", background_output(p)));
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the run did not end:\n{}", background_output(p));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// How a command ended and what it printed, as text.
#[derive(Debug)]
pub struct Ran {
    /// The exit code (`None` when a signal ended it).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs `cmd` to its end.
pub fn run_command(cmd: &mut assert_cmd::Command) -> Ran {
    let out = cmd.output().expect("the command starts");
    Ran {
        code: out.status.code(),
        stdout: text(&out.stdout),
        stderr: text(&out.stderr),
    }
}

/// Runs `cmd`, asserts it exits 0 (showing both streams when not), and returns its stdout.
pub fn succeed(cmd: &mut assert_cmd::Command) -> String {
    let ran = run_command(cmd);
    assert_eq!(ran.code, Some(0), "{cmd:?}\n{}\n{}", ran.stdout, ran.stderr);
    ran.stdout
}

/// A container runtime the driver tests run on: the same cases run on both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// `driver: docker`.
    Docker,
    /// `driver: lxd`.
    Lxd,
}

impl Runtime {
    /// Both runtimes.
    pub const ALL: [Runtime; 2] = [Runtime::Docker, Runtime::Lxd];

    /// The driver name.
    pub fn driver(self) -> &'static str {
        match self {
            Runtime::Docker => "docker",
            Runtime::Lxd => "lxd",
        }
    }

    /// The busybox image as this runtime names it.
    pub fn busybox_image(self) -> &'static str {
        match self {
            Runtime::Docker => "kitchen/busybox:latest",
            Runtime::Lxd => "kitchen/busybox",
        }
    }

    /// A label for names and messages (`docker`, `lxd`).
    pub fn label(self) -> &'static str {
        self.driver()
    }
}

/// The standard project's `bootstrap.sh` (shell provisioner): writes /etc/hello/hello.conf.
pub const STANDARD_BOOTSTRAP: &str = "#!/bin/sh\nset -eu\nmkdir -p /etc/hello\necho \"hello from $(hostname)\" > /etc/hello/hello.conf\necho converged-ok\n";

/// The standard project's `data/verify.sh` (run by the remote shell verifier).
pub const STANDARD_VERIFY: &str =
    "#!/bin/sh\nset -eu\ngrep -q 'hello from' /etc/hello/hello.conf\necho verified-ok\n";

/// The standard kitchen.yml on `runtime`: suite `default` on platform `busybox`, converged by
/// [`STANDARD_BOOTSTRAP`] (no sudo) and checked in the instance by [`STANDARD_VERIFY`].
pub fn basic_kitchen_yml(runtime: Runtime) -> String {
    format!(
        r#"
driver:
  name: {driver}
provisioner:
  name: shell
  sudo: false
verifier:
  name: shell
  remote_exec: true
  command: sh /tmp/kitchen/data/verify.sh
platforms:
  - name: busybox
    driver:
      image: {image}
suites:
  - name: default
"#,
        driver = runtime.driver(),
        image = runtime.busybox_image()
    )
}

/// A project with `kitchen_yml` and the standard suite's files
/// (`test/integration/default/bootstrap.sh` and `data/verify.sh`).
pub fn standard_project(label: &str, kitchen_yml: &str) -> TestProject {
    let p = TestProject::new(label);
    p.write("kitchen.yml", kitchen_yml);
    p.write("test/integration/default/bootstrap.sh", STANDARD_BOOTSTRAP);
    p.write("test/integration/default/data/verify.sh", STANDARD_VERIFY);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_valid_hostnames() {
        let a = unique_name("busybox");
        let b = unique_name("busybox");
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("{TEST_PREFIX}-{}-", std::process::id())));
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
    }

    #[test]
    fn the_basic_project_differs_only_in_driver_and_image() {
        let d = basic_kitchen_yml(Runtime::Docker);
        let l = basic_kitchen_yml(Runtime::Lxd);
        assert_eq!(
            d.replace("docker", "lxd")
                .replace("kitchen/busybox:latest", "kitchen/busybox"),
            l
        );
    }
}
