//! Reporters: each renders the run's [`Event`](crate::events::Event)s one way.
//!
//! The runner emits events into an [`crate::events::EventBus`]; the CLI subscribes
//! the reporters a run asks for ([`Reports::subscribe`]):
//!
//! | Reporter | Output | Module |
//! |---|---|---|
//! | [`TextReporter`] | test-kitchen's `----->` lines prefixed by instance, CI groups, the closing summary | [`text`] |
//! | [`LiveDisplay`] (inside the text reporter, on a terminal) | one line per running instance below the scrolling output | [`live`] |
//! | [`LogFiles`] | `.kitchen/logs/kitchen.log` and `<instance>.log` | [`logs`] |
//! | [`JsonLines`] | `--format json`: one JSON object per event on stdout | [`json`] |
//! | [`JunitReporter`] | `--junit PATH` | [`junit`] |
//! | [`MarkdownSummary`] | `--summary-md PATH`, `$GITHUB_STEP_SUMMARY` | [`summary`] |
//!
//! Everything a reporter writes is a pure function of the events (the renderers are unit- and
//! snapshot-tested from recorded events); only the writing is IO. `ecs-runner` subscribes the
//! same reporters to its own bus.
//!
//! The emitting side ([`InstanceOutput`], [`OutputSink`], [`LineSplitter`]) lives in
//! [`crate::events`] and is re-exported here for the drivers and plugins that write lines.

pub mod ci;
pub mod json;
pub mod junit;
pub mod live;
pub mod logs;
pub mod summary;
pub mod text;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

pub use crate::events::{InstanceOutput, Level, LineSplitter, NullSink, OutputSink, OutputStream};
pub use ci::CiKind;
pub use json::JsonLines;
pub use junit::JunitReporter;
pub use live::LiveDisplay;
pub use logs::LogFiles;
pub use summary::{MarkdownSummary, Summary};
pub use text::{FailureOutput, TextOptions, TextReporter};

use crate::error::Result;
use crate::events::EventBus;

/// `--format`: what stdout carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Format {
    /// Lines for people (and the closing summary).
    #[default]
    Text,
    /// One JSON object per event ([`JsonLines`]).
    Json,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "text" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            other => Err(format!("--format must be text or json, not `{other}`")),
        }
    }
}

/// `--color`: whether to colour the text output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ColorChoice {
    /// On a terminal, unless `NO_COLOR` is set or `TERM` is `dumb`.
    #[default]
    Auto,
    /// Always (even into a pipe).
    Always,
    /// Never.
    Never,
}

impl std::str::FromStr for ColorChoice {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(ColorChoice::Auto),
            "always" => Ok(ColorChoice::Always),
            "never" => Ok(ColorChoice::Never),
            other => Err(format!(
                "--color must be auto, always or never, not `{other}`"
            )),
        }
    }
}

/// What the environment says about the output (read once, so the decisions are pure).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Environment {
    /// stdout is a terminal.
    pub stdout_is_terminal: bool,
    /// `NO_COLOR` is set to a non-empty value (<https://no-color.org>).
    pub no_color: bool,
    /// `TERM` is `dumb`.
    pub dumb_terminal: bool,
    /// `CI` is set (to anything but `false`/`0`/empty).
    pub ci: bool,
    /// Which CI, if one we write markers for.
    pub ci_kind: Option<CiKind>,
    /// `$GITHUB_STEP_SUMMARY`, when set.
    pub github_step_summary: Option<PathBuf>,
}

impl Environment {
    /// Reads this process's environment and stdout.
    pub fn from_process() -> Self {
        Self::from_vars(std::io::stdout().is_terminal(), |k| std::env::var(k).ok())
    }

    /// The same from `var` (for tests).
    pub fn from_vars(stdout_is_terminal: bool, var: impl Fn(&str) -> Option<String>) -> Self {
        let set = |k: &str| var(k).is_some_and(|v| !v.is_empty());
        let truthy = |k: &str| var(k).is_some_and(|v| !matches!(v.as_str(), "" | "0" | "false"));
        Self {
            stdout_is_terminal,
            no_color: set("NO_COLOR"),
            dumb_terminal: var("TERM").is_some_and(|t| t == "dumb"),
            ci: truthy("CI"),
            ci_kind: CiKind::detect(&var),
            github_step_summary: var("GITHUB_STEP_SUMMARY")
                .filter(|p| !p.is_empty())
                .map(PathBuf::from),
        }
    }

