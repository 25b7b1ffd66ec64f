//! The transport: how kitchen-driver reaches a created instance, as test-kitchen's
//! `Kitchen::Transport` does (lib/kitchen/transport/base.rb), but over the runtime's own exec
//! and archive APIs instead of SSH.
//!
//! A driver hands out a [`Connection`]; provisioners, verifiers, remote hooks, `exec` and
//! `login` only ever use that. What lives here:
//! - [`Connection`]: run a command ([`ExecRequest`] -> [`ExecOutput`]), upload (an
//!   [`UploadSet`], streamed from the host as it is sent) and download (tar archives), open a
//!   terminal ([`TtySession`], for `login`),
//!   and tell host-side tools where the instance is ([`Target`]).
//! - [`shell_quote`], for the command lines sent through `sh -c`.
//! - [`ExecMarker`]: how a command stopped on our side (a step timeout, an abort) is killed
//!   inside the instance too, with every process it started.

mod archive;
pub(crate) mod tty;
mod upload;

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::report::OutputSink;

pub use archive::TarBuilder;
pub use tty::TtySession;
pub use upload::{UploadEntry, UploadSet};

/// A command to run inside an instance.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ExecRequest {
    /// The argument vector (no shell unless you put one there; see [`ExecRequest::shell`]).
    pub argv: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Run as this user instead of the container's default.
    pub user: Option<String>,
    /// Working directory inside the instance.
    pub workdir: Option<String>,
}

impl ExecRequest {
    /// Runs `argv` as given.
    pub fn new(argv: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            argv: argv.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// Runs `script` with `sh -c` (test-kitchen's transports run command strings in a shell).
    pub fn shell(script: impl Into<String>) -> Self {
        Self::new(["sh".to_string(), "-c".to_string(), script.into()])
    }

    /// Adds an environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The command as one line, for logs and error messages.
    pub fn display(&self) -> String {
        match self.argv.as_slice() {
            [sh, c, script] if sh == "sh" && c == "-c" => script.trim().to_string(),
            argv => argv.join(" "),
        }
    }
}

/// What a finished command left.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ExecOutput {
    /// The exit code (`-1` when the runtime did not report one).
    pub exit_code: i64,
    /// Everything written to stdout.
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
}

impl ExecOutput {
    /// Whether the command exited 0.
    pub fn success(&self) -> bool {
        self.exit_code == 0
    }
}

/// The shell `login` opens: bash when the image has it, else sh.
pub const LOGIN_SHELL: &str =
    "if command -v bash >/dev/null 2>&1; then exec bash -l; else exec sh -l; fi";

/// How a connection reaches its instance, for tools on the host that connect by themselves
/// (Ansible's `community.docker.docker` or `community.general.lxd` connection plugins).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Target {
    /// A Docker container.
    Docker {
        /// Container id.
        container_id: String,
        /// Container name.
        container_name: String,
        /// `DOCKER_HOST` as the driver used it, when set.
        docker_host: Option<String>,
    },
    /// An LXD instance.
    Lxd {
        /// Instance name.
        name: String,
        /// LXD project.
        project: String,
    },
}

/// What an instance has used, as its runtime reports it ([`Connection::resource_usage`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResourceUsage {
    /// Memory in use now, in bytes.
    pub memory_bytes: Option<u64>,
    /// The highest memory use the runtime recorded, in bytes (cgroup v1 and LXD; Docker on
    /// cgroup v2 does not record it).
    pub peak_memory_bytes: Option<u64>,
    /// CPU time used since the instance started.
    pub cpu_time: Option<std::time::Duration>,
}

impl ResourceUsage {
    /// A usage report.
    pub fn new(
        memory_bytes: Option<u64>,
        peak_memory_bytes: Option<u64>,
        cpu_time: Option<std::time::Duration>,
    ) -> Self {
        Self {
            memory_bytes,
            peak_memory_bytes,
            cpu_time,
        }
    }
}

/// A live link to a created instance: test-kitchen's transport connection, over the runtime's
/// own APIs.
#[async_trait]
pub trait Connection: Send + Sync {
    /// Runs a command, streaming each output line to `sink` as it comes, and returns its exit
    /// code and captured output. A non-zero exit is not an error here; see
    /// [`Connection::execute`].
    ///
    /// # Errors
    /// Runtime errors (the command could not be started or followed).
    async fn exec(&self, req: &ExecRequest, sink: &dyn OutputSink) -> Result<ExecOutput>;

