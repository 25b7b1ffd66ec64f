//! A private Docker engine or LXD daemon for one test, to stop and restart without touching
//! the shared daemons other tests use.
//!
//! [`PrivateDaemon::start`] runs a second `dockerd` (its own `--data-root`, `--exec-root`,
//! pidfile, unix socket and containerd, no bridge, no iptables, `live-restore` on) or a second
//! `lxd` (its own `LXD_DIR`, a `dir` storage pool, no network), all under one directory
//! `/tmp/kdtest-<pid>-<n>-<label>-XXXXXX`, and loads the busybox test image into it from the
//! shared daemon. The daemon runs in a process group of its own, so a signal meant for the
//! test (a terminal's Ctrl-C, nextest's SIGTERM) does not stop it behind the guard's back.
//!
//! Dropping the guard (or a SIGTERM, see [`crate::guards`]) starts the daemon again if it is
//! stopped, removes every container on it, stops it, kills what is left of its processes,
//! unmounts what it mounted under its directory and removes the directory.
//!
//! Point `kitchen-driver` at it with [`PrivateDaemon::env`] (`DOCKER_HOST` or `LXD_DIR`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::Runtime;
use crate::guards::{self, Registration};

/// How long a daemon may take to answer after it is started.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// A daemon of `runtime` that only this test uses (see the module docs).
pub struct PrivateDaemon {
    runtime: Runtime,
    dir: PathBuf,
    /// The running daemon's pid (shared with the SIGTERM clean-up).
    pid: Arc<Mutex<Option<u32>>>,
    /// The running daemon, to reap.
    child: Option<Child>,
    _on_sigterm: Registration,
}

