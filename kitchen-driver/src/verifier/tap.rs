//! A parser for the Test Anything Protocol as `bats --tap` writes it (pure: unit-tested).
//!
//! Understood: the plan (`1..N`), test lines (`ok N desc`, `not ok N desc`, with or without the
//! number and an optional `- ` before the description), the `# skip` and `# todo` directives
//! (any case), the ` in 12ms` suffix `bats --timing` adds before a directive, diagnostics (`#`
//! lines, attached to the test before them), `Bail out!`, and a `TAP version` header. Anything
//! else is kept as unrecognised output.

use std::time::Duration;

use super::{CaseOutcome, CaseResult};

/// A TAP directive on a test line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Directive {
    /// `# skip [reason]`: the test did not run.
    Skip(String),
    /// `# todo [reason]`: the test is expected to fail; a failure does not count.
    Todo(String),
}

/// One test line and the diagnostics that follow it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TapTest {
    /// The test number, when the line has one.
    pub number: Option<u32>,
    /// `ok` (true) or `not ok` (false).
    pub ok: bool,
    /// The description (the test's name).
    pub name: String,
    /// A `skip` or `todo` directive.
    pub directive: Option<Directive>,
    /// The duration `bats --timing` reported.
    pub duration: Option<Duration>,
    /// The diagnostic lines after the test line, without their leading `# `.
    pub diagnostics: Vec<String>,
}

impl TapTest {
    /// How this test counts: a skip is skipped, a failing todo is skipped, `not ok` fails.
    pub fn outcome(&self) -> CaseOutcome {
        match (&self.directive, self.ok) {
            (Some(Directive::Skip(_)), _) => CaseOutcome::Skipped,
            (Some(Directive::Todo(_)), false) => CaseOutcome::Skipped,
            (_, true) => CaseOutcome::Passed,
            (_, false) => CaseOutcome::Failed,
        }
    }

    /// The test as a verifier case result, with `group` (such as the `.bats` file).
    pub fn to_case(&self, group: Option<&str>) -> CaseResult {
        let mut output = String::new();
        match &self.directive {
            Some(Directive::Skip(r)) if !r.is_empty() => output.push_str(&format!("skip: {r}\n")),
            Some(Directive::Todo(r)) => output.push_str(&format!("todo: {r}\n")),
            _ => {}
        }
        for d in &self.diagnostics {
            output.push_str(d);
            output.push('\n');
        }
        let mut case = CaseResult::new(self.name.clone(), self.outcome(), output);
        if let Some(g) = group {
            case = case.with_group(g);
        }
        match (&self.directive, self.outcome()) {
            (Some(Directive::Skip(r) | Directive::Todo(r)), _) if !r.is_empty() => {
                case = case.with_message(r.clone());
            }
            (_, CaseOutcome::Failed) => {
                let (line, message) = bats_failure(&self.diagnostics);
                if let Some(line) = line {
                    case = case.with_line(line);
                }
                if let Some(message) = message {
                    case = case.with_message(message);
                }
            }
            _ => {}
        }
        if let Some(d) = self.duration {
            case = case.with_duration(d);
        }
        case
    }
}

/// Where and why a bats test failed, from its diagnostics: the line of bats'
/// `(in test file checks.bats, line 10)` and the assertion on the line after it
/// (`` `[ "$status" -eq 0 ]' failed``); without that marker, the first diagnostic line.
fn bats_failure(diagnostics: &[String]) -> (Option<u32>, Option<String>) {
    let marker = diagnostics.iter().position(|d| {
        let d = d.trim();
        d.starts_with("(in test file ") && d.ends_with(')')
    });
    let line = marker.and_then(|i| {
        let d = diagnostics[i].trim();
        let (_, n) = d.strip_suffix(')')?.rsplit_once(", line ")?;
        n.trim().parse().ok()
    });
    let after = marker.map(|i| i + 1).unwrap_or(0);
    let message = diagnostics[after..]
        .iter()
        .map(|d| d.trim())
        .find(|d| !d.is_empty())
        .map(str::to_string);
    (line, message)
}

