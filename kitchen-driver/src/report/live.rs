//! The live display on a terminal: one status line per running instance (its action and
//! how long it has been at it) below the scrolling output, drawn by indicatif.

use std::collections::HashMap;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::events::Event;

/// The status lines. Output lines go through [`LiveDisplay::println`], which prints them
/// above the status lines (indicatif's `MultiProgress::println`).
pub struct LiveDisplay {
    multi: MultiProgress,
    bars: HashMap<String, ProgressBar>,
    style: ProgressStyle,
}

impl std::fmt::Debug for LiveDisplay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveDisplay")
            .field("running", &self.bars.len())
            .finish_non_exhaustive()
    }
}

impl LiveDisplay {
    /// A display on stdout (which must be a terminal: indicatif draws nothing otherwise).
    pub fn stdout(color: bool) -> Self {
        Self::new(ProgressDrawTarget::stdout(), color)
    }

    /// A display on `target`.
    pub fn new(target: ProgressDrawTarget, color: bool) -> Self {
        let template = if color {
            "{spinner:.cyan} {prefix:.bold} {msg} [{elapsed}]"
        } else {
            "{spinner} {prefix} {msg} [{elapsed}]"
        };
        let style = ProgressStyle::with_template(template)
            // The template is a constant that parses: a failure here is a typo caught by the
            // tests, not a runtime condition; fall back to the default style anyway.
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        Self {
            multi: MultiProgress::with_draw_target(target),
            bars: HashMap::new(),
            style,
        }
    }

    /// Prints a line above the status lines.
    pub fn println(&self, line: &str) {
        let _ = self.multi.println(line);
    }

    /// Updates the status lines for `event`.
    pub fn on_event(&mut self, event: &Event) {
        match event {
            Event::StepStarted(e) => {
                let bar = self.bars.entry(e.instance.name.clone()).or_insert_with(|| {
                    let bar = self.multi.add(ProgressBar::new_spinner());
                    bar.set_style(self.style.clone());
                    bar.set_prefix(e.instance.name.clone());
                    bar.enable_steady_tick(Duration::from_millis(200));
                    bar
                });
                bar.reset_elapsed();
                bar.set_message(e.action.verb().to_lowercase());
            }
            Event::InstanceFinished(e) => {
                if let Some(bar) = self.bars.remove(&e.instance.name) {
                    bar.finish_and_clear();
                    self.multi.remove(&bar);
                }
            }
            _ => {}
        }
    }

    /// Removes every status line.
    pub fn clear(&mut self) {
        for (_, bar) in self.bars.drain() {
            bar.finish_and_clear();
        }
        let _ = self.multi.clear();
    }
}
