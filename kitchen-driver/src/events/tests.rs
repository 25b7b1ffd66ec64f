use std::time::Duration;

use super::*;

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn busybox() -> InstanceId {
    InstanceId::new("default", "busybox", "default-busybox")
}

#[test]
fn step_finished_serialises_flat_with_outcome_cause_and_seconds() {
    let e = Event::StepFinished(StepFinished {
        at: at("2026-12-01T11:00:02.500Z"),
        instance: busybox(),
        action: Action::Converge,
        duration: Duration::from_millis(2500),
        outcome: Outcome::Cancelled {
            cause: CancelReason::FailFast,
        },
        reason: None,
    });
    let json = serde_json::to_string(&JsonRecord::new(e.clone())).unwrap();
    assert_eq!(
        json,
        r#"{"v":1,"event":"step_finished","at":"2026-12-01T11:00:02.500Z","instance":{"name":"default-busybox","suite":"default","platform":"busybox"},"action":"converge","duration":2.5,"outcome":"cancelled","cause":"fail_fast"}"#
    );
    let back: JsonRecord = serde_json::from_str(&json).unwrap();
    assert_eq!(back.event, e);
    assert_eq!(back.v, SCHEMA_VERSION);
}

#[test]
fn every_event_kind_round_trips_through_json() {
    let t = at("2026-12-01T11:00:00Z");
    let events = vec![
        Event::RunStarted(RunStarted {
            at: t,
            run_id: "r1".into(),
            command: "test".into(),
            command_line: vec!["kitchen-driver".into(), "test".into()],
            instances: vec![busybox()],
            concurrency: 2,
            version: "0.1.0".into(),
            hostname: "ci-7".into(),
        }),
        Event::InstanceStarted(InstanceStarted {
            at: t,
            instance: busybox(),
        }),
        Event::StepStarted(StepStarted {
            at: t,
            instance: busybox(),
            action: Action::Verify,
        }),
        Event::HookStarted(HookStarted {
            at: t,
            instance: busybox(),
            action: Action::Create,
            phase: HookPhase::Post,
            command: "echo hi".into(),
            local: true,
        }),
        Event::HookFinished(HookFinished {
            at: t,
            instance: busybox(),
            action: Action::Create,
            phase: HookPhase::Post,
            command: "echo hi".into(),
            duration: Duration::from_millis(3),
            outcome: Outcome::Errored,
            reason: Some(Reason::from_text("exited 1")),
        }),
        Event::Output(OutputLine {
            at: t,
            instance: busybox(),
            stream: OutputStream::Stderr,
            level: Level::Info,
            text: "oops".into(),
        }),
        Event::Warning(Warning {
            at: t,
            instance: None,
            text: "careful".into(),
        }),
        Event::TestCase(TestCaseFinished {
            at: t,
            instance: busybox(),
            name: "file exists".into(),
            file: Some("checks.bats".into()),
            line: Some(10),
            outcome: CaseOutcome::Failed,
            message: Some("[ -f /x ] failed".into()),
            output: "not ok 1".into(),
            duration: Some(Duration::from_millis(12)),
        }),
        Event::ResourceSample(ResourceSample {
            at: t,
            instance: busybox(),
            action: Action::Converge,
            peak_memory_bytes: Some(1 << 20),
            cpu_time: Some(Duration::from_millis(250)),
        }),
        Event::InstanceFinished(InstanceFinished {
            at: t,
            instance: busybox(),
            outcome: Outcome::Failed,
            last_action: Some(Action::Verify),
            duration: Duration::from_secs(3),
            reason: Some(Reason::from_text("1 of 2 tests failed")),
        }),
        Event::RunFinished(RunFinished {
            at: t,
            duration: Duration::from_secs(4),
            counts: Counts {
                instances: 1,
                failed: 1,
                ..Counts::default()
            },
            exit_code: 20,
        }),
    ];
    for e in events {
        let json = serde_json::to_string(&JsonRecord::new(e.clone())).unwrap();
        let back: JsonRecord =
            serde_json::from_str(&json).unwrap_or_else(|err| panic!("{json}: {err}"));
        assert_eq!(back.event, e, "{json}");
    }
}