    /// Creates `files` in `remote_dir`, which must exist, reading the host as it sends:
    /// memory must not grow with the size of the trees (see [`UploadSet`] for what arrives).
    ///
    /// # Errors
    /// [`Error::Io`] when a host path cannot be read; runtime errors.
    async fn upload_set(&self, files: UploadSet, remote_dir: &str) -> Result<()>;

    /// Reads `remote` (a file or directory) as a tar archive whose top entry is its basename.
    ///
    /// # Errors
    /// Runtime errors, including a missing path.
    async fn download_tar(&self, remote: &str) -> Result<Vec<u8>>;

    /// Starts `argv` under a pseudo-terminal of `width` x `height` (for `login`), through the
    /// runtime's API.
    ///
    /// # Errors
    /// Runtime errors when the program cannot be started.
    async fn open_tty(
        &self,
        argv: &[String],
        env: &[(String, String)],
        width: u16,
        height: u16,
    ) -> Result<TtySession>;

    /// How host-side tools can reach this instance.
    fn target(&self) -> Target;

    /// The instance's name, for messages.
    fn instance(&self) -> &str;

    /// What the instance has used so far (memory, CPU time), as the runtime reports it, for
    /// the run's resource samples; `None` when the runtime does not say.
    ///
    /// # Errors
    /// Runtime errors (the instance is gone).
    async fn resource_usage(&self) -> Result<Option<ResourceUsage>> {
        Ok(None)
    }

    /// Runs `script` with `sh -c` and fails when it exits non-zero (test-kitchen's
    /// `connection.execute`, which raises `TransportFailed`).
    ///
    /// # Errors
    /// [`Error::CommandFailed`] with the exit code, or runtime errors.
    async fn execute(&self, script: &str, what: &str, sink: &dyn OutputSink) -> Result<ExecOutput> {
        let req = ExecRequest::shell(script);
        let out = self.exec(&req, sink).await?;
        if out.success() {
            Ok(out)
        } else {
            Err(Error::CommandFailed {
                instance: self.instance().to_string(),
                what: what.to_string(),
                command: req.display(),
                exit_code: out.exit_code,
            })
        }
    }

    /// Copies local files and directories into the directory `remote` (created if missing),
    /// each under its own basename, as test-kitchen's `upload(locals, remote)` does.
    ///
    /// # Errors
    /// [`Error::Io`] when a local path cannot be read, runtime errors otherwise.
    async fn upload(&self, locals: &[PathBuf], remote: &str) -> Result<()> {
        let mut files = UploadSet::new();
        for local in locals {
            let name = local
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| ".".to_string());
            files.add_path(local, &name)?;
        }
        self.execute(
            &format!("mkdir -p {}", shell_quote(remote)),
            "creating upload directory",
            &crate::report::NullSink,
        )
        .await?;
        self.upload_set(files, remote).await
    }

    /// Copies each remote path (file or directory) into the local directory `local`.
    ///
    /// # Errors
    /// Runtime errors, or [`Error::Io`] when unpacking fails.
    async fn download(&self, remotes: &[String], local: &Path) -> Result<()> {
        std::fs::create_dir_all(local).map_err(|e| Error::io("creating directory", local, e))?;
        for remote in remotes {
            let tar = self.download_tar(remote).await?;
            unpack_download(&tar, local, self.instance(), remote)?;
        }
        Ok(())
    }
}

/// Unpacks an archive the instance sent into `local`, refusing what would land outside it:
/// absolute names, `..` components, hard links out of the archive, and any path through a
/// symlink (tar's `unpack_in` checks the real parent of every entry). Symlinks themselves are
/// kept as symlinks, never followed, as Docker's archive API returns them.
///
/// # Errors
/// [`Error::UnsafeDownload`] naming the entry; [`Error::Io`] when writing fails.
pub fn unpack_download(tar: &[u8], local: &Path, instance: &str, remote: &str) -> Result<()> {
    let refuse = |entry: &str, reason: String| Error::UnsafeDownload {
        instance: instance.to_string(),
        path: format!("{remote} (archive entry {entry:?})"),
        reason,
    };
    let io = |e: std::io::Error| Error::io("unpacking download into", local, e);
    let mut archive = tar::Archive::new(std::io::Cursor::new(tar));
    archive.set_preserve_permissions(true);
    archive.set_overwrite(true);
    for entry in archive.entries().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        let name = entry.path().map_err(io)?.into_owned();
        let shown = name.display().to_string();
        if !is_relative_inside(&name) {
            return Err(refuse(
                &shown,
                "the name is absolute or climbs with `..`".into(),
            ));
        }
        if entry.header().entry_type().is_hard_link() {
            let target = entry.link_name().map_err(io)?.unwrap_or_default();
            if !is_relative_inside(&target) {
                return Err(refuse(
                    &shown,
                    format!("it is a hard link to {}", target.display()),
                ));
            }
        }
        let is_dir = entry.header().entry_type().is_dir();
        if let Some(link) = symlink_on_the_way(local, &name, is_dir) {
            return Err(refuse(
                &shown,
                format!("it would be written through the symlink {}", link.display()),
            ));
        }
        if !entry.unpack_in(local).map_err(io)? {
            return Err(refuse(&shown, "the name leaves the directory".into()));
        }
    }
    Ok(())
}

