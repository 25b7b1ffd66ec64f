//! Every reporter over one recorded run: a passing instance (bats cases, one skipped), a
//! failing bats verifier (two files share a test name), a failing shell verifier (no cases),
//! an erroring converge, and an instance `--fail-fast` cancelled before it started.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::events::*;
use crate::lifecycle::Action;
use crate::verifier::CaseOutcome;

fn at(ms: i64) -> Timestamp {
    let base: Timestamp = "2026-12-01T11:00:00Z".parse().unwrap();
    base + chrono::Duration::milliseconds(ms)
}

fn id(suite: &str) -> InstanceId {
    InstanceId::new(suite, "busybox", format!("{suite}-busybox"))
}

fn out(t: i64, suite: &str, stream: OutputStream, text: &str) -> Event {
    Event::Output(OutputLine {
        at: at(t),
        instance: id(suite),
        stream,
        level: Level::Info,
        text: text.into(),
    })
}

fn step(t: i64, suite: &str, action: Action) -> Event {
    Event::StepStarted(StepStarted {
        at: at(t),
        instance: id(suite),
        action,
    })
}

fn done(t: i64, suite: &str, action: Action, ms: u64) -> Event {
    Event::StepFinished(StepFinished {
        at: at(t),
        instance: id(suite),
        action,
        duration: Duration::from_millis(ms),
        outcome: Outcome::Passed,
        reason: None,
    })
}

fn failed(
    t: i64,
    suite: &str,
    action: Action,
    ms: u64,
    outcome: Outcome,
    reason: &str,
    tail: &[&str],
) -> Event {
    Event::StepFinished(StepFinished {
        at: at(t),
        instance: id(suite),
        action,
        duration: Duration::from_millis(ms),
        outcome,
        reason: Some(
            Reason::from_text(reason)
                .with_output_tail(tail.iter().map(|s| s.to_string()).collect()),
        ),
    })
}

#[allow(clippy::too_many_arguments)]
fn case(
    t: i64,
    suite: &str,
    name: &str,
    file: &str,
    outcome: CaseOutcome,
    line: Option<u32>,
    message: Option<&str>,
    output: &str,
) -> Event {
    Event::TestCase(TestCaseFinished {
        at: at(t),
        instance: id(suite),
        name: name.into(),
        file: Some(file.into()),
        line,
        outcome,
        message: message.map(str::to_string),
        output: output.into(),
        duration: Some(Duration::from_millis(12)),
    })
}

fn started(t: i64, suite: &str) -> Event {
    Event::InstanceStarted(InstanceStarted {
        at: at(t),
        instance: id(suite),
    })
}

fn finished(
    t: i64,
    suite: &str,
    outcome: Outcome,
    last: Option<Action>,
    ms: u64,
    reason: Option<&str>,
) -> Event {
    Event::InstanceFinished(InstanceFinished {
        at: at(t),
        instance: id(suite),
        outcome,
        last_action: last,
        duration: Duration::from_millis(ms),
        reason: reason.map(Reason::from_text),
    })
}

