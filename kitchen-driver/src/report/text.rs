//! The text output: test-kitchen's `----->` lines, each prefixed by its instance, CI groups
//! around each step, and the closing summary.
//!
//! [`Renderer`] turns events into [`Line`]s (the wording, shared with the log files);
//! [`TextReporter`] decides what reaches stdout: the level filter, colour, GitHub/GitLab
//! markers, `--failure-output final` and the summary.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::time::SystemTime;

use super::ci::CiKind;
use super::live::LiveDisplay;
use super::summary::SummaryBuilder;
use crate::error::Result;
use crate::events::{Event, InstanceId, Level, Outcome, OutputStream, Reporter, Timestamp};
use crate::lifecycle::Action;

/// One rendered line: what it says, whose it is, and how important.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The instance, if the line is about one.
    pub instance: Option<InstanceId>,
    /// Its level (filtered by `-l`).
    pub level: Level,
    /// The stream of the output line it renders ([`OutputStream::Info`] for banners).
    pub stream: OutputStream,
    /// The words, without the instance prefix.
    pub text: String,
}

impl Line {
    fn of(instance: &InstanceId, level: Level, text: impl Into<String>) -> Self {
        Self {
            instance: Some(instance.clone()),
            level,
            stream: OutputStream::Info,
            text: text.into(),
        }
    }
}

#[derive(Debug, Default)]
struct InstanceProgress {
    cleanup_shown: bool,
    testing_shown: bool,
    failure_shown: bool,
}

/// Turns events into test-kitchen's wording. Keeps what it needs across events (the
/// command, which banners each instance has shown).
#[derive(Debug, Default)]
pub struct Renderer {
    command: String,
    /// The program that runs, for the closing line (`kitchen-driver`, `ecs-runner`).
    program: String,
    instances: HashMap<String, InstanceProgress>,
}

impl Renderer {
    /// The lines `event` shows (often none).
    pub fn render(&mut self, event: &Event) -> Vec<Line> {
        match event {
            Event::RunStarted(e) => {
                self.command = e.command.clone();
                self.program = e.program();
                Vec::new()
            }
            Event::InstanceStarted(e) if self.command == "exec" => {
                vec![Line::of(
                    &e.instance,
                    Level::Info,
                    format!("-----> Execute command on {}.", e.instance.name),
                )]
            }
            Event::StepStarted(e) => {
                let name = &e.instance.name;
                let mut lines = Vec::new();
                let test = self.command == "test";
                let progress = self.instances.entry(name.clone()).or_default();
                if test && !progress.cleanup_shown {
                    progress.cleanup_shown = true;
                    lines.push(Line::of(
                        &e.instance,
                        Level::Info,
                        format!("-----> Cleaning up any prior instances of <{name}>"),
                    ));
                } else if test && !progress.testing_shown && e.action != Action::Destroy {
                    progress.testing_shown = true;
                    lines.push(Line::of(
                        &e.instance,
                        Level::Info,
                        format!("-----> Testing <{name}>"),
                    ));
                }
                lines.push(Line::of(
                    &e.instance,
                    Level::Info,
                    format!("-----> {} <{name}>...", e.action.verb()),
                ));
                lines
            }
            Event::StepFinished(e) => match (&e.outcome, &e.reason) {
                (Outcome::Passed, _) => vec![Line::of(
                    &e.instance,
                    Level::Info,
                    format!(
                        "Finished {} <{}> {}.",
                        e.action.verb().to_lowercase(),
                        e.instance.name,
                        duration(e.duration)
                    ),
                )],
                (outcome, Some(reason)) if outcome.is_failure() => {
                    let progress = self.instances.entry(e.instance.name.clone()).or_default();
                    if progress.failure_shown {
                        return Vec::new();
                    }
                    progress.failure_shown = true;
                    failure_lines(&e.instance, reason)
                }
                _ => Vec::new(),
            },
            Event::HookStarted(e) => {
                let place = if e.local { "" } else { "remote " };
                vec![Line::of(
                    &e.instance,
                    Level::Info,
                    format!(
                        "Running {place}{} {} hook: {}",
                        e.phase, e.action, e.command
                    ),
                )]
            }
            Event::Output(o) => {
                let text = match o.stream {
                    OutputStream::Info => o.text.clone(),
                    _ => format!("       {}", o.text),
                };
                vec![Line {
                    instance: Some(o.instance.clone()),
                    level: o.level,
                    stream: o.stream,
                    text,
                }]
            }
            Event::Warning(w) => vec![Line {
                instance: w.instance.clone(),
                level: Level::Warn,
                stream: OutputStream::Info,
                text: w.text.clone(),
            }],
            Event::InstanceFinished(e) => {
                let progress = self.instances.entry(e.instance.name.clone()).or_default();
                match (&e.outcome, &e.reason) {
                    (outcome, Some(reason)) if outcome.is_failure() && !progress.failure_shown => {
                        progress.failure_shown = true;
                        failure_lines(&e.instance, reason)
                    }
                    (Outcome::Passed, _) if self.command == "test" => vec![Line::of(
                        &e.instance,
                        Level::Info,
                        format!(
                            "Finished testing <{}> {}.",
                            e.instance.name,
                            duration(e.duration)
                        ),
                    )],
                    _ => Vec::new(),
                }
            }
            Event::RunFinished(e) if e.exit_code == 0 => vec![Line {
                instance: None,
                level: Level::Info,
                stream: OutputStream::Info,
                text: format!(
                    "-----> {} is finished. {}",
                    if self.program.is_empty() {
                        "kitchen-driver"
                    } else {
                        &self.program
                    },
                    duration(e.duration)
                ),
            }],
            _ => Vec::new(),
        }
    }
}

