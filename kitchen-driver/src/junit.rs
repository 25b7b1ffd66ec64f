//! The JUnit XML report (`--junit PATH`): what CI systems read.
//!
//! One `<testsuite>` per instance. Each test case its verifier reported (a bats test, the
//! shell verifier's command) becomes a `<testcase>`; an instance that failed before any case
//! ran (create or converge failed) gets one failing case named after the instance, carrying
//! the error, so a broken converge is never an empty, green suite.

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::lifecycle::InstanceOutcome;
use crate::verifier::{CaseOutcome, CaseResult};

/// Renders the outcomes of one run as JUnit XML.
///
/// # Errors
/// [`crate::Error::Report`] only if the XML writer fails, which it does not for in-memory
/// strings; kept as a `Result` so callers need no `expect`.
pub fn render(report_name: &str, outcomes: &[InstanceOutcome]) -> crate::Result<String> {
    let mut report = Report::new(report_name);
    for outcome in outcomes {
        let mut suite = TestSuite::new(outcome.instance.as_str());
        suite.add_test_cases(outcome.cases.iter().map(|c| case(&outcome.instance, c)));
        let a_case_failed = outcome
            .cases
            .iter()
            .any(|c| c.outcome == CaseOutcome::Failed);
        let own_case = match &outcome.error {
            // A failure not explained by a failing case (create or converge failed, or the
            // verifier could not run) is reported as a case of its own.
            Some(error) if outcome.failed() && !a_case_failed => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
                status.set_message(error.to_string());
                Some(status)
            }
            // Interrupted (Ctrl-C) before it finished: neither passed nor failed.
            Some(error) if !outcome.failed() && outcome.cases.is_empty() => {
                let mut status = TestCaseStatus::skipped();
                status.set_message(error.to_string());
                Some(status)
            }
            None if outcome.cases.is_empty() => Some(TestCaseStatus::success()),
            _ => None,
        };
        if let Some(status) = own_case {
            let mut tc = TestCase::new(outcome.instance.as_str(), status);
            tc.set_classname(outcome.instance.as_str());
            suite.add_test_case(tc);
        }
        report.add_test_suite(suite);
    }
    report.to_string().map_err(|e| crate::Error::Report {
        what: "the JUnit report".into(),
        source: Box::new(e),
    })
}

fn case(instance: &str, c: &CaseResult) -> TestCase {
    let status = match c.outcome {
        CaseOutcome::Passed => TestCaseStatus::success(),
        CaseOutcome::Skipped => TestCaseStatus::skipped(),
        _ => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(format!("{} failed", c.name));
            s
        }
    };
    let mut tc = TestCase::new(c.name.as_str(), status);
    tc.set_classname(instance);
    if let Some(d) = c.duration {
        tc.set_time(d);
    }
    if !c.output.is_empty() {
        tc.set_system_out(c.output.as_str());
    }
    tc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    fn outcome(instance: &str, error: Option<Error>, cases: Vec<CaseResult>) -> InstanceOutcome {
        InstanceOutcome {
            instance: instance.into(),
            error,
            cases,
        }
    }

    #[test]
    fn cases_become_testcases_and_a_failed_converge_is_an_error_case() {
        let outcomes = vec![
            outcome(
                "default-debian",
                None,
                vec![
                    CaseResult::new("file exists", CaseOutcome::Passed, ""),
                    CaseResult::new("optional", CaseOutcome::Skipped, "# skip no network"),
                ],
            ),
            outcome(
                "default-busybox",
                Some(Error::CommandFailed {
                    instance: "default-busybox".into(),
                    what: "converge".into(),
                    command: "sh bootstrap.sh".into(),
                    exit_code: 3,
                }),
                vec![],
            ),
            outcome(
                "web-debian",
                Some(Error::VerifyFailed {
                    instance: "web-debian".into(),
                    message: "1 of 2 tests failed".into(),
                }),
                vec![
                    CaseResult::new("serves /", CaseOutcome::Passed, ""),
                    CaseResult::new("serves /health", CaseOutcome::Failed, "not ok 2"),
                ],
            ),
        ];
        let xml = render("kitchen-driver", &outcomes).unwrap();
        assert!(xml.contains(r#"<testsuites name="kitchen-driver" tests="5" skipped="1" failures="1" errors="1">"#), "{xml}");
        assert!(
            xml.contains(r#"<testcase name="file exists" classname="default-debian"/>"#),
            "{xml}"
        );
        assert!(xml.contains("<skipped"), "{xml}");
        assert!(xml.contains("converge exited with code 3"), "{xml}");
        // The verify failure is explained by its failing case: no extra error case.
        assert!(!xml.contains(r#"<testcase name="web-debian""#), "{xml}");
        assert!(xml.contains("serves /health failed"), "{xml}");
    }

    #[test]
    fn an_instance_without_cases_that_passed_is_one_green_case() {
        let xml = render("k", &[outcome("a-b", None, vec![])]).unwrap();
        assert!(
            xml.contains(r#"tests="1" skipped="0" failures="0" errors="0""#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<testcase name="a-b" classname="a-b"/>"#),
            "{xml}"
        );
    }

    #[test]
    fn a_case_duration_becomes_its_time() {
        let timed = CaseResult::new("quick", CaseOutcome::Passed, "")
            .with_duration(std::time::Duration::from_millis(12));
        let xml = render("k", &[outcome("a-b", None, vec![timed])]).unwrap();
        assert!(
            xml.contains(r#"<testcase name="quick" classname="a-b" time="0.012"/>"#),
            "{xml}"
        );
    }

    #[test]
    fn an_interrupted_instance_is_skipped_not_green() {
        let cancelled = Error::Cancelled {
            instance: "a-b".into(),
            action: "converge".into(),
            reason: crate::CancelReason::Interrupted,
        };
        let xml = render("k", &[outcome("a-b", Some(cancelled), vec![])]).unwrap();
        assert!(xml.contains("<skipped"), "{xml}");
        assert!(xml.contains(r#"failures="0" errors="0""#), "{xml}");
    }
}