/// The recorded run (as `--format json` would have carried it).
pub(super) fn sample_run() -> Vec<Event> {
    use Action::*;
    use OutputStream::*;
    let verify_failed = Outcome::Failed;
    let errored = Outcome::Errored;
    vec![
        Event::RunStarted(RunStarted {
            at: at(0),
            run_id: "20261201T110000.000Z-4242".into(),
            command: "test".into(),
            command_line: vec![
                "kitchen-driver".into(),
                "test".into(),
                "-c".into(),
                "2".into(),
            ],
            instances: ["default", "web", "shell", "broken", "late"]
                .map(id)
                .to_vec(),
            concurrency: 2,
            version: "0.1.0".into(),
            hostname: "ci-runner-7".into(),
        }),
        started(1, "default"),
        started(1, "web"),
        step(2, "default", Destroy),
        step(2, "web", Destroy),
        done(30, "default", Destroy, 28),
        done(31, "web", Destroy, 29),
        step(32, "default", Create),
        step(32, "web", Create),
        Event::Warning(Warning {
            at: at(40),
            instance: Some(id("default")),
            text: "Removed leftover container 3f2a of this instance".into(),
        }),
        done(900, "default", Create, 868),
        done(950, "web", Create, 918),
        step(901, "default", Converge),
        Event::HookStarted(HookStarted {
            at: at(902),
            instance: id("default"),
            action: Converge,
            phase: HookPhase::Pre,
            command: "echo preparing".into(),
            local: true,
        }),
        out(903, "default", Stdout, "preparing"),
        Event::HookFinished(HookFinished {
            at: at(904),
            instance: id("default"),
            action: Converge,
            phase: HookPhase::Pre,
            command: "echo preparing".into(),
            duration: Duration::from_millis(2),
            outcome: Outcome::Passed,
            reason: None,
        }),
        step(951, "web", Converge),
        out(960, "default", Stdout, "converged-ok"),
        out(961, "web", Stdout, "installing nginx"),
        Event::ResourceSample(ResourceSample {
            at: at(1500),
            instance: id("default"),
            action: Converge,
            peak_memory_bytes: Some(12 * 1024 * 1024),
            cpu_time: Some(Duration::from_millis(250)),
        }),
        done(2000, "default", Converge, 1099),
        done(2100, "web", Converge, 1149),
        step(2001, "default", Setup),
        done(2002, "default", Setup, 1),
        step(2003, "default", Verify),
        step(2101, "web", Setup),
        done(2102, "web", Setup, 1),
        step(2103, "web", Verify),
        out(2200, "default", Stdout, "1..2"),
        out(2201, "default", Stdout, "ok 1 file exists"),
        out(2202, "default", Stdout, "ok 2 optional # skip no network"),
        case(
            2300,
            "default",
            "file exists",
            "checks.bats",
            CaseOutcome::Passed,
            None,
            None,
            "",
        ),
        case(
            2300,
            "default",
            "optional",
            "checks.bats",
            CaseOutcome::Skipped,
            None,
            Some("no network"),
            "skip: no network\n",
        ),
        done(2301, "default", Verify, 298),
        step(2302, "default", Destroy),
        out(2310, "web", Stdout, "not ok 2 serves /"),
        out(2311, "web", Stdout, "# (in test file health.bats, line 10)"),
        out(2312, "web", Stdout, "#   `[ \"$status\" -eq 0 ]' failed"),
        case(
            2320,
            "web",
            "serves /",
            "checks.bats",
            CaseOutcome::Passed,
            None,
            None,
            "",
        ),
        case(
            2320,
            "web",
            "serves /",
            "health.bats",
            CaseOutcome::Failed,
            Some(10),
            Some("`[ \"$status\" -eq 0 ]' failed"),
            "(in test file health.bats, line 10)\n  `[ \"$status\" -eq 0 ]' failed\ncurl: (7) connection refused\n",
        ),
        failed(
            2321,
            "web",
            Verify,
            218,
            verify_failed,
            "instance web-busybox: verify failed: 1 of 2 tests failed",
            &["not ok 2 serves /", "# (in test file health.bats, line 10)"],
        ),
        finished(
            2322,
            "web",
            verify_failed,
            Some(Verify),
            2321,
            Some("instance web-busybox: verify failed: 1 of 2 tests failed"),
        ),
        started(2323, "shell"),
        step(2324, "shell", Destroy),
        done(2350, "shell", Destroy, 26),
        step(2351, "shell", Create),
        done(3000, "default", Destroy, 698),
        finished(3001, "default", Outcome::Passed, Some(Destroy), 3000, None),
        started(3002, "broken"),
        step(3003, "broken", Destroy),
        done(3030, "broken", Destroy, 27),
        done(3200, "shell", Create, 849),
        step(3031, "broken", Create),
        step(3201, "shell", Converge),
        done(3500, "shell", Converge, 299),
        step(3501, "shell", Setup),
        done(3502, "shell", Setup, 1),
        step(3503, "shell", Verify),
        out(
            3600,
            "shell",
            Stderr,
            "ERROR: expected greeting=hello, got hullo",
        ),
        failed(
            3601,
            "shell",
            Verify,
            98,
            verify_failed,
            "instance shell-busybox: verify failed: verifier command exited with code 1: sh verify.sh",
            &["ERROR: expected greeting=hello, got hullo"],
        ),
        finished(
            3602,
            "shell",
            verify_failed,
            Some(Verify),
            1279,
            Some(
                "instance shell-busybox: verify failed: verifier command exited with code 1: sh verify.sh",
            ),
        ),
        done(3900, "broken", Create, 869),
        step(3901, "broken", Converge),
        out(3950, "broken", Stdout, "installing packages"),
        out(3951, "broken", Stderr, "about to fail"),
        failed(
            4000,
            "broken",
            Converge,
            99,
            errored,
            "instance broken-busybox: converge exited with code 3: /tmp/kitchen/bootstrap.sh",
            &["installing packages", "about to fail"],
        ),
        finished(
            4001,
            "broken",
            errored,
            Some(Converge),
            999,
            Some("instance broken-busybox: converge exited with code 3: /tmp/kitchen/bootstrap.sh"),
        ),
        started(4002, "late"),
        finished(
            4003,
            "late",
            Outcome::Cancelled {
                cause: CancelReason::FailFast,
            },
            None,
            1,
            Some(
                "instance late-busybox: destroy not started: cancelled after another instance failed (--fail-fast)",
            ),
        ),
        Event::RunFinished(RunFinished {
            at: at(4100),
            duration: Duration::from_millis(4100),
            counts: Counts {
                instances: 5,
                passed: 1,
                failed: 2,
                errored: 1,
                cancelled: 1,
            },
            exit_code: 20,
        }),
    ]
}

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