    /// Whether to colour, given `--color`.
    pub fn color(&self, choice: ColorChoice) -> bool {
        match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => self.stdout_is_terminal && !self.no_color && !self.dumb_terminal,
        }
    }

    /// Whether to show the live display: a real terminal, not CI.
    pub fn live(&self) -> bool {
        self.stdout_is_terminal && !self.ci && !self.dumb_terminal
    }
}

/// The reports a run asked for (the CLI's flags).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Reports {
    /// What stdout carries.
    pub format: Format,
    /// Live lines at this level and above.
    pub level: Level,
    /// `--color`.
    pub color: ColorChoice,
    /// `--failure-output`.
    pub failure_output: FailureOutput,
    /// `--junit PATH`.
    pub junit: Option<PathBuf>,
    /// `--summary-md PATH` (else `$GITHUB_STEP_SUMMARY`, appended to).
    pub summary_md: Option<PathBuf>,
}

impl Reports {
    /// Checks before the run that the report files can be written (creating missing parent
    /// directories), so a long run never ends in an unwritable path.
    ///
    /// # Errors
    /// [`crate::Error::ReportPath`] naming the path that cannot be written.
    pub fn prepare(&self, env: &Environment) -> Result<()> {
        if let Some(path) = &self.junit {
            check_writable(path)?;
        }
        if let Some((path, _)) = self.markdown_target(env) {
            check_writable(&path)?;
        }
        Ok(())
    }

    fn markdown_target(&self, env: &Environment) -> Option<(PathBuf, bool)> {
        match (&self.summary_md, &env.github_step_summary) {
            (Some(p), _) => Some((p.clone(), false)),
            (None, Some(p)) => Some((p.clone(), true)),
            (None, None) => None,
        }
    }

    /// Subscribes to `bus` the reporters these options ask for, writing `.kitchen/logs/`
    /// under `kitchen_root` and the text or JSON lines to stdout.
    ///
    /// # Errors
    /// [`crate::Error::Io`] when the log directory cannot be created.
    pub fn subscribe(&self, bus: &EventBus, kitchen_root: &Path, env: &Environment) -> Result<()> {
        bus.subscribe(LogFiles::new(kitchen_root)?);
        match self.format {
            Format::Json => bus.subscribe(JsonLines::new(Box::new(std::io::stdout()))),
            Format::Text => {
                let opts = TextOptions {
                    level: self.level,
                    color: env.color(self.color),
                    ci: env.ci_kind,
                    failure_output: self.failure_output,
                    summary: true,
                };
                let reporter = if env.live() {
                    TextReporter::live(LiveDisplay::stdout(opts.color), opts)
                } else {
                    TextReporter::plain(Box::new(std::io::stdout()), opts)
                };
                bus.subscribe(reporter);
            }
        }
        if let Some(path) = &self.junit {
            bus.subscribe(JunitReporter::new(path.clone()));
        }
        if let Some((path, append)) = self.markdown_target(env) {
            bus.subscribe(MarkdownSummary::new(path, append));
        }
        Ok(())
    }
}

/// Creates `path`'s parent directories and checks `path` can be opened for writing (leaving
/// an existing file's content alone).
///
/// # Errors
/// [`crate::Error::ReportPath`] naming the directory or file.
pub fn check_writable(path: &Path) -> Result<()> {
    use crate::error::Error;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| Error::ReportPath {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map(drop)
        .map_err(|source| Error::ReportPath {
            path: path.to_path_buf(),
            source,
        })
}

/// Writes `content` to `path` through a temporary file and a rename, so a reader never sees
/// half a report.
///
/// # Errors
/// [`crate::Error::Io`] naming the path.
pub(crate) fn write_atomically(path: &Path, content: &str) -> Result<()> {
    use crate::error::Error;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io("creating the report directory", dir, e))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .map_err(|e| Error::io("creating a temporary file in", dir, e))?;
    std::io::Write::write_all(&mut tmp, content.as_bytes())
        .map_err(|e| Error::io("writing", tmp.path().to_path_buf(), e))?;
    tmp.persist(path)
        .map_err(|e| Error::io("writing the report", path, e.error))?;
    Ok(())
}

/// `1.234s`, `2m03.4s`, `1h02m03s`: a duration as the text output and summary show it.
pub fn format_duration(d: std::time::Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else if secs < 3600.0 {
        format!("{}m{:04.1}s", (secs / 60.0) as u64, secs % 60.0)
    } else {
        let s = d.as_secs();
        format!("{}h{:02}m{:02}s", s / 3600, (s / 60) % 60, s % 60)
    }
}

/// `12.0 MiB`: a byte count for people.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests;
