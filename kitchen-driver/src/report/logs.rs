//! The log files: `.kitchen/logs/kitchen.log` (every instance) and `<instance>.log`.
//!
//! Every line of every level goes to the logs, each with its timestamp, level, instance (in
//! `kitchen.log`) and stream:
//!
//! ```text
//! [2026-12-01T11:46:36.123Z] INFO  default-busybox stdout: converged-ok
//! ```
//!
//! Each file starts with a header (version, run id, command line, start time). When a run
//! starts and no other kitchen-driver process of the project is running, the logs of the
//! previous run move to `.kitchen/logs/previous/`, so no stale per-instance log sits beside
//! the fresh `kitchen.log`.
//!
//! Several processes may run in one project at once (an `exec` during a `converge`, two
//! `converge`s of different instances), so:
//! - every process holds a shared lock on `.kitchen/logs/.lock` while it runs, and moves logs
//!   away only when it can take that lock exclusively (no other process is writing them);
//! - files are opened in append mode and each line is one `write`, so lines of two processes
//!   interleave whole, and none truncates another's file;
//! - an instance's log is written only while this process holds the instance's lock (see
//!   [`crate::state::StateFile::lock`]). Lines that come before the lock (or of an `exec` that
//!   runs beside a `converge`) wait; when the instance finishes they are written if the lock
//!   can be taken then, and otherwise are only in `kitchen.log`.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::text::{Line, Renderer};
use crate::error::{Error, Result};
use crate::events::{Event, Reporter, RunStarted, Timestamp};
use crate::state::StateFile;

/// Where the previous run's logs go.
pub const PREVIOUS_DIR: &str = "previous";

/// The file every running process holds a shared lock on (see the module doc).
const RUN_LOCK: &str = ".lock";

/// One instance's log: not open yet (its lines wait), or open.
#[derive(Debug)]
enum InstanceLog {
    Waiting(Vec<String>),
    Open(File),
}

/// Writes the log files.
#[derive(Debug)]
pub struct LogFiles {
    kitchen_root: PathBuf,
    dir: PathBuf,
    kitchen_log: File,
    /// Held (shared) for the life of the reporter; see the module doc.
    _run_lock: File,
    instance_logs: HashMap<String, InstanceLog>,
    renderer: Renderer,
    header: Vec<String>,
}

/// Opens a log for appending, readable only by its owner: logs hold whatever the instance
/// printed, which may include what a secret redaction could not recognise.
fn open_append(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    // A log created by an older version keeps its mode on open: make it private too.
    f.set_permissions(fs::Permissions::from_mode(0o600))?;
    Ok(f)
}

/// Writes `line` and a newline in one `write` (whole lines when processes share a file).
fn write_line(f: &mut File, line: &str) {
    let mut buf = String::with_capacity(line.len() + 1);
    buf.push_str(line);
    buf.push('\n');
    let _ = f.write_all(buf.as_bytes());
}

impl LogFiles {
    /// Creates `<kitchen_root>/.kitchen/logs/`, moves the previous run's logs to
    /// `previous/` when no other process of the project is running, and opens `kitchen.log`
    /// for appending.
    ///
    /// # Errors
    /// [`Error::Io`] when the directory or file cannot be created.
    pub fn new(kitchen_root: &Path) -> Result<Self> {
        let dir = kitchen_root.join(".kitchen").join("logs");
        fs::create_dir_all(&dir).map_err(|e| Error::io("creating directory", &dir, e))?;
        let lock_path = dir.join(RUN_LOCK);
        let run_lock =
            open_append(&lock_path).map_err(|e| Error::io("opening lock file", &lock_path, e))?;
        match fs4::FileExt::try_lock(&run_lock) {
            Ok(()) => rotate(&dir)?,
            Err(fs4::TryLockError::WouldBlock) => {
                tracing::debug!("another kitchen-driver process is running here: logs stay");
            }
            Err(fs4::TryLockError::Error(e)) => {
                return Err(Error::io("locking", &lock_path, e));
            }
        }
        // Exclusive becomes shared (or waits for a rotation by another process to end).
        fs4::FileExt::lock_shared(&run_lock).map_err(|e| Error::io("locking", &lock_path, e))?;
        let path = dir.join("kitchen.log");
        let kitchen_log =
            open_append(&path).map_err(|e| Error::io("creating log file", &path, e))?;
        Ok(Self {
            kitchen_root: kitchen_root.to_path_buf(),
            dir,
            kitchen_log,
            _run_lock: run_lock,
            instance_logs: HashMap::new(),
            renderer: Renderer::default(),
            header: Vec::new(),
        })
    }

    /// Opens an instance's log (header first, then the lines that waited).
    fn open_instance_log(&self, name: &str, waiting: Vec<String>) -> Option<File> {
        let path = self.dir.join(format!("{name}.log"));
        let mut f = open_append(&path).ok()?;
        for h in &self.header {
            write_line(&mut f, h);
        }
        for l in waiting {
            write_line(&mut f, &l);
        }
        Some(f)
    }