/// A duration as test-kitchen prints it (`Kitchen::Util.duration`): `(0m1.23s)`.
pub fn duration(d: std::time::Duration) -> String {
    let total = d.as_secs_f64();
    let minutes = (total / 60.0).floor();
    format!("({}m{:.2}s)", minutes as u64, total - minutes * 60.0)
}

fn failure_lines(instance: &InstanceId, reason: &crate::events::Reason) -> Vec<Line> {
    let mut lines = vec![Line::of(
        instance,
        Level::Error,
        format!(">>>>>> {}", reason.message),
    )];
    if let Some(detail) = &reason.detail {
        lines.extend(
            detail
                .lines()
                .map(|l| Line::of(instance, Level::Error, format!(">>>>>>     {l}"))),
        );
    }
    lines
}

/// `--failure-output`: when a failed instance's output is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FailureOutput {
    /// As it happens (interleaved with other instances when they run at once).
    #[default]
    Immediate,
    /// As it happens, and again, gathered under the instance's name, before the summary.
    Final,
}

impl std::str::FromStr for FailureOutput {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "immediate" => Ok(FailureOutput::Immediate),
            "final" => Ok(FailureOutput::Final),
            other => Err(format!(
                "--failure-output must be immediate or final, not `{other}`"
            )),
        }
    }
}

/// How the text reporter writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct TextOptions {
    /// Lines below this level are not shown.
    pub level: Level,
    /// ANSI colours (instance prefixes, failures, the summary's results).
    pub color: bool,
    /// Markers for this CI's log viewer: each step's output in a group, failures annotated.
    pub ci: Option<CiKind>,
    /// When a failed instance's output is shown.
    pub failure_output: FailureOutput,
    /// End with the summary table and line.
    pub summary: bool,
}

enum Target {
    Plain(Box<dyn Write + Send>),
    Live(LiveDisplay),
}

impl Target {
    fn println(&mut self, line: &str) {
        match self {
            Target::Plain(w) => {
                let _ = writeln!(w, "{line}");
                let _ = w.flush();
            }
            Target::Live(live) => live.println(line),
        }
    }
}

/// An open CI group: the step's banner, when it started, and the lines seen since.
struct Block {
    title: String,
    opened: SystemTime,
    lines: Vec<String>,
}

/// Renders events as lines on stdout (see the module documentation).
pub struct TextReporter {
    renderer: Renderer,
    opts: TextOptions,
    target: Target,
    summary: SummaryBuilder,
    blocks: HashMap<String, Block>,
    blocks_opened: usize,
    captured: HashMap<String, Vec<String>>,
}