/// The first existing symlink among the parents of `local/name` (and `local/name` itself for
/// a directory, whose mode would be set through it), if any: writing there would follow it (a
/// link to `/root/.ssh` sent earlier in the same archive, or left by an earlier download).
fn symlink_on_the_way(local: &Path, name: &Path, with_last: bool) -> Option<PathBuf> {
    let mut at = local.to_path_buf();
    let parts: Vec<_> = name.components().collect();
    let upto = if with_last {
        parts.len()
    } else {
        parts.len().saturating_sub(1)
    };
    for part in &parts[..upto] {
        at.push(part);
        if std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
            return Some(at);
        }
    }
    None
}

/// Whether `path` is relative and never climbs (`a/b`, `./a`; not `/a`, `a/../../b`).
fn is_relative_inside(path: &Path) -> bool {
    use std::path::Component;
    !path.as_os_str().is_empty()
        && path
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// The environment variable that marks every process of one exec (children inherit it), so
/// that [`ExecMarker::kill_script`] finds them all, including those that moved to the
/// background or were re-parented to the instance's init.
pub const EXEC_MARKER_VAR: &str = "KITCHEN_EXEC_ID";

/// A value unique to one exec, set as [`EXEC_MARKER_VAR`] in its environment.
///
/// Both runtimes end a command whose client went away only partly: LXD kills the process it
/// started (not what that process started), Docker kills nothing. So when an exec's future
/// is dropped before the command ended, the connection runs [`ExecMarker::kill_script`] in
/// the instance, which kills every process carrying the marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecMarker(String);

impl ExecMarker {
    /// A new marker, unique on this host for this process's lifetime (pid, a counter and the
    /// time).
    pub fn new() -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        Self(format!("{}-{n}-{nanos}", std::process::id()))
    }

    /// The marker's value.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `(name, value)` pair to add to the exec's environment.
    pub fn env(&self) -> (String, String) {
        (EXEC_MARKER_VAR.to_string(), self.0.clone())
    }

    /// A POSIX shell script that SIGKILLs every process of the instance whose environment
    /// carries this marker (run it as root).
    pub fn kill_script(&self) -> String {
        format!(
            "for d in /proc/[0-9]*; do if tr '\\000' '\\n' < \"$d/environ\" 2>/dev/null | grep -qx {want}; then kill -KILL \"${{d#/proc/}}\" 2>/dev/null; fi; done; true",
            want = shell_quote(&format!("{EXEC_MARKER_VAR}={}", self.0)),
        )
    }
}

impl Default for ExecMarker {
    fn default() -> Self {
        Self::new()
    }
}

/// Runs a kill (an [`ExecMarker::kill_script`] exec) when dropped while armed: an exec's
/// future keeps one armed until the command has ended, so dropping the future (a step
/// timeout, an abort) kills the command in the instance. The kill runs as a task of its own
/// on the current runtime.
pub(crate) struct KillOnDrop {
    kill: Option<futures::future::BoxFuture<'static, ()>>,
}

impl KillOnDrop {
    /// Armed with `kill`.
    pub(crate) fn new(kill: futures::future::BoxFuture<'static, ()>) -> Self {
        Self { kill: Some(kill) }
    }

    /// The command ended: nothing to kill.
    pub(crate) fn disarm(&mut self) {
        self.kill = None;
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(kill) = self.kill.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let task = rt.spawn(kill);
            pending_kills().push(task);
        }
    }
}

/// The kills started by [`KillOnDrop`] that may still run.
static PENDING_KILLS: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>> =
    std::sync::Mutex::new(Vec::new());