impl Buf {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

fn text_of(opts: TextOptions) -> String {
    let buf = Buf::default();
    let mut r = TextReporter::plain(Box::new(buf.clone()), opts);
    for e in sample_run() {
        r.report(&e);
    }
    r.finish().unwrap();
    buf.text()
}

fn text_opts() -> TextOptions {
    TextOptions {
        summary: true,
        ..TextOptions::default()
    }
}

/// Escape codes and carriage returns made visible for the snapshot.
fn visible(s: &str) -> String {
    s.replace('\x1b', "<ESC>").replace('\r', "<CR>")
}

#[test]
fn text_output_of_the_recorded_run() {
    let text = text_of(text_opts());
    assert!(!text.contains('\x1b'), "no escape codes without colour");
    assert!(
        text.ends_with("Summary [4.1s] 5 instances: 1 passed, 3 failed, 1 skipped\n"),
        "{text}"
    );
    insta::assert_snapshot!("text", text);
}

#[test]
fn failure_output_final_gathers_each_failed_instance_before_the_summary() {
    let text = text_of(TextOptions {
        failure_output: FailureOutput::Final,
        ..text_opts()
    });
    let gathered = text
        .split("-----> Output of <broken-busybox> (errored)")
        .nth(1)
        .unwrap();
    assert!(
        gathered.contains("[broken-busybox]        about to fail"),
        "{text}"
    );
    insta::assert_snapshot!("text_failure_output_final", text);
}

#[test]
fn github_actions_groups_each_step_and_annotates_failures() {
    let text = text_of(TextOptions {
        ci: Some(CiKind::GitHub),
        ..text_opts()
    });
    assert_eq!(
        text.matches("::group::").count(),
        text.matches("::endgroup::").count()
    );
    assert!(text.contains("::error title=broken-busybox%3A converge errored::instance broken-busybox: converge exited with code 3"), "{text}");
    insta::assert_snapshot!("text_github", text);
}

#[test]
fn gitlab_sections_wrap_each_step_collapsed_when_it_passed() {
    let text = text_of(TextOptions {
        ci: Some(CiKind::GitLab),
        ..text_opts()
    });
    assert_eq!(
        text.matches("section_start:").count(),
        text.matches("section_end:").count()
    );
    assert!(!text.contains("::group::"));
    insta::assert_snapshot!("text_gitlab", visible(&text));
}

#[test]
fn colour_marks_prefixes_failures_and_results_only_when_asked() {
    let text = text_of(TextOptions {
        color: true,
        ..text_opts()
    });
    assert!(
        text.contains("\x1b[31m>>>>>> instance broken-busybox"),
        "{text}"
    );
    assert!(text.contains("\x1b[32mpassed\x1b[0m"), "{text}");
}

#[test]
fn the_environment_decides_colour_and_the_live_display() {
    let env = |tty: bool, vars: &'static [(&'static str, &'static str)]| {
        Environment::from_vars(tty, |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
    };
    let tty = env(true, &[]);
    assert!(tty.color(ColorChoice::Auto) && tty.live());
    let pipe = env(false, &[]);
    assert!(!pipe.color(ColorChoice::Auto) && !pipe.live());
    assert!(pipe.color(ColorChoice::Always));
    let no_color = env(true, &[("NO_COLOR", "1")]);
    assert!(!no_color.color(ColorChoice::Auto) && no_color.live());
    let dumb = env(true, &[("TERM", "dumb")]);
    assert!(!dumb.color(ColorChoice::Auto) && !dumb.live());
    let ci = env(true, &[("CI", "true")]);
    assert!(!ci.live() && ci.color(ColorChoice::Auto));
    assert!(!tty.color(ColorChoice::Never));
    let gh = env(
        false,
        &[("GITHUB_ACTIONS", "true"), ("GITHUB_STEP_SUMMARY", "/s.md")],
    );
    assert_eq!(gh.ci_kind, Some(CiKind::GitHub));
    assert_eq!(gh.github_step_summary.as_deref(), Some(Path::new("/s.md")));
}

#[test]
fn json_lines_carry_every_event_with_the_version() {
    let buf = Buf::default();
    let mut r = JsonLines::new(Box::new(buf.clone()));
    let events = sample_run();
    for e in &events {
        r.report(e);
    }
    let text = buf.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), events.len());
    for (line, event) in lines.iter().zip(&events) {
        let record: JsonRecord = serde_json::from_str(line).unwrap();
        assert_eq!(record.v, SCHEMA_VERSION);
        assert_eq!(&record.event, event);
    }
    insta::assert_snapshot!("json", text);
}