impl std::fmt::Debug for TextReporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextReporter")
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl TextReporter {
    /// Plain lines to `out` (a pipe, a file, a test's buffer): no cursor movement, and colour
    /// only if `opts.color`.
    pub fn plain(out: Box<dyn Write + Send>, opts: TextOptions) -> Self {
        Self::with_target(Target::Plain(out), opts)
    }

    /// Lines scrolling above `live`'s per-instance status lines (a terminal).
    pub fn live(live: LiveDisplay, opts: TextOptions) -> Self {
        Self::with_target(Target::Live(live), opts)
    }

    fn with_target(target: Target, opts: TextOptions) -> Self {
        Self {
            renderer: Renderer::default(),
            opts,
            target,
            summary: SummaryBuilder::default(),
            blocks: HashMap::new(),
            blocks_opened: 0,
            captured: HashMap::new(),
        }
    }

    fn format(&self, line: &Line) -> String {
        let text = if self.opts.color && line.level == Level::Error {
            format!("\x1b[31m{}\x1b[0m", line.text)
        } else {
            line.text.clone()
        };
        match &line.instance {
            Some(id) if self.opts.color => {
                format!("\x1b[{}m[{}]\x1b[0m {text}", color_for(&id.name), id.name)
            }
            Some(id) => format!("[{}] {text}", id.name),
            None => text,
        }
    }

    fn emit(&mut self, instance: Option<&str>, formatted: String) {
        if let Some(name) = instance
            && let Some(block) = self.blocks.get_mut(name)
        {
            block.lines.push(formatted);
            return;
        }
        self.target.println(&formatted);
    }

    fn open_block(&mut self, instance: &str, title: String, at: Timestamp) {
        self.blocks.insert(
            instance.to_string(),
            Block {
                title,
                opened: at.into(),
                lines: Vec::new(),
            },
        );
    }

    /// Prints a step's block at once, when the step ends: with several instances running,
    /// their lines would otherwise interleave inside each other's groups.
    fn close_block(&mut self, ci: CiKind, instance: &str, passed: bool, at: Timestamp) {
        let Some(block) = self.blocks.remove(instance) else {
            return;
        };
        self.blocks_opened += 1;
        let id = format!("{instance}-{}", self.blocks_opened);
        self.target
            .println(&ci.open(&id, &block.title, passed, block.opened));
        for l in &block.lines {
            self.target.println(l);
        }
        self.target.println(&ci.close(&id, at.into()));
    }

    fn print_final_failure_output(&mut self) {
        let summary = self.summary.summary();
        for row in summary
            .rows
            .iter()
            .filter(|r| r.outcome.is_some_and(|o| o.is_failure()))
        {
            let Some(lines) = self.captured.remove(&row.instance.name) else {
                continue;
            };
            let header = format!(
                "-----> Output of <{}> ({})",
                row.instance.name,
                row.result()
            );
            self.target.println(&header);
            for l in lines {
                self.target.println(&l);
            }
        }
    }
}

impl Reporter for TextReporter {
    fn report(&mut self, event: &Event) {
        self.summary.observe(event);
        if let Target::Live(live) = &mut self.target {
            live.on_event(event);
        }
        let lines = self.renderer.render(event);
        let ci = self.opts.ci;
        if let (Some(_), Event::StepStarted(e)) = (ci, event) {
            // The banner becomes the group's title; the step's lines go inside the group.
            let title = lines.last().map(|l| self.format(l)).unwrap_or_default();
            for l in &lines[..lines.len().saturating_sub(1)] {
                let formatted = self.format(l);
                self.emit(Some(&e.instance.name), formatted);
            }
            self.open_block(&e.instance.name, title, e.at);
            return;
        }
        for line in &lines {
            if line.level < self.opts.level {
                continue;
            }
            let formatted = self.format(line);
            let name = line.instance.as_ref().map(|i| i.name.clone());
            if self.opts.failure_output == FailureOutput::Final
                && let Some(name) = &name
            {
                self.captured
                    .entry(name.clone())
                    .or_default()
                    .push(formatted.clone());
            }
            self.emit(name.as_deref(), formatted);
        }
        match event {
            Event::StepFinished(e) => {
                if let Some(ci) = ci {
                    self.close_block(ci, &e.instance.name, e.outcome.is_passed(), e.at);
                    if e.outcome.is_failure()
                        && let Some(reason) = &e.reason
                    {
                        let title = format!("{}: {} {}", e.instance.name, e.action, e.outcome);
                        if let Some(a) = ci.error_annotation(&title, &reason.message) {
                            self.target.println(&a);
                        }
                    }
                }
            }
            Event::InstanceFinished(e) => {
                if let Some(ci) = ci {
                    self.close_block(ci, &e.instance.name, e.outcome.is_passed(), e.at);
                }
            }
            Event::RunFinished(_) => {
                if self.opts.failure_output == FailureOutput::Final {
                    self.print_final_failure_output();
                }
                if self.opts.summary {
                    let summary = self.summary.summary();
                    for l in summary.table(self.opts.color).lines() {
                        self.target.println(l);
                    }
                    self.target.println(&summary.line());
                }
            }
            _ => {}
        }
    }

    fn finish(&mut self) -> Result<()> {
        if let Target::Live(live) = &mut self.target {
            live.clear();
        }
        Ok(())
    }
}

fn color_for(name: &str) -> u8 {
    let mut h = DefaultHasher::new();
    name.hash(&mut h);
    [32, 33, 34, 35, 36, 92, 93, 94, 95, 96][(h.finish() % 10) as usize]
}

#[cfg(test)]
mod duration_tests {
    use std::time::Duration;

    #[test]
    fn durations_read_as_test_kitchen_prints_them() {
        assert_eq!(super::duration(Duration::from_millis(0)), "(0m0.00s)");
        assert_eq!(super::duration(Duration::from_millis(1234)), "(0m1.23s)");
        assert_eq!(super::duration(Duration::from_millis(61_500)), "(1m1.50s)");
        assert_eq!(super::duration(Duration::from_secs(3600)), "(60m0.00s)");
    }
}
