//! Reading what a task printed: the entrypoint's markers, and the TAP between them (pure).
//!
//! The entrypoint ([`crate::bundle`]) prints lines starting with [`MARKER`]:
//! `phase converge|verify`, `end converge|verify CODE`, `tap FILE`, `end tap FILE CODE` and
//! `done CODE`. [`Transcript`] consumes the task's lines in order (from Docker's log API or
//! CloudWatch Logs), tells the caller which lines to show, and turns each bats file's TAP into
//! cases with kitchen-driver's own parser, so a case means the same here as there.

use kitchen_driver::verifier::tap;
use kitchen_driver::verifier::{CaseOutcome, CaseResult};

/// The prefix of every marker line.
pub const MARKER: &str = "##kitchen-ecs##";

/// A phase of the task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Phase {
    /// The provisioner.
    Converge,
    /// The verifier.
    Verify,
}

impl Phase {
    /// `converge` or `verify`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Converge => "converge",
            Phase::Verify => "verify",
        }
    }
}

/// What one line was.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Line {
    /// Output to show as is.
    Output(String),
    /// A phase started.
    PhaseStarted(Phase),
    /// A phase ended with this exit code.
    PhaseFinished(Phase, i32),
    /// A bats file finished; its cases.
    Cases(Vec<CaseResult>),
}

/// The state of one task's output.
#[derive(Debug, Default, Clone)]
pub struct Transcript {
    /// Exit code of converge, once it ended.
    pub converge: Option<i32>,
    /// Exit code of verify, once it ended.
    pub verify: Option<i32>,
    /// The entrypoint's final code, once it printed it.
    pub done: Option<i32>,
    /// Every case so far.
    pub cases: Vec<CaseResult>,
    /// The phase running now.
    pub phase: Option<Phase>,
    tap: Option<(String, String)>,
    timing: bool,
}

impl Transcript {
    /// A transcript whose bats ran with `--timing` when `timing` is true.
    pub fn new(timing: bool) -> Self {
        Self {
            timing,
            ..Self::default()
        }
    }

    /// Consumes one line.
    pub fn push(&mut self, line: &str) -> Line {
        let Some(rest) = line.strip_prefix(MARKER).map(str::trim) else {
            if let Some((_, text)) = self.tap.as_mut() {
                text.push_str(line);
                text.push('\n');
            }
            return Line::Output(line.to_owned());
        };
        let words: Vec<&str> = rest.split_whitespace().collect();
        let phase = |w: &str| match w {
            "converge" => Some(Phase::Converge),
            "verify" => Some(Phase::Verify),
            _ => None,
        };
        let code = |w: Option<&&str>| w.and_then(|c| c.parse::<i32>().ok());
        match words.as_slice() {
            ["phase", p] if phase(p).is_some() => {
                self.phase = phase(p);
                Line::PhaseStarted(phase(p).unwrap_or(Phase::Converge))
            }
            ["end", "tap", .., c] if self.tap.is_some() => {
                let code = c.parse::<i32>().unwrap_or(-1);
                let (file, text) = self.tap.take().unwrap_or_default();
                let cases = self.cases_of(&file, &text, code);
                self.cases.extend(cases.iter().cloned());
                Line::Cases(cases)
            }
            ["end", p, c] if phase(p).is_some() => {
                let code = c.parse().unwrap_or(-1);
                match phase(p) {
                    Some(Phase::Converge) => self.converge = Some(code),
                    _ => self.verify = Some(code),
                }
                self.phase = None;
                Line::PhaseFinished(phase(p).unwrap_or(Phase::Verify), code)
            }
            ["tap", file] => {
                self.tap = Some(((*file).to_owned(), String::new()));
                Line::Output(format!("bats {file}"))
            }
            ["done", ..] => {
                self.done = code(words.get(1));
                Line::Output(String::new())
            }
            _ => Line::Output(line.to_owned()),
        }
    }

