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
//! starts, the logs of the previous run move to `.kitchen/logs/previous/`, so no stale
//! per-instance log sits beside the fresh `kitchen.log`.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::text::{Line, Renderer};
use crate::error::{Error, Result};
use crate::events::{Event, Reporter, RunStarted, Timestamp};

/// Where the previous run's logs go.
pub const PREVIOUS_DIR: &str = "previous";

/// Writes the log files.
#[derive(Debug)]
pub struct LogFiles {
    dir: PathBuf,
    kitchen_log: File,
    instance_logs: HashMap<String, File>,
    renderer: Renderer,
    header: Vec<String>,
}

impl LogFiles {
    /// Creates `<kitchen_root>/.kitchen/logs/`, moves the previous run's logs to
    /// `previous/`, and starts a fresh `kitchen.log`.
    ///
    /// # Errors
    /// [`Error::Io`] when the directory or file cannot be created.
    pub fn new(kitchen_root: &Path) -> Result<Self> {
        let dir = kitchen_root.join(".kitchen").join("logs");
        fs::create_dir_all(&dir).map_err(|e| Error::io("creating directory", &dir, e))?;
        rotate(&dir)?;
        let path = dir.join("kitchen.log");
        let kitchen_log =
            create_private(&path).map_err(|e| Error::io("creating log file", &path, e))?;
        Ok(Self {
            dir,
            kitchen_log,
            instance_logs: HashMap::new(),
            renderer: Renderer::default(),
            header: Vec::new(),
        })
    }

    fn instance_log(&mut self, name: &str) -> Option<&mut File> {
        if !self.instance_logs.contains_key(name) {
            let path = self.dir.join(format!("{name}.log"));
            let mut f = create_private(&path).ok()?;
            for h in &self.header {
                let _ = writeln!(f, "{h}");
            }
            self.instance_logs.insert(name.to_string(), f);
        }
        self.instance_logs.get_mut(name)
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
            for h in &self.header {
                let _ = writeln!(self.kitchen_log, "{h}");
            }
        }
        let at = event.at();
        for line in self.renderer.render(event) {
            for l in log_lines(at, &line, true) {
                let _ = writeln!(self.kitchen_log, "{l}");
            }
            if let Some(instance) = &line.instance
                && let Some(f) = self.instance_log(&instance.name)
            {
                for l in log_lines(at, &line, false) {
                    let _ = writeln!(f, "{l}");
                }
            }
        }
        if let Event::InstanceStarted(e) = event {
            // Create the instance's log even if it prints nothing.
            let _ = self.instance_log(&e.instance.name);
        }
    }

    fn finish(&mut self) -> Result<()> {
        let _ = self.kitchen_log.flush();
        Ok(())
    }
}
/// Creates (or truncates) a log file readable only by its owner: logs hold whatever the
/// instance printed, which may include what a secret redaction could not recognise.
fn create_private(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // A log created by an older version keeps its mode on open: make it private too.
    f.set_permissions(fs::Permissions::from_mode(0o600))?;
    Ok(f)
}
