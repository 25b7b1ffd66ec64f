//! ecs-runner against moto, the AWS API server `scripts/setup-host` starts on 127.0.0.1:
//! registration and reuse, RunTask, DescribeTasks batching, log tailing (the tests write the
//! log events themselves: moto's tasks create none), StopTask on interrupt and timeout,
//! placement failures and `cleanup`.
//!
//! moto runs tasks on the EC2 launch type only (see `shared/reference/ecs-here.md`), so every
//! project here sets `launch_type: EC2`; the FARGATE request shape is tested at the request
//! level in `src/ecs.rs`. Tests that change moto's global task state machine run one at a time
//! (the `moto-state` group in `.config/nextest.toml`).

mod common;

use std::process::{Child, Stdio};
use std::time::Duration;

use common::{
    Cluster, Project, Transitions, clients, delete_log_group, incompressible, stream_of, write_logs,
};

fn yaml(log_group: &str, suites: &[&str], platforms: &[&str], verifier: &str) -> String {
    format!(
        "driver: {{name: docker, image: \"kitchen/busybox:latest\"}}\n\
         provisioner: {{name: shell, sudo: false, command: 'echo converge'}}\n\
         verifier: {verifier}\n\
         ecs: {{launch_type: EC2, cpu: 16, memory: 64, log_group: \"{log_group}\"}}\n\
         platforms: [{}]\nsuites: [{}]\n",
        platforms
            .iter()
            .map(|p| format!("{{name: {p}}}"))
            .collect::<Vec<_>>()
            .join(", "),
        suites
            .iter()
            .map(|s| format!("{{name: {s}}}"))
            .collect::<Vec<_>>()
            .join(", "),
    )
}

/// What a task's entrypoint prints for a passing converge and a bats file with these results.
fn transcript(instance: &str, bats: &[(&str, bool)]) -> Vec<String> {
    let m = "##kitchen-ecs##";
    let mut v = vec![
        format!("{m} phase converge"),
        format!("converged {instance}"),
        format!("{m} end converge 0"),
        format!("{m} phase verify"),
        format!("{m} tap t.bats"),
        format!("1..{}", bats.len()),
    ];
    let mut failed = false;
    for (i, (name, ok)) in bats.iter().enumerate() {
        v.push(format!(
            "{}ok {} {name}",
            if *ok { "" } else { "not " },
            i + 1
        ));
        failed |= !ok;
    }
    let code = i32::from(failed);
    v.push(format!("{m} end tap t.bats {code}"));
    v.push(format!("{m} end verify {code}"));
    v.push(format!("{m} done {code}"));
    v
}

fn spawn(project: &Project, args: &[&str]) -> Child {
    project
        .command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ecs-runner starts")
}

