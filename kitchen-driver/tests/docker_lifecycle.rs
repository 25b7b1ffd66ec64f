//! The lifecycle on the real Docker engine, through the library API: create, converge, setup,
//! verify, destroy, test with --destroy modes, concurrency, hooks, data uploads, retries, exec.
//! Every test removes what it created (drop guard) and asserts that nothing is left.

use kitchen_driver::Error;
use kitchen_driver::lifecycle::{Action, Command, DestroyMode, failure_summary};
use serde_json::json;
use test_support::{TestProject, busybox, instance, run, run_one, run_with_env};

const BOOTSTRAP: &str = "#!/bin/sh\nset -eu\nmkdir -p /etc/hello\necho \"greeting from $(hostname)\" > /etc/hello/hello.conf\necho \"converged TEST_KITCHEN=${TEST_KITCHEN:-unset} FOO=${FOO:-unset}\"\n";
const VERIFY: &str = "#!/bin/sh\nset -eu\ntest -f /etc/hello/hello.conf\ncat /tmp/kitchen/data/expected.txt\necho PASS\n";

fn example_project(label: &str) -> TestProject {
    let p = TestProject::new(label);
    p.write("test/integration/default/bootstrap.sh", BOOTSTRAP);
    p.write("test/integration/default/data/verify.sh", VERIFY);
    p.write(
        "test/integration/default/data/expected.txt",
        "expected-data\n",
    );
    p
}

