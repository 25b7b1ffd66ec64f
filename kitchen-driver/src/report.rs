//! Output: live lines prefixed by their instance, and the log files.
//!
//! A [`Reporter`] renders what the lifecycle and the plugins report to a writer it is given
//! (the CLI passes stdout) and to `.kitchen/logs/kitchen.log`; each [`InstanceOutput`] also
//! writes `.kitchen/logs/<instance>.log`. Log files get every line, whatever the level; the
//! live writer gets lines at or above the chosen [`Level`].

use std::collections::hash_map::DefaultHasher;
use std::fs::{self, File, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};

pub use crate::events::{Level, LineSplitter, NullSink, OutputSink, OutputStream};

struct Shared {
    live: Box<dyn Write + Send>,
    color: bool,
    level: Level,
    kitchen_log: Option<File>,
}

/// Renders lines to the live writer and `kitchen.log`. Cheap to clone (shared inside).
#[derive(Clone)]
pub struct Reporter {
    shared: Arc<Mutex<Shared>>,
    log_dir: Option<PathBuf>,
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter")
            .field("log_dir", &self.log_dir)
            .finish_non_exhaustive()
    }
}

impl Reporter {
    /// A reporter writing live lines at `level` and above to `live`, and every line to
    /// `<kitchen_root>/.kitchen/logs/kitchen.log` (truncated, as test-kitchen does per run).
    /// `color` prefixes instance names with ANSI colours (for a terminal).
    ///
    /// # Errors
    /// [`Error::Io`] when the log directory or file cannot be created.
    pub fn new(
        kitchen_root: &Path,
        live: Box<dyn Write + Send>,
        level: Level,
        color: bool,
    ) -> Result<Self> {
        let log_dir = kitchen_root.join(".kitchen").join("logs");
        fs::create_dir_all(&log_dir).map_err(|e| Error::io("creating directory", &log_dir, e))?;
        let path = log_dir.join("kitchen.log");
        let file = File::create(&path).map_err(|e| Error::io("creating log file", &path, e))?;
        Ok(Self {
            shared: Arc::new(Mutex::new(Shared {
                live,
                color,
                level,
                kitchen_log: Some(file),
            })),
            log_dir: Some(log_dir),
        })
    }

    /// A reporter that writes only to `live` (no log files), for library use and tests.
    pub fn without_logs(live: Box<dyn Write + Send>, level: Level) -> Self {
        Self {
            shared: Arc::new(Mutex::new(Shared {
                live,
                color: false,
                level,
                kitchen_log: None,
            })),
            log_dir: None,
        }
    }

    /// The output of one instance, writing also `.kitchen/logs/<instance>.log` (truncated).
    ///
    /// # Errors
    /// [`Error::Io`] when the instance log cannot be created.
    pub fn instance(&self, name: &str) -> Result<InstanceOutput> {
        let log = match &self.log_dir {
            Some(dir) => {
                let path = dir.join(format!("{name}.log"));
                let f = OpenOptions::new()
                    .create(true)
                    .write(true)
                    .truncate(true)
                    .open(&path)
                    .map_err(|e| Error::io("creating log file", &path, e))?;
                Some(Arc::new(Mutex::new(f)))
            }
            None => None,
        };
        Ok(InstanceOutput {
            reporter: self.clone(),
            instance: name.to_string(),
            log,
        })
    }

    /// A line not tied to an instance (summaries, errors).
    pub fn global(&self, level: Level, msg: &str) {
        let mut s = lock(&self.shared);
        let stamp = timestamp();
        if let Some(f) = s.kitchen_log.as_mut() {
            let _ = writeln!(f, "[{stamp}] {} {msg}", level.tag());
        }
        if level >= s.level {
            let _ = writeln!(s.live, "{msg}");
            let _ = s.live.flush();
        }
    }

