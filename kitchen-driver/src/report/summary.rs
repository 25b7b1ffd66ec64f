//! The closing summary: one row per instance (last action, result, duration, peak memory,
//! the reason of a failure) and the line
//! `Summary [<duration>] <N> instances: <P> passed, <F> failed[, <S> skipped]`, as a text
//! table for stdout and as Markdown for `$GITHUB_STEP_SUMMARY` / `--summary-md`.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use super::{format_bytes, format_duration};
use crate::error::{Error, Result};
use crate::events::{Counts, Event, InstanceId, Outcome, Reporter};
use crate::lifecycle::Action;

/// One instance in the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SummaryRow {
    /// The instance.
    pub instance: InstanceId,
    /// The action that failed, else the last action attempted.
    pub last_action: Option<Action>,
    /// How it ended; `None` if it never finished (the run was cut short).
    pub outcome: Option<Outcome>,
    /// How long its task ran.
    pub duration: Option<Duration>,
    /// The highest memory use sampled.
    pub peak_memory_bytes: Option<u64>,
    /// The first line of the reason it did not pass.
    pub reason: Option<String>,
}

impl SummaryRow {
    /// `passed`, `failed`, `errored`, `skipped` (cancelled) or `not run`.
    pub fn result(&self) -> &'static str {
        match self.outcome {
            Some(Outcome::Cancelled { .. }) => "skipped",
            Some(o) => o.as_str(),
            None => "not run",
        }
    }
}

/// What the summary says about a run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Summary {
    /// One row per instance, in the order the run listed them.
    pub rows: Vec<SummaryRow>,
    /// How long the run took (known once it finished).
    pub duration: Option<Duration>,
}

impl Summary {
    /// The instances by outcome (a row that never finished counts as cancelled).
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for r in &self.rows {
            c.add(r.outcome.unwrap_or(Outcome::Cancelled {
                cause: crate::events::CancelReason::Interrupted,
            }));
        }
        c
    }

    /// `Summary [12.3s] 4 instances: 1 passed, 2 failed, 1 skipped` (failed counts test
    /// failures and errors; skipped counts cancelled instances, shown only when some were).
    pub fn line(&self) -> String {
        let c = self.counts();
        let duration = self
            .duration
            .map(format_duration)
            .unwrap_or_else(|| "?".into());
        let noun = if c.instances == 1 {
            "instance"
        } else {
            "instances"
        };
        let mut line = format!(
            "Summary [{duration}] {} {noun}: {} passed, {} failed",
            c.instances,
            c.passed,
            c.failed + c.errored
        );
        if c.cancelled > 0 {
            line.push_str(&format!(", {} skipped", c.cancelled));
        }
        line
    }

    fn cells(&self) -> Vec<[String; 6]> {
        self.rows
            .iter()
            .map(|r| {
                [
                    r.instance.name.clone(),
                    r.last_action.map(|a| a.to_string()).unwrap_or_default(),
                    r.result().to_string(),
                    r.duration.map(format_duration).unwrap_or_default(),
                    r.peak_memory_bytes.map(format_bytes).unwrap_or_default(),
                    r.reason.clone().unwrap_or_default(),
                ]
            })
            .collect()
    }

    /// The table for stdout, columns aligned; with `color`, results in green or red.
    pub fn table(&self, color: bool) -> String {
        const HEADER: [&str; 6] = [
            "Instance",
            "Last Action",
            "Result",
            "Duration",
            "Peak Memory",
            "Reason",
        ];
        let cells = self.cells();
        let mut widths = HEADER.map(str::len);
        for row in &cells {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let render = |row: [&str; 6], result_color: Option<&str>| {
            let mut out = String::new();
            for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
                if i == 5 {
                    out.push_str(cell);
                    break;
                }
                let pad = " ".repeat(w - cell.chars().count());
                match (i, result_color) {
                    (2, Some(c)) => out.push_str(&format!("\x1b[{c}m{cell}\x1b[0m{pad}  ")),
                    _ => out.push_str(&format!("{cell}{pad}  ")),
                }
            }
            out.trim_end().to_string()
        };
        let mut out = render(HEADER, None);
        out.push('\n');
        for (row, r) in cells.iter().zip(&self.rows) {
            let c = match r.outcome {
                _ if !color => None,
                Some(Outcome::Passed) => Some("32"),
                Some(o) if o.is_failure() => Some("31"),
                _ => Some("33"),
            };
            out.push_str(&render(row.each_ref().map(String::as_str), c));
            out.push('\n');
        }
        out
    }

    /// The table in GitHub-flavoured Markdown, headed by the summary line.
    pub fn markdown(&self) -> String {
        let mut out = format!("### kitchen-driver\n\n{}\n\n", self.line());
        out.push_str("| Instance | Last action | Result | Duration | Peak memory | Reason |\n");
        out.push_str("|---|---|---|---|---|---|\n");
        for row in self.cells() {
            let escaped = row.map(|c| c.replace('|', "\\|"));
            let [instance, action, result, duration, memory, reason] = escaped;
            let result = match result.as_str() {
                "passed" => format!(":white_check_mark: {result}"),
                "failed" | "errored" => format!(":x: {result}"),
                _ => format!(":fast_forward: {result}"),
            };
            out.push_str(&format!(
                "| `{instance}` | {action} | {result} | {duration} | {memory} | {reason} |\n"
            ));
        }
        out
    }
}