#[test]
fn readers_ignore_fields_they_do_not_know() {
    let json = r#"{"v":1,"event":"warning","at":"2026-12-01T11:00:00Z","text":"x","new_field":3}"#;
    let r: JsonRecord = serde_json::from_str(json).unwrap();
    assert!(matches!(r.event, Event::Warning(w) if w.text == "x" && w.instance.is_none()));
}

#[test]
fn a_reason_is_the_first_line_and_the_rest() {
    let r = Reason::from_text("converge exited 3\nline two\nline three\n");
    assert_eq!(r.message, "converge exited 3");
    assert_eq!(r.detail.as_deref(), Some("line two\nline three"));
    assert_eq!(Reason::from_text("one").detail, None);
}

#[test]
fn counts_add_up_by_outcome() {
    let mut c = Counts::default();
    for o in [
        Outcome::Passed,
        Outcome::Failed,
        Outcome::Errored,
        Outcome::Passed,
        Outcome::Cancelled {
            cause: CancelReason::Interrupted,
        },
    ] {
        c.add(o);
    }
    assert_eq!(
        c,
        Counts {
            instances: 5,
            passed: 2,
            failed: 1,
            errored: 1,
            cancelled: 1
        }
    );
}

#[test]
fn the_bus_hands_every_event_to_every_reporter_in_order() {
    let (a, b) = (Recorder::default(), Recorder::default());
    let bus = EventBus::new();
    bus.subscribe(a.clone());
    bus.subscribe(b.clone());
    let out = bus.instance(busybox());
    out.line(OutputStream::Stdout, "one");
    out.warn("careful");
    out.line(OutputStream::Stderr, "two");
    assert_eq!(a.events(), b.events());
    let kinds: Vec<String> = a
        .events()
        .iter()
        .map(|e| match e {
            Event::Output(o) => format!("{}:{}", o.stream.as_str(), o.text),
            Event::Warning(w) => format!("warning:{}", w.text),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(kinds, ["stdout:one", "warning:careful", "stderr:two"]);
    assert!(a.events().iter().all(|e| e.instance() == Some(&busybox())));
}

#[test]
fn the_output_tail_keeps_the_last_lines_of_command_output_only() {
    let bus = EventBus::new();
    let out = bus.instance(busybox());
    out.info("not command output");
    for i in 0..OUTPUT_TAIL_LINES + 5 {
        out.line(OutputStream::Stdout, &format!("line {i}"));
    }
    let tail = out.take_tail();
    assert_eq!(tail.len(), OUTPUT_TAIL_LINES);
    assert_eq!(tail[0], "line 5");
    assert!(out.take_tail().is_empty(), "taking the tail empties it");
}

#[test]
fn finish_reaches_every_reporter_and_returns_the_first_error() {
    struct Failing(std::sync::Arc<std::sync::atomic::AtomicUsize>);
    impl Reporter for Failing {
        fn report(&mut self, _: &Event) {}
        fn finish(&mut self) -> crate::Result<()> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Err(crate::Error::Runtime {
                instance: String::new(),
                message: "cannot write".into(),
            })
        }
    }
    let calls = std::sync::Arc::default();
    let bus = EventBus::new();
    bus.subscribe(Failing(std::sync::Arc::clone(&calls)));
    bus.subscribe(Failing(std::sync::Arc::clone(&calls)));
    assert!(bus.finish().is_err());
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[test]
fn instance_ids_give_the_suite_platform_classname() {
    assert_eq!(busybox().classname(), "default.busybox");
    assert_eq!(busybox().to_string(), "default-busybox");
}

#[test]
fn splitter_yields_whole_lines_across_chunks() {
    let mut s = LineSplitter::default();
    let mut out = Vec::new();
    s.push(b"ab", |l| out.push(l.to_string()));
    s.push(b"c\r\nd\ne", |l| out.push(l.to_string()));
    assert_eq!(out, ["abc", "d"]);
    s.finish(|l| out.push(l.to_string()));
    assert_eq!(out, ["abc", "d", "e"]);
}