impl PrivateDaemon {
    /// Starts a private daemon of `runtime` with `kitchen/busybox` loaded.
    ///
    /// Panics (with the daemon's log) when it does not come up.
    pub fn start(runtime: Runtime, label: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(&format!("{}-", crate::unique_name(label)))
            .tempdir_in("/tmp")
            .expect("temp dir")
            .keep();
        // LXD's containers must be able to traverse LXD_DIR.
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o711))
            .unwrap();
        let pid = Arc::new(Mutex::new(None));
        let _on_sigterm = {
            let (dir, pid) = (dir.clone(), pid.clone());
            guards::register(move || teardown(runtime, &dir, &pid))
        };
        let mut daemon = Self {
            runtime,
            dir,
            pid,
            child: None,
            _on_sigterm,
        };
        daemon.start_again();
        match runtime {
            Runtime::Docker => daemon.load_docker_busybox(),
            Runtime::Lxd => daemon.prepare_lxd(),
        }
        daemon
    }

    /// The runtime this daemon serves.
    pub fn runtime(&self) -> Runtime {
        self.runtime
    }

    /// What the daemon is called in messages: `Docker engine` or `LXD daemon`.
    pub fn name(&self) -> &'static str {
        match self.runtime {
            Runtime::Docker => "Docker engine",
            Runtime::Lxd => "LXD daemon",
        }
    }

    /// Its unix socket.
    pub fn socket(&self) -> PathBuf {
        socket(self.runtime, &self.dir)
    }

    /// The environment that points `kitchen-driver` (and `docker`/`lxc`) at this daemon.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        match self.runtime {
            Runtime::Docker => vec![("DOCKER_HOST", docker_host(&self.dir))],
            Runtime::Lxd => vec![("LXD_DIR", self.dir.display().to_string())],
        }
    }

    /// Whether the daemon process is running.
    pub fn is_running(&self) -> bool {
        self.pid.lock().unwrap().is_some_and(alive)
    }

    /// Stops the daemon as a service manager does (SIGTERM) and waits until it has exited.
    /// Its containers keep running: LXD leaves them to their monitors, and this dockerd has
    /// `live-restore`.
    pub fn stop(&mut self) {
        let pid = self.pid.lock().unwrap().take();
        if let Some(pid) = pid {
            terminate(pid);
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }

    /// Starts the daemon (again) on the same directory and waits until it answers.
    pub fn start_again(&mut self) {
        assert!(!self.is_running(), "the {} is already running", self.name());
        let child = spawn(self.runtime, &self.dir);
        *self.pid.lock().unwrap() = Some(child.id());
        self.child = Some(child);
        wait_ready(self.runtime, &self.dir);
    }

    /// The containers on this daemon (names), running or not. Panics when the daemon does not
    /// answer.
    pub fn containers(&self) -> Vec<String> {
        let out = match self.runtime {
            Runtime::Docker => output(self.cli().args(["ps", "-a", "--format", "{{.Names}}"])),
            Runtime::Lxd => output(self.cli().args(["list", "--format", "csv", "-c", "n"])),
        };
        out.lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// The running containers on this daemon (names).
    pub fn running_containers(&self) -> Vec<String> {
        let out = match self.runtime {
            Runtime::Docker => output(self.cli().args(["ps", "--format", "{{.Names}}"])),
            Runtime::Lxd => {
                output(
                    self.cli()
                        .args(["list", "--format", "csv", "-c", "n", "status=running"]),
                )
            }
        };
        out.lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// `docker` or `lxc`, pointed at this daemon.
    pub fn cli(&self) -> Command {
        cli(self.runtime, &self.dir)
    }

    /// The daemon's directory (data, sockets, logs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The daemon's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }

    fn load_docker_busybox(&self) {
        let image = Runtime::Docker.busybox_image();
        let mut save = Command::new("docker")
            .env_remove("DOCKER_HOST")
            .args(["save", image])
            .stdout(Stdio::piped())
            .spawn()
            .expect("docker save");
        let loaded = self
            .cli()
            .arg("load")
            .stdin(save.stdout.take().expect("piped"))
            .output()
            .expect("docker load");
        assert!(save.wait().unwrap().success(), "docker save {image} failed");
        assert!(
            loaded.status.success(),
            "docker load into the private engine: {}",
            crate::text(&loaded.stderr)
        );
    }

    fn prepare_lxd(&self) {
        run(self.cli().args(["storage", "create", "default", "dir"]));
        run(self
            .cli()
            .args(["profile", "device", "add", "default", "root", "disk"])
            .args(["path=/", "pool=default"]));
        // The image comes from the shared daemon, exported as it is (meta and rootfs files).
        let alias = Runtime::Lxd.busybox_image();
        let export = self.dir.join("image-export");
        std::fs::create_dir_all(&export).unwrap();
        run(Command::new("lxc")
            .env_remove("LXD_DIR")
            .env_remove("LXD_SOCKET")
            .args(["image", "export", alias])
            .arg(export.join("busybox")));
        let mut files: Vec<PathBuf> = std::fs::read_dir(&export)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        // A split image is `busybox` (metadata) and `busybox.root`: metadata first.
        files.sort();
        run(self
            .cli()
            .args(["image", "import"])
            .args(&files)
            .args(["--alias", alias]));
    }
}

impl Drop for PrivateDaemon {
    fn drop(&mut self) {
        teardown(self.runtime, &self.dir, &self.pid);
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }
}

/// Removes a private daemon's directory that a guard left (its process was SIGKILLed): what
/// the guard's drop would have done. For tests that check a guard from outside its process.
pub fn remove_left_behind(runtime: Runtime, dir: &Path) {
    let pid = std::fs::read_to_string(dir.join("docker.pid"))
        .ok()
        .and_then(|p| p.trim().parse().ok());
    teardown(runtime, dir, &Mutex::new(pid));
}

fn socket(runtime: Runtime, dir: &Path) -> PathBuf {
    match runtime {
        Runtime::Docker => dir.join("docker.sock"),
        Runtime::Lxd => dir.join("unix.socket"),
    }
}

fn docker_host(dir: &Path) -> String {
    format!("unix://{}", socket(Runtime::Docker, dir).display())
}

fn cli(runtime: Runtime, dir: &Path) -> Command {
    match runtime {
        Runtime::Docker => {
            let mut c = Command::new("docker");
            c.env("DOCKER_HOST", docker_host(dir));
            c
        }
        Runtime::Lxd => {
            let mut c = Command::new("lxc");
            c.env("LXD_DIR", dir).env_remove("LXD_SOCKET");
            c
        }
    }
}

/// Starts the daemon on `dir` in a process group of its own, its output in `daemon.log`.
fn spawn(runtime: Runtime, dir: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("daemon.log"))
        .unwrap();
    let mut c = match runtime {
        Runtime::Docker => {
            // Its own daemon.json: the host's /etc/docker/daemon.json must not apply (a flag
            // set in both is refused), and live-restore keeps containers across a restart.
            let config = dir.join("daemon.json");
            std::fs::write(&config, "{\"live-restore\": true}\n").unwrap();
            let mut c = Command::new("dockerd");
            c.arg("--config-file")
                .arg(&config)
                .arg("--data-root")
                .arg(dir.join("data"))
                .arg("--exec-root")
                .arg(dir.join("exec"))
                .arg("--pidfile")
                .arg(dir.join("docker.pid"))
                .arg("-H")
                .arg(docker_host(dir))
                .args(["--bridge=none", "--iptables=false", "--ip-forward=false"]);
            c
        }
        Runtime::Lxd => {
            let mut c = Command::new("lxd");
            c.env("LXD_DIR", dir)
                .args(["--group", "root", "--logfile"])
                .arg(dir.join("lxd.log"));
            c
        }
    };
    c.stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    std::os::unix::process::CommandExt::process_group(&mut c, 0);
    c.spawn()
        .expect("the daemon binary (run scripts/setup-host)")
}

/// Waits until the daemon on `dir` answers; panics with its log when it does not.
fn wait_ready(runtime: Runtime, dir: &Path) {
    let deadline = Instant::now() + READY_WITHIN;
    let answers = || match runtime {
        Runtime::Docker => cli(runtime, dir)
            .args(["version", "--format", "{{.Server.Version}}"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
        Runtime::Lxd => Command::new("lxd")
            .env("LXD_DIR", dir)
            .args(["waitready", "--timeout", "5"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
    };
    while !answers() {
        assert!(
            Instant::now() < deadline,
            "the private {runtime:?} daemon in {} did not answer within {READY_WITHIN:?}:\n{}",
            dir.display(),
            std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Removes everything the daemon on `dir` holds, stops it, and removes `dir` (idempotent).
fn teardown(runtime: Runtime, dir: &Path, pid: &Mutex<Option<u32>>) {
    if !dir.exists() {
        return;
    }
    let mut pid = pid.lock().unwrap_or_else(|p| p.into_inner());
    // Containers outlive a stopped daemon: start it again to remove them properly.
    let mut restarted = None;
    if !pid.is_some_and(alive) {
        let child = spawn(runtime, dir);
        *pid = Some(child.id());
        restarted = Some(child);
        let started = std::panic::catch_unwind(|| wait_ready(runtime, dir));
        if started.is_err() {
            eprintln!(
                "test-support: the private daemon in {} did not start for clean-up",
                dir.display()
            );
        }
    }
    match runtime {
        Runtime::Docker => {
            let ids = output_or_empty(cli(runtime, dir).args(["ps", "-aq"]));
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let _ = cli(runtime, dir).args(["rm", "-f"]).args(&ids).output();
            }
        }
        Runtime::Lxd => {
            let names =
                output_or_empty(cli(runtime, dir).args(["list", "--format", "csv", "-c", "n"]));
            for name in names.lines().filter(|l| !l.is_empty()) {
                let _ = cli(runtime, dir).args(["delete", "--force", name]).output();
            }
        }
    }
    if let Some(p) = pid.take() {
        terminate(p);
    }
    if let Some(mut child) = restarted {
        let _ = child.wait();
    }
    kill_processes_under(dir);
    unmount_under(dir);
    if let Err(e) = std::fs::remove_dir_all(dir) {
        eprintln!("test-support: cannot remove {}: {e}", dir.display());
    }
}

/// SIGTERM to `pid`, then SIGKILL if it has not exited within 30 s; returns once it is gone.
fn terminate(pid: u32) {
    let Some(p) = rustix::process::Pid::from_raw(pid as i32) else {
        return;
    };
    let _ = rustix::process::kill_process(p, rustix::process::Signal::TERM);
    let deadline = Instant::now() + Duration::from_secs(30);
    while alive(pid) {
        if Instant::now() > deadline {
            let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Reap it when it is this process's child (nothing else may: PID 1 in a container often
    // does not reap); a guard's own `Child::wait` then finds nothing, which is fine.
    let _ = rustix::process::waitpid(Some(p), rustix::process::WaitOptions::NOHANG);
}

/// Whether `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name in parentheses: `pid (comm) S ...`.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// SIGKILLs every process whose command line names `dir` (a containerd, its shims, an LXD
/// monitor), which only exist when a clean stop failed.
fn kill_processes_under(dir: &Path) {
    let needle = dir.to_string_lossy().into_owned();
    let me = std::process::id();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(&needle)
            && let Some(p) = rustix::process::Pid::from_raw(pid as i32)
        {
            let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
        }
    }
}

/// The mount points at or under `dir`, deepest first.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let prefix = dir.to_string_lossy().into_owned();
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    // Field 5 of mountinfo is the mount point (octal escapes aside, which our paths lack).
    let mut points: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| *m == prefix || m.starts_with(&format!("{prefix}/")))
        .map(str::to_string)
        .collect();
    points.sort_by_key(|m| std::cmp::Reverse(m.len()));
    points.dedup();
    points
}

/// Unmounts (lazily) everything mounted at or under `dir`.
fn unmount_under(dir: &Path) {
    for point in mounts_under(dir) {
        let _ = Command::new("umount").args(["-l", &point]).output();
    }
}

/// Runs `c`; panics with its output when it fails.
fn run(c: &mut Command) {
    let out = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
    assert!(
        out.status.success(),
        "{c:?} failed: {}{}",
        crate::text(&out.stdout),
        crate::text(&out.stderr)
    );
}

/// Runs `c` and returns its stdout; panics when it fails.
fn output(c: &mut Command) -> String {
    let out = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
    assert!(
        out.status.success(),
        "{c:?} failed: {}",
        crate::text(&out.stderr)
    );
    crate::text(&out.stdout)
}

/// Runs `c` and returns its stdout, or nothing when it fails.
fn output_or_empty(c: &mut Command) -> String {
    c.output()
        .map(|o| crate::text(&o.stdout))
        .unwrap_or_default()
}