#[test]
fn junit_of_the_recorded_run() {
    let xml = junit::render(&sample_run()).unwrap();
    assert!(
        xml.contains(
            r#"<testsuites name="kitchen-driver" tests="7" failures="2" errors="1" time="4.100">"#
        ),
        "{xml}"
    );
    assert!(
        xml.contains(
            r#"<testcase name="health.bats: serves /" classname="web.busybox" time="0.012">"#
        ),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<testcase name="checks.bats: serves /" classname="web.busybox""#),
        "{xml}"
    );
    insta::assert_snapshot!("junit", xml);
}

#[test]
fn junit_is_valid_against_the_jenkins_xunit_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junit.xml");
    std::fs::write(&path, junit::render(&sample_run()).unwrap()).unwrap();
    validate_junit(&path);
}

/// Validates `path` with `scripts/validate-junit` (junit-10.xsd, Python's xmlschema).
pub(crate) fn validate_junit(path: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/validate-junit");
    let out = std::process::Command::new(&script)
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} is not valid against junit-10.xsd:\n{}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_validator_refuses_an_invalid_report() {
    // The check above can fail: quick-junit's own root element (with `skipped`) is refused.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.xml");
    std::fs::write(
        &path,
        r#"<testsuites name="k" tests="0" skipped="0" failures="0" errors="0"></testsuites>"#,
    )
    .unwrap();
    let result = std::panic::catch_unwind(|| validate_junit(&path));
    assert!(
        result.is_err(),
        "an undeclared attribute must fail validation"
    );
}

#[test]
fn summary_table_line_and_markdown_of_the_recorded_run() {
    let summary = summary::SummaryBuilder::from_events(&sample_run());
    assert_eq!(
        summary.line(),
        "Summary [4.1s] 5 instances: 1 passed, 3 failed, 1 skipped"
    );
    let row = |n: &str| summary.rows.iter().find(|r| r.instance.name == n).unwrap();
    assert_eq!(
        row("default-busybox").peak_memory_bytes,
        Some(12 * 1024 * 1024)
    );
    assert_eq!(row("broken-busybox").last_action, Some(Action::Converge));
    assert_eq!(row("late-busybox").result(), "skipped");
    insta::assert_snapshot!("summary_table", summary.table(false));
    insta::assert_snapshot!("summary_markdown", summary.markdown());
}

#[test]
fn markdown_summary_appends_to_the_github_step_summary_or_replaces_its_own_file() {
    let dir = tempfile::tempdir().unwrap();
    let step_summary = dir.path().join("step.md");
    std::fs::write(&step_summary, "earlier step\n").unwrap();
    let own = dir.path().join("deep/dir/summary.md");
    for (path, append) in [(&step_summary, true), (&own, false), (&own, false)] {
        let mut r = MarkdownSummary::new(path.clone(), append);
        for e in sample_run() {
            r.report(&e);
        }
        r.finish().unwrap();
    }
    let appended = std::fs::read_to_string(&step_summary).unwrap();
    assert!(
        appended.starts_with("earlier step\n### kitchen-driver"),
        "{appended}"
    );
    let replaced = std::fs::read_to_string(&own).unwrap();
    assert_eq!(
        replaced.matches("### kitchen-driver").count(),
        1,
        "{replaced}"
    );
}