/// Builds a [`Summary`] from events as they arrive.
#[derive(Debug, Default, Clone)]
pub struct SummaryBuilder {
    summary: Summary,
    index: HashMap<String, usize>,
    failed: std::collections::HashSet<String>,
}

impl SummaryBuilder {
    /// Takes one event into account.
    pub fn observe(&mut self, event: &Event) {
        match event {
            Event::RunStarted(e) => {
                for i in &e.instances {
                    self.row(i);
                }
            }
            Event::StepStarted(e) if !self.failed.contains(&e.instance.name) => {
                self.row(&e.instance).last_action = Some(e.action);
            }
            Event::StepFinished(e) if e.outcome.is_failure() => {
                // Keep the action that failed (a `--destroy always` destroy runs after it).
                self.failed.insert(e.instance.name.clone());
                self.row(&e.instance).last_action = Some(e.action);
            }
            Event::ResourceSample(e) => {
                let row = self.row(&e.instance);
                if let Some(m) = e.peak_memory_bytes {
                    row.peak_memory_bytes = Some(row.peak_memory_bytes.unwrap_or(0).max(m));
                }
            }
            Event::InstanceFinished(e) => {
                let row = self.row(&e.instance);
                row.outcome = Some(e.outcome);
                row.duration = Some(e.duration);
                row.last_action = row.last_action.or(e.last_action);
                row.reason = e.reason.as_ref().map(|r| match e.outcome {
                    Outcome::Cancelled { cause } => format!("{cause}"),
                    _ => r.message.clone(),
                });
            }
            Event::RunFinished(e) => self.summary.duration = Some(e.duration),
            _ => {}
        }
    }

    fn row(&mut self, id: &InstanceId) -> &mut SummaryRow {
        let i = *self.index.entry(id.name.clone()).or_insert_with(|| {
            self.summary.rows.push(SummaryRow {
                instance: id.clone(),
                last_action: None,
                outcome: None,
                duration: None,
                peak_memory_bytes: None,
                reason: None,
            });
            self.summary.rows.len() - 1
        });
        &mut self.summary.rows[i]
    }

    /// The summary so far.
    pub fn summary(&self) -> Summary {
        self.summary.clone()
    }

    /// The summary of recorded events.
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a Event>) -> Summary {
        let mut b = Self::default();
        for e in events {
            b.observe(e);
        }
        b.summary()
    }
}

/// Writes the Markdown summary when the run ends: appended to `$GITHUB_STEP_SUMMARY` (as
/// GitHub asks), or replacing the file `--summary-md` names.
#[derive(Debug)]
pub struct MarkdownSummary {
    path: PathBuf,
    append: bool,
    builder: SummaryBuilder,
}

impl MarkdownSummary {
    /// A reporter writing to `path`, appending when `append`.
    pub fn new(path: PathBuf, append: bool) -> Self {
        Self {
            path,
            append,
            builder: SummaryBuilder::default(),
        }
    }
}

impl Reporter for MarkdownSummary {
    fn report(&mut self, event: &Event) {
        self.builder.observe(event);
    }

    fn finish(&mut self) -> Result<()> {
        let markdown = self.builder.summary().markdown();
        if self.append {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(|e| Error::io("opening the Markdown summary", &self.path, e))?;
            f.write_all(markdown.as_bytes())
                .map_err(|e| Error::io("writing the Markdown summary", &self.path, e))
        } else {
            super::write_atomically(&self.path, &markdown)
        }
    }
}