/// A parsed TAP stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TapReport {
    /// The plan `1..N`: N, when given.
    pub planned: Option<u32>,
    /// The tests in the order they were reported.
    pub tests: Vec<TapTest>,
    /// The reason of a `Bail out!`.
    pub bail_out: Option<String>,
    /// Diagnostics before the first test.
    pub preamble: Vec<String>,
    /// Lines that are not TAP (stray output).
    pub unrecognised: Vec<String>,
}

impl TapReport {
    /// The tests that count as failures.
    pub fn failures(&self) -> impl Iterator<Item = &TapTest> {
        self.tests
            .iter()
            .filter(|t| t.outcome() == CaseOutcome::Failed)
    }

    /// Whether the stream says everything passed: a plan that matches the tests seen, no
    /// failure and no bail-out.
    pub fn passed(&self) -> bool {
        self.bail_out.is_none()
            && self.failures().next().is_none()
            && self.planned.is_some_and(|n| n as usize == self.tests.len())
    }

    /// Why the stream does not pass, when it does not: the bail-out, or the plan that was not
    /// met. Failing tests are reported by the caller, which knows their context.
    pub fn problem(&self) -> Option<String> {
        if let Some(r) = &self.bail_out {
            return Some(format!("bail out: {r}"));
        }
        match self.planned {
            None => Some(format!(
                "no TAP plan (1..N) in the output ({} tests seen)",
                self.tests.len()
            )),
            Some(n) if n as usize != self.tests.len() => Some(format!(
                "planned {n} tests but {} reported",
                self.tests.len()
            )),
            Some(_) => None,
        }
    }
}

/// Parses `text`. `timing`: strip a trailing ` in <N>ms` from descriptions into
/// [`TapTest::duration`] (only meaningful with `bats --timing`).
pub fn parse(text: &str, timing: bool) -> TapReport {
    let mut report = TapReport::default();
    for raw in text.lines() {
        let line = raw.trim_end_matches('\r');
        if let Some(diag) = line.strip_prefix('#') {
            let diag = diag.strip_prefix(' ').unwrap_or(diag).to_string();
            match report.tests.last_mut() {
                Some(t) => t.diagnostics.push(diag),
                None => report.preamble.push(diag),
            }
            continue;
        }
        if let Some(n) = parse_plan(line) {
            report.planned = Some(n);
            continue;
        }
        if let Some(reason) = line.strip_prefix("Bail out!") {
            report.bail_out = Some(reason.trim().to_string());
            continue;
        }
        if line.starts_with("TAP version ") || line.trim().is_empty() {
            continue;
        }
        if let Some(t) = parse_test(line, timing) {
            report.tests.push(t);
            continue;
        }
        report.unrecognised.push(line.to_string());
    }
    report
}

/// `1..N` (optionally followed by `# reason`, as in `1..0 # skip all`).
fn parse_plan(line: &str) -> Option<u32> {
    let rest = line.strip_prefix("1..")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return None;
    }
    let after = rest[digits.len()..].trim_start();
    if !(after.is_empty() || after.starts_with('#')) {
        return None;
    }
    digits.parse().ok()
}

fn parse_test(line: &str, timing: bool) -> Option<TapTest> {
    let (ok, rest) = if let Some(r) = line.strip_prefix("not ok") {
        (false, r)
    } else if let Some(r) = line.strip_prefix("ok") {
        (true, r)
    } else {
        return None;
    };
    if !(rest.is_empty() || rest.starts_with(' ')) {
        return None;
    }
    let rest = rest.trim_start();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let (number, rest) = if digits.is_empty() {
        (None, rest)
    } else {
        (digits.parse().ok(), rest[digits.len()..].trim_start())
    };
    let rest = rest.strip_prefix("- ").unwrap_or(rest);
    let (desc, directive) = split_directive(rest);
    let (name, duration) = if timing {
        split_timing(desc)
    } else {
        (desc, None)
    };
    Some(TapTest {
        number,
        ok,
        name: name.trim().to_string(),
        directive,
        duration,
        diagnostics: Vec::new(),
    })
}