    /// Writes (or keeps waiting) a line of instance `name`'s log.
    fn instance_line(&mut self, name: &str, line: String) {
        let entry = self
            .instance_logs
            .remove(name)
            .unwrap_or(InstanceLog::Waiting(Vec::new()));
        let entry = match entry {
            InstanceLog::Open(mut f) => {
                write_line(&mut f, &line);
                InstanceLog::Open(f)
            }
            InstanceLog::Waiting(mut lines) => {
                lines.push(line);
                if StateFile::new(&self.kitchen_root, name).holds_lock() {
                    match self.open_instance_log(name, lines) {
                        Some(f) => InstanceLog::Open(f),
                        None => InstanceLog::Waiting(Vec::new()),
                    }
                } else {
                    InstanceLog::Waiting(lines)
                }
            }
        };
        self.instance_logs.insert(name.to_string(), entry);
    }

    /// At the end of an instance: writes the lines that waited if its lock is free now
    /// (taking it meanwhile); otherwise they stay in `kitchen.log` only.
    fn settle(&mut self, name: &str) {
        let Some(InstanceLog::Waiting(lines)) = self.instance_logs.remove(name) else {
            return;
        };
        let state_file = StateFile::new(&self.kitchen_root, name);
        let Ok(lock) = state_file.lock() else {
            return;
        };
        if let Some(f) = self.open_instance_log(name, lines) {
            self.instance_logs
                .insert(name.to_string(), InstanceLog::Open(f));
        }
        if !state_file.path().exists() {
            lock.remove();
        }
    }
}

/// Moves every `*.log` in `dir` into `dir/previous/` (replacing the run before).
fn rotate(dir: &Path) -> Result<()> {
    let logs: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| Error::io("reading directory", dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "log"))
        .collect();
    if logs.is_empty() {
        return Ok(());
    }
    let previous = dir.join(PREVIOUS_DIR);
    if previous.exists() {
        fs::remove_dir_all(&previous).map_err(|e| Error::io("removing old logs", &previous, e))?;
    }
    fs::create_dir_all(&previous).map_err(|e| Error::io("creating directory", &previous, e))?;
    for log in logs {
        if let Some(name) = log.file_name() {
            let to = previous.join(name);
            fs::rename(&log, &to).map_err(|e| Error::io("moving old log", &log, e))?;
        }
    }
    Ok(())
}

/// The header lines of a run's log files.
pub fn header(run: &RunStarted) -> Vec<String> {
    vec![
        format!("# kitchen-driver {} run {}", run.version, run.run_id),
        format!("# command line: {}", shell_words(&run.command_line)),
        format!("# started: {}", stamp(run.at)),
    ]
}

fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn stamp(at: Timestamp) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The log lines of one rendered line: one per line of its text (continuation lines too),
/// each with the timestamp, level, instance (when `with_instance`) and stream.
pub fn log_lines(at: Timestamp, line: &Line, with_instance: bool) -> Vec<String> {
    let instance = match (&line.instance, with_instance) {
        (Some(i), true) => format!("{} ", i.name),
        _ => String::new(),
    };
    line.text
        .split('\n')
        .map(|t| {
            format!(
                "[{}] {:<5} {instance}{}: {}",
                stamp(at),
                line.level.tag(),
                line.stream.as_str(),
                t.trim_end_matches('\r')
            )
        })
        .collect()
}

impl Reporter for LogFiles {
    fn report(&mut self, event: &Event) {
        if let Event::RunStarted(run) = event {
            self.header = header(run);
            for h in self.header.clone() {
                write_line(&mut self.kitchen_log, &h);
            }
        }
        let at = event.at();
        for line in self.renderer.render(event) {
            for l in log_lines(at, &line, true) {
                write_line(&mut self.kitchen_log, &l);
            }
            if let Some(instance) = &line.instance {
                for l in log_lines(at, &line, false) {
                    self.instance_line(&instance.name, l);
                }
            }
        }
        match event {
            // Create the instance's log even if it prints nothing (when its lock is held).
            Event::InstanceStarted(e) => {
                let name = &e.instance.name;
                if !self.instance_logs.contains_key(name)
                    && StateFile::new(&self.kitchen_root, name).holds_lock()
                {
                    let log = self.open_instance_log(name, Vec::new());
                    if let Some(f) = log {
                        self.instance_logs
                            .insert(name.clone(), InstanceLog::Open(f));
                    }
                }
            }
            Event::InstanceFinished(e) => self.settle(&e.instance.name),
            _ => {}
        }
    }

    fn finish(&mut self) -> Result<()> {
        let waiting: Vec<String> = self
            .instance_logs
            .iter()
            .filter(|(_, l)| matches!(l, InstanceLog::Waiting(_)))
            .map(|(n, _)| n.clone())
            .collect();
        for name in waiting {
            self.settle(&name);
        }
        let _ = self.kitchen_log.flush();
        Ok(())
    }
}