fn kitchen_dir_entries(p: &TestProject) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(p.root().join(".kitchen"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn remote_verifier() -> serde_json::Value {
    json!({"name": "shell", "remote_exec": true, "command": "sh /tmp/kitchen/data/verify.sh"})
}

fn shell_no_sudo() -> serde_json::Value {
    json!({"name": "shell", "sudo": false})
}

#[tokio::test]
async fn passing_suite_runs_test_and_leaves_nothing() {
    let p = example_project("pass");
    let inst = instance(
        "default",
        "busybox",
        busybox(),
        shell_no_sudo(),
        remote_verifier(),
        json!({}),
    );
    let (outcomes, out) = run(&p, &[inst], Command::Test(DestroyMode::Passing), 1).await;
    assert!(
        outcomes[0].error.is_none(),
        "{:?}\n{out}",
        outcomes[0].error
    );
    assert!(failure_summary(&outcomes).is_none());
    assert!(
        out.contains("[default-busybox] -----> Creating <default-busybox>..."),
        "{out}"
    );
    assert!(
        out.contains("[default-busybox]        converged TEST_KITCHEN=1"),
        "{out}"
    );
    assert!(
        out.contains("[default-busybox]        expected-data"),
        "{out}"
    );
    assert!(out.contains("[default-busybox]        PASS"), "{out}");
    assert!(
        !p.state_exists("default-busybox"),
        "destroy deletes the state file"
    );
    let log = std::fs::read_to_string(p.root().join(".kitchen/logs/default-busybox.log")).unwrap();
    assert!(log.contains("converged TEST_KITCHEN=1"), "{log}");
    assert!(p.root().join(".kitchen/logs/kitchen.log").exists());
    assert_eq!(
        kitchen_dir_entries(&p),
        ["logs"],
        "no stale state or lock files"
    );
    p.assert_no_containers();
}

#[tokio::test]
async fn actions_follow_the_state_machine_and_record_state() {
    let p = example_project("fsm");
    p.write(
        "test/integration/default/bootstrap.sh",
        "#!/bin/sh\necho x >> /tmp/converge-count\necho \"count $(wc -l < /tmp/converge-count)\"\n",
    );
    let inst = instance(
        "default",
        "busybox",
        busybox(),
        shell_no_sudo(),
        json!({"name": "shell", "command": "true"}),
        json!({}),
    );
    let name = "default-busybox";

    let (o, _) = run_one(&p, &inst, Command::Action(Action::Create)).await;
    assert!(o[0].error.is_none(), "{:?}", o[0].error);
    let st = p.state(name);
    assert_eq!(st.last_action(), Some(Action::Create));
    assert_eq!(st.get_str("last_attempted_action"), Some("create"));
    let id = st
        .get_str("container_id")
        .expect("container_id recorded")
        .to_string();
    assert_eq!(p.containers(Some(name)), std::slice::from_ref(&id));

    // verify from created runs converge, setup, verify.
    let (o, out) = run_one(&p, &inst, Command::Action(Action::Verify)).await;
    assert!(o[0].error.is_none(), "{:?}", o[0].error);
    for verb in ["Converging", "Setting up", "Verifying"] {
        assert!(
            out.contains(&format!("-----> {verb} <{name}>")),
            "{verb}: {out}"
        );
    }
    assert!(!out.contains("-----> Creating"), "{out}");
    assert!(out.contains("count 1"), "{out}");
    assert_eq!(p.state(name).last_action(), Some(Action::Verify));

    // converge on a verified instance runs converge again, only.
    let (o, out) = run_one(&p, &inst, Command::Action(Action::Converge)).await;
    assert!(o[0].error.is_none(), "{:?}", o[0].error);
    assert!(out.contains("count 2"), "{out}");
    assert!(!out.contains("Verifying"), "{out}");
    assert_eq!(p.state(name).last_action(), Some(Action::Converge));
    assert_eq!(
        p.state(name).get_str("container_id"),
        Some(id.as_str()),
        "same container"
    );

    // exec runs in the instance; a failing command fails.
    let (o, out) = run_one(
        &p,
        &inst,
        Command::Exec("cat /tmp/converge-count | wc -l; echo on-$(hostname)".into()),
    )
    .await;
    assert!(o[0].error.is_none(), "{:?}", o[0].error);
    assert!(out.contains("on-default-busybox"), "{out}");
    let (o, _) = run_one(&p, &inst, Command::Exec("exit 7".into())).await;
    assert!(
        matches!(o[0].error, Some(Error::CommandFailed { exit_code: 7, .. })),
        "{:?}",
        o[0].error
    );

    let (o, _) = run_one(&p, &inst, Command::Action(Action::Destroy)).await;
    assert!(o[0].error.is_none(), "{:?}", o[0].error);
    assert!(!p.state_exists(name));
    p.assert_no_containers();

    // exec on a destroyed instance is a clear error.
    let (o, _) = run_one(&p, &inst, Command::Exec("true".into())).await;
    assert!(
        matches!(o[0].error, Some(Error::NotCreated { .. })),
        "{:?}",
        o[0].error
    );
}

#[tokio::test]
async fn converge_failure_keeps_the_instance_and_records_the_error() {
    let p = example_project("convfail");
    p.write(
        "test/integration/default/bootstrap.sh",
        "#!/bin/sh\necho about to fail\nexit 3\n",
    );
    let inst = instance(
        "default",
        "busybox",
        busybox(),
        shell_no_sudo(),
        remote_verifier(),
        json!({}),
    );
    let name = "default-busybox";
    let (o, out) = run_one(&p, &inst, Command::Test(DestroyMode::Passing)).await;
    assert!(
        matches!(o[0].error, Some(Error::CommandFailed { exit_code: 3, .. })),
        "{:?}",
        o[0].error
    );
    assert!(out.contains("about to fail"), "{out}");
    let summary = failure_summary(&o).unwrap();
    assert!(
        summary.starts_with("1 actions failed.\n>>>>>>     "),
        "{summary}"
    );
    let st = p.state(name);
    assert_eq!(st.last_action(), Some(Action::Create));
    assert_eq!(st.get_str("last_attempted_action"), Some("converge"));
    assert_eq!(st.last_error(), Some("Kitchen::ActionFailed"));
    assert_eq!(
        p.containers(Some(name)).len(),
        1,
        "--destroy passing keeps a failed instance"
    );

    let (o, _) = run_one(&p, &inst, Command::Action(Action::Destroy)).await;
    assert!(o[0].error.is_none(), "{:?}", o[0].error);
    p.assert_no_containers();
}

#[tokio::test]
async fn verify_failure_with_destroy_always_and_never() {
    let p = example_project("verifyfail");
    let failing = json!({"name": "shell", "remote_exec": true, "command": "echo checking; test -f /nonexistent"});
    let inst = instance(
        "default",
        "busybox",
        busybox(),
        shell_no_sudo(),
        failing,
        json!({}),
    );
    let name = "default-busybox";

    let (o, out) = run_one(&p, &inst, Command::Test(DestroyMode::Never)).await;
    assert!(
        matches!(o[0].error, Some(Error::VerifyFailed { .. })),
        "{:?}",
        o[0].error
    );
    assert!(out.contains("checking"), "{out}");
    let st = p.state(name);
    assert_eq!(st.last_action(), Some(Action::Setup));
    assert_eq!(st.get_str("last_attempted_action"), Some("verify"));
    assert_eq!(st.last_error(), Some("Kitchen::ActionFailed"));
    assert!(
        st.get_str("last_error_message")
            .unwrap()
            .contains("verify failed")
    );
    assert_eq!(
        p.containers(Some(name)).len(),
        1,
        "--destroy never keeps it"
    );

    let (o, _) = run_one(&p, &inst, Command::Test(DestroyMode::Always)).await;
    assert!(
        matches!(o[0].error, Some(Error::VerifyFailed { .. })),
        "{:?}",
        o[0].error
    );
    assert!(
        !p.state_exists(name),
        "--destroy always destroys after a failure"
    );
    p.assert_no_containers();
}

#[tokio::test]
async fn three_instances_concurrently() {
    let p = example_project("conc");
    let insts: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|s| {
            p.write(&format!("test/integration/{s}/bootstrap.sh"), &format!("#!/bin/sh\necho suite {s} on $(hostname)\n"));
            instance(s, "busybox", busybox(), shell_no_sudo(), json!({"name": "shell", "command": "test \"$KITCHEN_SUITE\" = \"${KITCHEN_INSTANCE%-busybox}\""}), json!({}))
        })
        .collect();
    let (o, out) = run(&p, &insts, Command::Test(DestroyMode::Passing), 3).await;
    for oc in &o {
        assert!(oc.error.is_none(), "{}: {:?}\n{out}", oc.instance, oc.error);
    }
    for s in ["a", "b", "c"] {
        assert!(
            out.contains(&format!("[{s}-busybox]        suite {s} on {s}-busybox")),
            "{out}"
        );
        assert!(!p.state_exists(&format!("{s}-busybox")));
    }
    assert_eq!(
        kitchen_dir_entries(&p),
        ["logs"],
        "no stale state or lock files"
    );
    p.assert_no_containers();
}

#[tokio::test]
async fn hooks_run_locally_and_remotely_with_filters() {
    let p = example_project("hooks");
    let lifecycle = json!({
        "pre_create": [
            {"local": "echo \"$KITCHEN_INSTANCE_NAME $KITCHEN_SUITE_NAME $KITCHEN_PLATFORM_NAME $HOOK_VAR\" > pre_create.txt", "environment": {"HOOK_VAR": "v1"}},
            {"remote": "echo never", "skippable": true},
            {"local": "touch excluded.txt", "excludes": ["busybox"]}
        ],
        "post_create": [{"remote": "echo created > /tmp/hook.txt"}],
        "post_converge": [
            {"local": "pwd > ../cwd.txt", "cwd": "sub"},
            {"remote": "exit 5", "skippable": true}
        ],
        "finally_verify": "echo finally >> finally.txt"
    });
    std::fs::create_dir_all(p.root().join("sub")).unwrap();
    let verifier =
        json!({"name": "shell", "remote_exec": true, "command": "grep created /tmp/hook.txt"});
    let inst = instance(
        "default",
        "busybox",
        busybox(),
        shell_no_sudo(),
        verifier,
        lifecycle,
    );
    let (o, out) = run_one(&p, &inst, Command::Test(DestroyMode::Passing)).await;
    assert!(o[0].error.is_none(), "{:?}\n{out}", o[0].error);
    let pre = std::fs::read_to_string(p.root().join("pre_create.txt")).unwrap();
    assert_eq!(pre.trim(), "default-busybox default busybox v1");
    assert!(!p.root().join("excluded.txt").exists());
    let cwd = std::fs::read_to_string(p.root().join("cwd.txt")).unwrap();
    assert!(cwd.trim().ends_with("/sub"), "{cwd}");
    assert_eq!(
        std::fs::read_to_string(p.root().join("finally.txt")).unwrap(),
        "finally\n"
    );
    assert!(out.contains("Skipping pre create hook"), "{out}");
    assert!(out.contains("Skippable post converge hook failed"), "{out}");

    // A failing pre hook fails its action, and the action body does not run.
    let lifecycle = json!({"pre_converge": ["exit 9"]});
    let inst = instance(
        "default",
        "busybox",
        busybox(),
        shell_no_sudo(),
        remote_verifier(),
        lifecycle,
    );
    let (o, out) = run_one(&p, &inst, Command::Test(DestroyMode::Always)).await;
    assert!(
        matches!(o[0].error, Some(Error::CommandFailed { exit_code: 9, .. })),
        "{:?}",
        o[0].error
    );
    assert!(!out.contains("converged TEST_KITCHEN"), "{out}");
    p.assert_no_containers();
}

#[tokio::test]
async fn data_uploads_downloads_arguments_and_tkenv() {
    let p = example_project("data");
    p.write("files/extra.txt", "extra-upload\n");
    p.write(
        "test/integration/default/bootstrap.sh",
        "#!/bin/sh\nset -eu\necho \"args: $*\"\necho \"FOO=$FOO\"\ncat /opt/up/extra.txt\nls /tmp/kitchen/data\nmkdir -p /out && echo result > /out/result.txt\n",
    );
    let prov = json!({
        "name": "shell", "sudo": false,
        "arguments": ["one", "two words"],
        "uploads": {"files/extra.txt": "/opt/up"},
        "downloads": {"/out/result.txt": "downloaded"}
    });
    let inst = instance(
        "default",
        "busybox",
        busybox(),
        prov,
        json!({"name": "shell"}),
        // Host commands see the runner's environment, hooks included.
        json!({"pre_converge": "echo \"$TKENV_FOO\" > hook-env.txt"}),
    );
    let (o, out) = run_with_env(
        &p,
        std::slice::from_ref(&inst),
        Command::Action(Action::Converge),
        1,
        &[("TKENV_FOO", "from-host")],
    )
    .await;
    assert!(o[0].error.is_none(), "{:?}\n{out}", o[0].error);
    assert!(out.contains("args: one two words"), "{out}");
    // TKENV values are secrets: the instance got the value (the line shows it was there), and
    // the output shows it redacted.
    assert!(out.contains("FOO=***"), "{out}");
    assert!(!out.contains("from-host"), "{out}");
    assert_eq!(
        std::fs::read_to_string(p.root().join("hook-env.txt")).unwrap(),
        "from-host\n"
    );
    assert!(out.contains("extra-upload"), "{out}");
    assert!(out.contains("expected.txt"), "{out}");
    assert!(out.contains("verify.sh"), "{out}");
    assert_eq!(
        std::fs::read_to_string(p.root().join("downloaded/result.txt")).unwrap(),
        "result\n"
    );
    let (o, _) = run_one(&p, &inst, Command::Action(Action::Destroy)).await;
    assert!(o[0].error.is_none());
    p.assert_no_containers();
}

#[tokio::test]
async fn retries_on_listed_exit_codes() {
    let p = example_project("retry");
    // Fails with 42 the first time, succeeds the second.
    p.write(
        "test/integration/default/bootstrap.sh",
        "#!/bin/sh\nif [ ! -f /tmp/tried ]; then touch /tmp/tried; echo first-try; exit 42; fi\necho second-try\n",
    );
    let prov = json!({"name": "shell", "sudo": false, "retry_on_exit_code": [42], "max_retries": 2, "wait_for_retry": 0});
    let inst = instance(
        "default",
        "busybox",
        busybox(),
        prov,
        json!({"name": "shell"}),
        json!({}),
    );
    let (o, out) = run_one(&p, &inst, Command::Test(DestroyMode::Always)).await;
    assert!(o[0].error.is_none(), "{:?}\n{out}", o[0].error);
    assert!(
        out.contains("first-try") && out.contains("second-try"),
        "{out}"
    );
    assert!(out.contains("Retryable exit code 42"), "{out}");

    // Not listed: no retry.
    let prov = json!({"name": "shell", "sudo": false, "retry_on_exit_code": [1], "max_retries": 2, "wait_for_retry": 0});
    let inst = instance(
        "default",
        "busybox",
        busybox(),
        prov,
        json!({"name": "shell"}),
        json!({}),
    );
    let (o, out) = run_one(&p, &inst, Command::Test(DestroyMode::Always)).await;
    assert!(
        matches!(o[0].error, Some(Error::CommandFailed { exit_code: 42, .. })),
        "{:?}",
        o[0].error
    );
    assert!(!out.contains("second-try"), "{out}");
    p.assert_no_containers();
}