async fn wait_for_tasks(cluster: &Cluster, n: usize) -> Vec<String> {
    // No timed assertion: nextest's slow-timeout ends a test that never gets there.
    loop {
        let arns = cluster.task_arns().await;
        if arns.len() >= n {
            return arns;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The instance a task runs, from its task definition family (`kitchen-<hash>-<instance>`).
async fn instance_of(cluster: &Cluster, arn: &str) -> String {
    let (ecs, _) = clients().await;
    // DescribeTasks advances moto's state machine; held tasks do not move.
    let out = ecs
        .describe_tasks()
        .cluster(&cluster.name)
        .tasks(arn)
        .send()
        .await
        .unwrap();
    let td = out.tasks()[0].task_definition_arn().unwrap().to_owned();
    let family = td.rsplit('/').next().unwrap().split(':').next().unwrap();
    family.splitn(3, '-').nth(2).unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_of_25_instances_registers_starts_waits_tails_logs_and_reports() {
    let cluster = Cluster::with_capacity("run25").await;
    let group = format!("/{}", common::unique_name("logs"));
    let suites = ["s1", "s2", "s3", "s4", "s5"];
    let platforms = ["p1", "p2", "p3", "p4", "p5"];
    let mut project = Project::new(
        &yaml(&group, &suites, &platforms, "{name: bats}"),
        &suites
            .iter()
            .map(|s| {
                (
                    Box::leak(format!("test/integration/{s}/bats/t.bats").into_boxed_str()) as &str,
                    "@test t { true; }\n",
                )
            })
            .collect::<Vec<_>>(),
    );
    project.cluster = Some(cluster.name.clone());
    let junit = project.path().join("junit.xml");
    let transitions = Transitions::hold();
    let child = spawn(
        &project,
        &[
            "run",
            "--cluster",
            &cluster.name,
            "--format",
            "json",
            "--junit",
            junit.to_str().unwrap(),
        ],
    );
    let arns = wait_for_tasks(&cluster, 25).await;
    assert_eq!(arns.len(), 25, "exactly one task per instance");
    for arn in &arns {
        let instance = instance_of(&cluster, arn).await;
        let failing = instance == "s3-p4";
        let lines = transcript(&instance, &[("works", true), ("checks", !failing)]);
        write_logs(&group, &stream_of(arn), &lines).await;
    }
    transitions.stop_all();
    let out = child.wait_with_output().unwrap();
    delete_log_group(&group).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(20),
        "one instance failed a test:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let count = |kind: &str| events.iter().filter(|e| e["event"] == kind).count();
    // Registered: one new task definition per instance (their families are new).
    assert_eq!(stdout.matches(" (registered)").count(), 25, "{stdout}");
    assert_eq!(count("instance_started"), 25);
    assert_eq!(count("instance_finished"), 25);
    assert_eq!(count("test_case"), 50);
    // Every task's own log lines came back through GetLogEvents, each under its instance.
    for s in suites {
        for p in platforms {
            let instance = format!("{s}-{p}");
            assert!(
                events.iter().any(|e| e["event"] == "output"
                    && e["instance"]["name"] == instance.as_str()
                    && e["text"] == format!("converged {instance}").as_str()),
                "no log line of {instance}"
            );
        }
    }
    let failed: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["event"] == "instance_finished" && e["outcome"] != "passed")
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["instance"]["name"], "s3-p4");
    assert_eq!(failed[0]["outcome"], "failed");
    assert!(
        failed[0]["reason"]["message"]
            .as_str()
            .unwrap()
            .contains("checks"),
        "{:?}",
        failed[0]
    );
    let finished = events.last().unwrap();
    assert_eq!(finished["event"], "run_finished");
    assert_eq!(
        (
            finished["counts"]["passed"].as_u64(),
            finished["counts"]["failed"].as_u64()
        ),
        (Some(24), Some(1))
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testsuite ").count(), 25, "{xml}");
    assert!(
        xml.contains(r#"<testcase name="checks" classname="s3.p4""#),
        "{xml}"
    );
    // Nothing is left running.
    assert!(
        cluster
            .tasks()
            .await
            .iter()
            .all(|t| t.last_status() == Some("STOPPED"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_run_leaves_every_task_it_started_stopped() {
    let cluster = Cluster::with_capacity("sigint").await;
    let group = format!("/{}", common::unique_name("logs"));
    let mut project = Project::new(
        &yaml(&group, &["a", "b"], &["p1", "p2", "p3"], "{name: shell}"),
        &[],
    );
    project.cluster = Some(cluster.name.clone());
    let _transitions = Transitions::hold();
    let child = spawn(&project, &["run", "--cluster", &cluster.name]);
    wait_for_tasks(&cluster, 6).await;
    rustix_kill(child.id(), "INT");
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(130), "{stdout}");
    let tasks = cluster.tasks().await;
    assert_eq!(tasks.len(), 6);
    for t in &tasks {
        assert_eq!(t.last_status(), Some("STOPPED"), "{t:?}");
        assert!(
            t.stopped_reason()
                .unwrap_or_default()
                .contains("interrupted"),
            "{t:?}"
        );
    }
    assert!(
        stdout.contains("stopped the tasks of 6 instance(s)"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_timeout_stops_the_task_and_fails_the_instance() {
    let cluster = Cluster::with_capacity("timeout").await;
    let group = format!("/{}", common::unique_name("logs"));
    let mut project = Project::new(&yaml(&group, &["a"], &["p"], "{name: shell}"), &[]);
    project.cluster = Some(cluster.name.clone());
    let _transitions = Transitions::hold();
    let out = project
        .command(&["run", "--cluster", &cluster.name, "--timeout", "1"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(20), "{stdout}");
    assert!(stdout.contains("--timeout of 1s elapsed"), "{stdout}");
    let tasks = cluster.tasks().await;
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].last_status(), Some("STOPPED"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unchanged_rerun_registers_nothing_and_cleanup_deregisters() {
    let cluster = Cluster::with_capacity("rerun").await;
    let group = format!("/{}", common::unique_name("logs"));
    let project = Project::new(&yaml(&group, &["a", "b"], &["p"], "{name: shell}"), &[]);
    let run = || {
        project
            .command(&["run", "--cluster", &cluster.name])
            .output()
            .unwrap()
    };
    let first = run();
    let first_out = String::from_utf8_lossy(&first.stdout);
    assert_eq!(first.status.code(), Some(0), "{first_out}");
    assert_eq!(first_out.matches("(registered)").count(), 2, "{first_out}");
    let second = run();
    let second_out = String::from_utf8_lossy(&second.stdout);
    assert_eq!(second.status.code(), Some(0), "{second_out}");
    assert_eq!(
        second_out.matches("(registered)").count(),
        0,
        "{second_out}"
    );
    assert_eq!(
        second_out.matches("(unchanged, reused)").count(),
        2,
        "{second_out}"
    );
    let cleanup = project
        .command(&["cleanup", "--cluster", &cluster.name])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&cleanup.stdout);
    assert!(
        text.contains("deregistered 2 task definition revision(s)"),
        "{text}"
    );
    let (ecs, _) = clients().await;
    let families = ecs
        .list_task_definitions()
        .family_prefix(
            first_out
                .split("task-definition/")
                .nth(1)
                .unwrap()
                .split(':')
                .next()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert!(families.task_definition_arns().is_empty(), "{families:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn placement_that_never_succeeds_is_retried_then_an_infrastructure_error() {
    // moto drops a task that does not fit without a failure (and answers an empty cluster
    // with HTTP 500): a task larger than the only container instance is never placed.
    let cluster = Cluster::with_capacity("noplace").await;
    let group = format!("/{}", common::unique_name("logs"));
    let mut project = Project::new(
        &yaml(&group, &["a"], &["p"], "{name: shell}").replace("memory: 64", "memory: 60000"),
        &[],
    );
    project.cluster = Some(cluster.name.clone());
    let out = project
        .command(&["run", "--cluster", &cluster.name])
        .env("ECS_RUNNER_PLACEMENT_BACKOFF_MS", "10")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(ecs_runner::EXIT_INFRASTRUCTURE),
        "{stdout}"
    );
    assert_eq!(stdout.matches("retrying in").count(), 5, "{stdout}");
    assert!(
        stdout.contains("placement failed after 6 attempt(s)"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fargate_project_without_subnets_is_refused_before_any_call() {
    let project = Project::new(
        "driver: {name: docker, image: busybox}\nprovisioner: {name: shell, command: 'true'}\nverifier: {name: shell}\nplatforms: [{name: p}]\nsuites: [{name: s}]\n",
        &[],
    );
    let out = project
        .command(&["run", "--cluster", "nowhere"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("FARGATE tasks need `subnets`"), "{stderr}");
}

fn rustix_kill(pid: u32, sig: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_bundle_is_registered_by_digest_and_an_unchanged_rerun_repeats_nothing() {
    let cluster = Cluster::with_capacity("image").await;
    let group = format!("/{}", common::unique_name("logs"));
    let mut project = Project::new("", &[]);
    project.cluster = Some(cluster.name.clone());
    let registry = common::RegistryNamespace::new(project.path());
    std::fs::create_dir_all(project.path().join("data")).unwrap();
    std::fs::write(
        project.path().join("data/big.bin"),
        incompressible(96 * 1024),
    )
    .unwrap();
    let yml = yaml(&group, &["big"], &["p"], "{name: shell}")
        .replace(
            "command: 'echo converge'",
            "data_path: data, command: 'true'",
        )
        .replace(
            "ecs: {",
            &format!("ecs: {{registry: \"{}\", ", registry.registry),
        );
    std::fs::write(project.path().join("kitchen.yml"), yml).unwrap();
    let run = || {
        let out = project
            .command(&["run", "--cluster", &cluster.name])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let first = run();
    let prefix = format!("{}/kitchen-ecs-bundles@sha256:", registry.registry);
    let image = first
        .split_whitespace()
        .find(|w| w.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no digest reference: {first}"))
        .to_owned();
    assert!(
        first.contains(&format!("bundle image {image} (built and pushed)")),
        "{first}"
    );
    assert_eq!(first.matches("(registered)").count(), 1, "{first}");
    // The registered definition runs the image by digest.
    let (ecs, _) = clients().await;
    let td_arn = first
        .split_whitespace()
        .find(|w| w.contains(":task-definition/"))
        .unwrap()
        .to_owned();
    let td = ecs
        .describe_task_definition()
        .task_definition(&td_arn)
        .send()
        .await
        .unwrap();
    let c = &td.task_definition().unwrap().container_definitions()[0];
    assert_eq!(c.image(), Some(image.as_str()));
    assert!(c.environment().is_empty(), "no inline bundle: {c:?}");

    // The same content: the registry already has the image, the definition is the same.
    let second = run();
    assert!(
        second.contains(&format!(
            "bundle image {image} (unchanged, reused from the registry)"
        )),
        "{second}"
    );
    assert_eq!(second.matches("(registered)").count(), 0, "{second}");
    assert_eq!(second.matches("(unchanged, reused)").count(), 1, "{second}");
    assert_eq!(registry.tags().len(), 1, "one image, pushed once");
    assert!(registry.local_images().is_empty(), "no local build left");
    delete_log_group(&group).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ecr_repositories_and_credentials_come_from_the_ecr_api() {
    use ecs_runner::image::{Registry, ecr};
    let creds = aws_sdk_ecr::config::Credentials::new("test", "test", None, None, "tests");
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(common::moto_url())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(creds)
        .load()
        .await;
    let client = aws_sdk_ecr::Client::new(&conf);
    let namespace = common::unique_name("ecr");
    let registry = Registry::parse(
        "i",
        &format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/{namespace}"),
    )
    .unwrap();
    assert!(registry.ecr.is_some());
    // Removed whatever happens below.
    struct Repo(aws_sdk_ecr::Client, String);
    impl Drop for Repo {
        fn drop(&mut self) {
            let (client, name) = (self.0.clone(), self.1.clone());
            std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(async {
                        let _ = client
                            .delete_repository()
                            .repository_name(name)
                            .force(true)
                            .send()
                            .await;
                    })
            })
            .join()
            .ok();
        }
    }
    let _repo = Repo(client.clone(), registry.repository());
    assert!(ecr::ensure_repository(&client, &registry).await.unwrap());
    assert!(!ecr::ensure_repository(&client, &registry).await.unwrap());
    let listed = client
        .describe_repositories()
        .repository_names(registry.repository())
        .send()
        .await
        .unwrap();
    assert_eq!(
        listed.repositories()[0].repository_name(),
        Some(format!("{namespace}/kitchen-ecs-bundles").as_str())
    );
    let c = ecr::credentials(&client, &registry).await.unwrap();
    assert_eq!(c.username.as_deref(), Some("AWS"));
    assert!(!c.password.unwrap_or_default().is_empty());
    assert!(
        c.serveraddress
            .unwrap_or_default()
            .starts_with("https://123456789012.dkr.ecr.us-east-1.amazonaws.com"),
    );
}