    /// A line for `kitchen.log` only (for what the caller shows elsewhere, such as the final
    /// error summary on stderr).
    pub fn log_only(&self, level: Level, msg: &str) {
        let mut s = lock(&self.shared);
        if let Some(f) = s.kitchen_log.as_mut() {
            let _ = writeln!(f, "[{}] {} {msg}", timestamp(), level.tag());
        }
    }

    fn emit(&self, instance: &str, level: Level, msg: &str) {
        let mut s = lock(&self.shared);
        let stamp = timestamp();
        if let Some(f) = s.kitchen_log.as_mut() {
            let _ = writeln!(f, "[{stamp}] {} {instance}: {msg}", level.tag());
        }
        if level >= s.level {
            let prefix = if s.color {
                format!("\x1b[{}m[{instance}]\x1b[0m", color_for(instance))
            } else {
                format!("[{instance}]")
            };
            let _ = writeln!(s.live, "{prefix} {msg}");
            let _ = s.live.flush();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock only interrupts a write; the data stays usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn color_for(name: &str) -> u8 {
    let mut h = DefaultHasher::new();
    name.hash(&mut h);
    [32, 33, 34, 35, 36, 92, 93, 94, 95, 96][(h.finish() % 10) as usize]
}

/// `2026-11-26T05:29:06Z` for now (UTC).
fn timestamp() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// The output of one instance: live lines prefixed by its name, its own log file and
/// `kitchen.log`. Cheap to clone.
#[derive(Clone)]
pub struct InstanceOutput {
    reporter: Reporter,
    instance: String,
    log: Option<Arc<Mutex<File>>>,
}

impl std::fmt::Debug for InstanceOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceOutput")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl InstanceOutput {
    /// The instance's name.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Writes one line at `level`.
    pub fn log(&self, level: Level, msg: &str) {
        if let Some(f) = &self.log {
            let mut f = lock(f);
            let _ = writeln!(f, "[{}] {} {msg}", timestamp(), level.tag());
        }
        self.reporter.emit(&self.instance, level, msg);
    }

    /// A test-kitchen style banner (`-----> Creating <name>...`).
    pub fn banner(&self, msg: &str) {
        self.log(Level::Info, &format!("-----> {msg}"));
    }

    /// An informational line.
    pub fn info(&self, msg: &str) {
        self.log(Level::Info, msg);
    }

    /// A debug line (commands run, uploads).
    pub fn debug(&self, msg: &str) {
        self.log(Level::Debug, msg);
    }

    /// A warning.
    pub fn warn(&self, msg: &str) {
        self.log(Level::Warn, msg);
    }

    /// An error line.
    pub fn error(&self, msg: &str) {
        self.log(Level::Error, msg);
    }
}

impl OutputSink for InstanceOutput {
    fn line(&self, _stream: OutputStream, line: &str) {
        self.log(Level::Info, &format!("       {line}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_are_prefixed_filtered_by_level_and_logged() {
        let dir = tempfile::tempdir().unwrap();
        let buf = Buf::default();
        let rep = Reporter::new(dir.path(), Box::new(buf.clone()), Level::Info, false).unwrap();
        let out = rep.instance("default-busybox").unwrap();
        out.banner("Creating <default-busybox>...");
        out.debug("exec: true");
        out.line(OutputStream::Stdout, "hello");
        let live = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            live,
            "[default-busybox] -----> Creating <default-busybox>...\n[default-busybox]        hello\n"
        );
        let log = fs::read_to_string(dir.path().join(".kitchen/logs/default-busybox.log")).unwrap();
        assert!(log.contains("DEBUG exec: true"), "{log}");
        assert!(log.contains("hello"), "{log}");
        let klog = fs::read_to_string(dir.path().join(".kitchen/logs/kitchen.log")).unwrap();
        assert!(klog.contains("default-busybox: exec: true"), "{klog}");
    }

    #[test]
    fn timestamp_is_iso_utc() {
        let t = timestamp();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z'), "{t}");
    }
}