    /// The cases of one bats file; a file that failed without a failing test (bats missing,
    /// a syntax error, a plan not met) gets a failing case of its own, as kitchen-driver's
    /// bats verifier fails verify for it.
    fn cases_of(&self, file: &str, text: &str, code: i32) -> Vec<CaseResult> {
        let report = tap::parse(text, self.timing);
        let mut cases: Vec<CaseResult> =
            report.tests.iter().map(|t| t.to_case(Some(file))).collect();
        let failed = cases.iter().any(|c| c.outcome == CaseOutcome::Failed);
        if !failed && (code != 0 || !report.passed()) {
            let why = report
                .problem()
                .unwrap_or_else(|| format!("bats exited with code {code}"));
            cases.push(
                CaseResult::new(file, CaseOutcome::Failed, format!("{why}\n{text}"))
                    .with_group(file),
            );
        }
        cases
    }

    /// Why the task failed its own work, when its transcript says so: converge or verify
    /// ended non-zero (`None` when both passed or the transcript is incomplete).
    pub fn failure(&self) -> Option<String> {
        if let Some(c) = self.converge.filter(|c| *c != 0) {
            return Some(format!("converge exited with code {c}"));
        }
        if let Some(c) = self.verify.filter(|c| *c != 0) {
            let failing: Vec<&str> = self
                .cases
                .iter()
                .filter(|c| c.outcome == CaseOutcome::Failed)
                .map(|c| c.name.as_str())
                .collect();
            return Some(if failing.is_empty() {
                format!("verify exited with code {c}")
            } else {
                format!("{} test(s) failed: {}", failing.len(), failing.join(", "))
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(t: &mut Transcript, text: &str) -> Vec<Line> {
        text.lines().map(|l| t.push(l)).collect()
    }

    #[test]
    fn phases_codes_and_bats_cases_are_read() {
        let mut t = Transcript::new(true);
        let lines = feed(
            &mut t,
            "##kitchen-ecs## phase converge\nhello\n##kitchen-ecs## end converge 0\n\
             ##kitchen-ecs## phase verify\n##kitchen-ecs## tap a.bats\n1..2\nok 1 works in 5ms\n\
             not ok 2 breaks in 7ms\n# (in test file a.bats, line 4)\n##kitchen-ecs## end tap a.bats 1\n\
             ##kitchen-ecs## end verify 1\n##kitchen-ecs## done 1\n",
        );
        assert_eq!(lines[0], Line::PhaseStarted(Phase::Converge));
        assert_eq!(lines[1], Line::Output("hello".into()));
        assert_eq!(lines[2], Line::PhaseFinished(Phase::Converge, 0));
        assert_eq!((t.converge, t.verify, t.done), (Some(0), Some(1), Some(1)));
        assert_eq!(t.cases.len(), 2);
        assert_eq!(t.cases[0].outcome, CaseOutcome::Passed);
        assert_eq!(
            t.cases[0].duration,
            Some(std::time::Duration::from_millis(5))
        );
        assert_eq!(t.cases[1].outcome, CaseOutcome::Failed);
        assert_eq!(t.cases[1].group.as_deref(), Some("a.bats"));
        assert_eq!(t.failure().unwrap(), "1 test(s) failed: breaks");
    }

    #[test]
    fn a_bats_file_that_fails_without_tests_is_a_failing_case() {
        let mut t = Transcript::new(false);
        feed(
            &mut t,
            "##kitchen-ecs## tap b.bats\nsh: bats: not found\n##kitchen-ecs## end tap b.bats 127\n",
        );
        assert_eq!(t.cases.len(), 1);
        assert_eq!(t.cases[0].name, "b.bats");
        assert!(
            t.cases[0].output.contains("bats: not found"),
            "{:?}",
            t.cases[0]
        );
    }

    #[test]
    fn a_failed_converge_is_the_failure() {
        let mut t = Transcript::new(false);
        feed(
            &mut t,
            "##kitchen-ecs## phase converge\n##kitchen-ecs## end converge 3\n##kitchen-ecs## done 3\n",
        );
        assert_eq!(t.failure().unwrap(), "converge exited with code 3");
        assert_eq!(t.verify, None);
    }
}