/// Splits `desc # skip reason` at the last ` # ` that starts a directive.
fn split_directive(s: &str) -> (&str, Option<Directive>) {
    let mut search = s.len();
    while let Some(pos) = s[..search].rfind('#') {
        let before = &s[..pos];
        if pos == 0 || before.ends_with(' ') {
            let after = s[pos + 1..].trim_start();
            let lower = after.to_ascii_lowercase();
            let word = ["skip", "todo"].into_iter().find(|w| lower.starts_with(w));
            if let Some(word) = word {
                // `skip`, `skipped`, `SKIP:` all count; the reason follows the word.
                let tail =
                    after[word.len()..].trim_start_matches(|c: char| c.is_ascii_alphabetic());
                let reason = tail.trim_start_matches(':').trim().to_string();
                let directive = if word == "skip" {
                    Directive::Skip(reason)
                } else {
                    Directive::Todo(reason)
                };
                return (before.trim_end(), Some(directive));
            }
        }
        search = pos;
    }
    (s, None)
}

/// Splits `name in 12ms` into the name and 12 ms.
fn split_timing(s: &str) -> (&str, Option<Duration>) {
    let trimmed = s.trim_end();
    if let Some(head) = trimmed.strip_suffix("ms")
        && let Some(pos) = head.rfind(" in ")
    {
        let num = &head[pos + 4..];
        if !num.is_empty()
            && num.chars().all(|c| c.is_ascii_digit())
            && let Ok(ms) = num.parse::<u64>()
        {
            return (&trimmed[..pos], Some(Duration::from_millis(ms)));
        }
    }
    (s, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What bats 1.8.2 (Debian 12, inside kitchen/debian-12) printed for a file with a passing,
    /// a failing and two skipped tests, with `--tap --timing`.
    const BATS_TIMING: &str = "1..4
ok 1 passes in 4ms
not ok 2 fails with output in 3ms
# (in test file t/t.bats, line 4)
#   `@test \"fails with output\" { echo \"some output\"; [ 1 -eq 2 ]; }' failed
# some output
ok 3 skipped in 4ms # skip not today
ok 4 skip no reason in 4ms # skip
";

    #[test]
    fn bats_output_with_timing() {
        let r = parse(BATS_TIMING, true);
        assert_eq!(r.planned, Some(4));
        assert_eq!(r.tests.len(), 4);
        let names: Vec<&str> = r.tests.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            ["passes", "fails with output", "skipped", "skip no reason"]
        );
        assert_eq!(r.tests[0].duration, Some(Duration::from_millis(4)));
        assert_eq!(r.tests[0].outcome(), CaseOutcome::Passed);
        assert_eq!(r.tests[1].outcome(), CaseOutcome::Failed);
        assert_eq!(r.tests[1].diagnostics.len(), 3);
        assert_eq!(r.tests[1].diagnostics[2], "some output");
        assert_eq!(
            r.tests[2].directive,
            Some(Directive::Skip("not today".into()))
        );
        assert_eq!(r.tests[3].directive, Some(Directive::Skip(String::new())));
        assert_eq!(r.tests[3].outcome(), CaseOutcome::Skipped);
        assert_eq!(r.failures().count(), 1);
        assert!(!r.passed());
        assert_eq!(r.problem(), None, "the plan is met; the failure is a test");
        let case = r.tests[1].to_case(Some("t.bats"));
        assert_eq!(case.outcome, CaseOutcome::Failed);
        assert_eq!(case.group.as_deref(), Some("t.bats"));
        assert!(case.output.contains("some output"), "{}", case.output);
        assert_eq!(case.duration, Some(Duration::from_millis(3)));
        assert_eq!(case.line, Some(4));
        assert_eq!(
            case.message.as_deref(),
            Some("`@test \"fails with output\" { echo \"some output\"; [ 1 -eq 2 ]; }' failed")
        );
        let skipped = r.tests[2].to_case(Some("t.bats"));
        assert_eq!(skipped.message.as_deref(), Some("not today"));
        assert_eq!(r.tests[3].to_case(None).message, None);
    }

    #[test]
    fn without_timing_the_suffix_stays_in_the_name() {
        let r = parse("1..1\nok 1 answers in 5ms\n", false);
        assert_eq!(r.tests[0].name, "answers in 5ms");
        assert_eq!(r.tests[0].duration, None);
        assert!(r.passed());
    }

    #[test]
    fn todo_failures_do_not_count_and_directives_ignore_case() {
        let r = parse(
            "TAP version 13\n1..3\nnot ok 1 later # TODO write it\nok 2 - dash # SKIP: no disk\nok 3 fixed # todo\n",
            false,
        );
        assert_eq!(
            r.tests[0].directive,
            Some(Directive::Todo("write it".into()))
        );
        assert_eq!(r.tests[0].outcome(), CaseOutcome::Skipped);
        assert_eq!(r.tests[1].name, "dash");
        assert_eq!(
            r.tests[1].directive,
            Some(Directive::Skip("no disk".into()))
        );
        assert_eq!(r.tests[2].outcome(), CaseOutcome::Passed);
        assert!(r.passed());
        let c = r.tests[0].to_case(None);
        assert!(c.output.starts_with("todo: write it"), "{}", c.output);
    }

    #[test]
    fn a_hash_that_is_not_a_directive_stays_in_the_name() {
        let r = parse(
            "1..2\nok 1 issue #42 is fixed\nok 2 C# works # skip no mono\n",
            false,
        );
        assert_eq!(r.tests[0].name, "issue #42 is fixed");
        assert_eq!(r.tests[0].directive, None);
        assert_eq!(r.tests[1].name, "C# works");
        assert_eq!(
            r.tests[1].directive,
            Some(Directive::Skip("no mono".into()))
        );
    }

    #[test]
    fn plan_mismatch_bail_out_and_stray_lines() {
        let r = parse("1..3\nok 1 a\nstray output\n", false);
        assert!(!r.passed());
        assert_eq!(
            r.problem().as_deref(),
            Some("planned 3 tests but 1 reported")
        );
        assert_eq!(r.unrecognised, ["stray output"]);

        let r = parse(
            "# before\n1..2\nok 1 a\nBail out! setup_file failed\n",
            false,
        );
        assert_eq!(r.preamble, ["before"]);
        assert_eq!(r.bail_out.as_deref(), Some("setup_file failed"));
        assert_eq!(r.problem().as_deref(), Some("bail out: setup_file failed"));

        let r = parse("ok 1 a\n", false);
        assert!(r.problem().unwrap().contains("no TAP plan"));
        let r = parse("1..0 # skip nothing here\n", false);
        assert_eq!(r.planned, Some(0));
        assert!(r.passed());
    }

    #[test]
    fn test_lines_without_numbers_and_lookalikes() {
        let r = parse("1..2\nok\nnot ok - broken\nokay 3 nope\n", false);
        assert_eq!(r.tests.len(), 2);
        assert_eq!(r.tests[0].number, None);
        assert_eq!(r.tests[0].name, "");
        assert_eq!(r.tests[1].name, "broken");
        assert!(!r.tests[1].ok);
        assert_eq!(r.unrecognised, ["okay 3 nope"]);
        assert_eq!(parse_plan("1..x"), None);
        assert_eq!(parse_plan("1..12 trailing"), None);
    }

    #[test]
    fn timing_suffix_needs_digits() {
        assert_eq!(split_timing("x in ms"), ("x in ms", None));
        assert_eq!(split_timing("x in 12s"), ("x in 12s", None));
        assert_eq!(
            split_timing("x in 120ms"),
            ("x", Some(Duration::from_millis(120)))
        );
    }
}