fn pending_kills() -> std::sync::MutexGuard<'static, Vec<tokio::task::JoinHandle<()>>> {
    // A panic while holding the lock leaves the list intact.
    PENDING_KILLS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Waits, at most `limit`, for the kills of commands stopped in their instances (a step
/// timeout, an abort) to finish, so they are not cut short when the process exits. The CLI
/// calls it at the end of a run.
pub async fn finish_pending_kills(limit: std::time::Duration) {
    let tasks: Vec<_> = std::mem::take(&mut *pending_kills());
    let _ = tokio::time::timeout(limit, futures::future::join_all(tasks)).await;
}

/// How long an exec's output is still read after its command ended, for the last lines of
/// processes it started in the background; after that their output is left unread, so a
/// daemon that keeps stdout open does not hang the step.
pub const EXEC_OUTPUT_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Quotes a string for a POSIX shell (single quotes).
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@%+,".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An archive with one raw entry whose name the tar crate's safe setters would refuse.
    fn archive_with(name: &str, kind: tar::EntryType, link: Option<&str>) -> Vec<u8> {
        let mut header = tar::Header::new_old();
        let bytes = header.as_mut_bytes();
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            bytes[157..157 + link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_entry_type(kind);
        header.set_mode(0o644);
        header.set_size(1);
        header.set_cksum();
        let mut out = header.as_bytes().to_vec();
        out.push(b'x');
        out.resize(1024, 0);
        out.extend([0u8; 1024]);
        out
    }

    #[test]
    fn downloads_refuse_absolute_and_climbing_names() {
        let root = tempfile::tempdir().unwrap();
        let local = root.path().join("dl");
        std::fs::create_dir(&local).unwrap();
        for name in ["../escaped", "a/../../escaped", "/tmp/escaped"] {
            let tar = archive_with(name, tar::EntryType::Regular, None);
            let err = unpack_download(&tar, &local, "i1", "/srv/out").unwrap_err();
            assert!(matches!(err, Error::UnsafeDownload { .. }), "{name}: {err}");
            assert!(err.to_string().contains("climbs"), "{err}");
        }
        let tar = archive_with("h", tar::EntryType::Link, Some("../../etc/passwd"));
        let err = unpack_download(&tar, &local, "i1", "/srv/out").unwrap_err();
        assert!(err.to_string().contains("hard link"), "{err}");
        assert!(!root.path().join("escaped").exists());
        assert_eq!(std::fs::read_dir(&local).unwrap().count(), 0);
    }

    #[test]
    fn downloads_keep_symlinks_and_never_write_through_them() {
        let host = tempfile::tempdir().unwrap();
        std::fs::write(host.path().join("secret"), "host").unwrap();
        let local = tempfile::tempdir().unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "out/k", host.path()).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(4);
        h.set_mode(0o644);
        b.append_data(&mut h, "out/k/secret", &b"evil"[..]).unwrap();
        let tar = b.into_inner().unwrap();
        let err = unpack_download(&tar, local.path(), "i1", "/srv/out").unwrap_err();
        assert!(err.to_string().contains("through the symlink"), "{err}");
        let link = local.path().join("out/k");
        assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
        assert_eq!(
            std::fs::read_to_string(host.path().join("secret")).unwrap(),
            "host"
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("/tmp/kitchen"), "/tmp/kitchen");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn exec_markers_are_unique_and_the_kill_script_matches_only_its_own() {
        let (a, b) = (ExecMarker::new(), ExecMarker::new());
        assert_ne!(a, b);
        let script = a.kill_script();
        assert!(
            script.contains(&format!("grep -qx {EXEC_MARKER_VAR}={}", a.as_str())),
            "{script}"
        );
        assert!(!script.contains(b.as_str()), "{script}");
    }

    #[test]
    fn the_kill_script_kills_exactly_the_marked_processes() {
        // Run it here on two background sleeps, one marked: the marked one dies (the host's
        // own /proc stands in for the instance's).
        let marker = ExecMarker::new();
        let spawn = |marked: bool| {
            let mut c = std::process::Command::new("sleep");
            c.arg("300");
            if marked {
                c.env(EXEC_MARKER_VAR, marker.as_str());
            }
            c.spawn().unwrap()
        };
        let (mut marked, mut other) = (spawn(true), spawn(false));
        let status = std::process::Command::new("sh")
            .args(["-c", &marker.kill_script()])
            .status()
            .unwrap();
        assert!(status.success());
        let killed = marked.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(killed.signal(), Some(9), "{killed:?}");
        assert!(
            other.try_wait().unwrap().is_none(),
            "the unmarked sleep must live"
        );
        other.kill().unwrap();
        other.wait().unwrap();
    }

    #[test]
    fn display_of_shell_requests_is_the_script() {
        assert_eq!(ExecRequest::shell(" echo hi ").display(), "echo hi");
        assert_eq!(ExecRequest::new(["ls", "-l"]).display(), "ls -l");
    }
}