#[test]
fn log_files_have_a_header_timestamps_streams_and_rotate_the_previous_run() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join(".kitchen/logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(logs.join("kitchen.log"), "old run\n").unwrap();
    std::fs::write(logs.join("gone-busybox.log"), "old instance\n").unwrap();
    let mut r = LogFiles::new(dir.path()).unwrap();
    for e in sample_run() {
        r.report(&e);
    }
    r.finish().unwrap();
    assert!(
        !logs.join("gone-busybox.log").exists(),
        "stale logs move away"
    );
    assert_eq!(
        std::fs::read_to_string(logs.join("previous/gone-busybox.log")).unwrap(),
        "old instance\n"
    );
    let kitchen = std::fs::read_to_string(logs.join("kitchen.log")).unwrap();
    assert!(kitchen.starts_with("# kitchen-driver 0.1.0 run 20261201T110000.000Z-4242\n# command line: kitchen-driver test -c 2\n# started: 2026-12-01T11:00:00.000Z\n"), "{kitchen}");
    let broken = std::fs::read_to_string(logs.join("broken-busybox.log")).unwrap();
    insta::assert_snapshot!("log_broken_instance", broken);
    for line in kitchen.lines().filter(|l| !l.starts_with('#')) {
        assert!(
            line.starts_with("[2026-12-01T11:00:0"),
            "every line is stamped: {line}"
        );
    }
    assert!(
        kitchen.contains(
            "[2026-12-01T11:00:03.951Z] INFO  broken-busybox stderr:        about to fail"
        ),
        "{kitchen}"
    );
}

#[test]
fn multi_line_messages_are_stamped_on_every_line() {
    let line = text::Line {
        instance: Some(id("default")),
        level: Level::Error,
        stream: OutputStream::Info,
        text: "first\nsecond".into(),
    };
    assert_eq!(
        logs::log_lines(at(5), &line, true),
        [
            "[2026-12-01T11:00:00.005Z] ERROR default-busybox info: first",
            "[2026-12-01T11:00:00.005Z] ERROR default-busybox info: second",
        ]
    );
}

#[test]
fn report_paths_are_created_and_checked_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let deep = dir.path().join("a/b/junit.xml");
    check_writable(&deep).unwrap();
    assert!(deep.parent().unwrap().is_dir());
    let blocked = dir.path().join("file");
    std::fs::write(&blocked, "").unwrap();
    let err = check_writable(&blocked.join("junit.xml")).unwrap_err();
    assert!(err.to_string().contains("choose a writable path"), "{err}");
    assert_eq!(err.exit_code(), 1, "a bad report path is a usage error");
}

#[test]
fn durations_and_sizes_read_well() {
    assert_eq!(format_duration(Duration::from_millis(4100)), "4.1s");
    assert_eq!(format_duration(Duration::from_millis(123_400)), "2m03.4s");
    assert_eq!(format_duration(Duration::from_secs(3723)), "1h02m03s");
    assert_eq!(format_bytes(512), "512 B");
    assert_eq!(format_bytes(12 * 1024 * 1024), "12.0 MiB");
}

#[test]
fn a_second_process_appends_to_the_logs_and_moves_nothing_away() {
    // Two LogFiles on one project are two processes as far as the run lock goes (flock locks
    // belong to the open file, not the process).
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join(".kitchen/logs");
    let mut first = LogFiles::new(dir.path()).unwrap();
    let events = sample_run();
    first.report(&events[0]);
    first.report(&out(1, "default", OutputStream::Stdout, "first-before"));
    let mut second = LogFiles::new(dir.path()).unwrap();
    assert!(!logs.join(logs::PREVIOUS_DIR).exists(), "nothing rotated");
    second.report(&events[0]);
    second.report(&out(2, "default", OutputStream::Stdout, "second-line"));
    first.report(&out(3, "default", OutputStream::Stdout, "first-after"));
    first.finish().unwrap();
    second.finish().unwrap();
    let kitchen = std::fs::read_to_string(logs.join("kitchen.log")).unwrap();
    assert!(!kitchen.contains('\0'), "{kitchen:?}");
    let order: Vec<&str> = ["first-before", "second-line", "first-after"]
        .into_iter()
        .filter(|w| kitchen.contains(w))
        .collect();
    assert_eq!(order.len(), 3, "{kitchen}");
    assert_eq!(kitchen.matches("# kitchen-driver ").count(), 2, "{kitchen}");
    for line in kitchen.lines() {
        assert!(line.starts_with('[') || line.starts_with('#'), "{line:?}");
    }
    drop((first, second));
    // With no other process left, the next run moves these logs away.
    let _third = LogFiles::new(dir.path()).unwrap();
    assert!(logs.join(logs::PREVIOUS_DIR).join("kitchen.log").exists());
}
