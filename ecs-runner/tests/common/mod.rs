//! Helpers for the tests against the real peers: moto (the AWS API, started by
//! `scripts/setup-host` on 127.0.0.1:5005, or `KITCHEN_MOTO_PORT`) and the Docker engine.
//!
//! Everything a test creates is named with [`unique_name`] and removed by a drop guard, even
//! when the test fails.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// A name no other test or process uses: `ecstest-<pid>-<n>-<label>`.
pub fn unique_name(label: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("ecstest-{}-{n}-{label}", std::process::id())
}

/// moto's endpoint.
pub fn moto_url() -> String {
    let port = std::env::var("KITCHEN_MOTO_PORT").unwrap_or_else(|_| "5005".into());
    format!("http://127.0.0.1:{port}")
}

/// The environment that points the SDK (and the binary) at moto with dummy credentials.
pub fn moto_env() -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", moto_url()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_CONFIG_FILE", "/dev/null".into()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".into()),
    ]
}

/// An ECS and a CloudWatch Logs client on moto.
pub async fn clients() -> (aws_sdk_ecs::Client, aws_sdk_cloudwatchlogs::Client) {
    let creds = aws_sdk_ecs::config::Credentials::new("test", "test", None, None, "tests");
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(moto_url())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(creds)
        .load()
        .await;
    (
        aws_sdk_ecs::Client::new(&conf),
        aws_sdk_cloudwatchlogs::Client::new(&conf),
    )
}

/// An EC2 Query API call on moto through curl (the EC2 SDK is not worth its build here).
fn ec2(params: &[(&str, &str)]) -> String {
    let mut cmd = Command::new("curl");
    cmd.args(["-sf", "-X", "POST", &format!("{}/", moto_url())]).args([
        "-H",
        "Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=x",
    ]);
    for (k, v) in params.iter().chain(&[("Version", "2016-11-15")]) {
        cmd.args(["--data-urlencode", &format!("{k}={v}")]);
    }
    let out = cmd.output().expect("curl runs");
    assert!(out.status.success(), "EC2 {params:?} failed: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn xml_value(xml: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = xml
        .find(&open)
        .unwrap_or_else(|| panic!("no <{tag}> in {xml}"))
        + open.len();
    let end = xml[start..].find('<').unwrap() + start;
    xml[start..end].to_owned()
}

/// moto's task state machine (`ecs::task`), which is global to the server: tests that change
/// it run one at a time (the `moto-state` nextest group) and restore it when dropped.
pub struct Transitions;

impl Transitions {
    /// Tasks stay RUNNING until [`Transitions::stop_all`].
    pub fn hold() -> Self {
        moto_api(
            "set-transition",
            r#"{"model_name": "ecs::task", "transition": {"progression": "manual", "times": 1000000}}"#,
        );
        Transitions
    }

    /// Tasks stop at their next DescribeTasks.
    pub fn stop_all(&self) {
        moto_api(
            "set-transition",
            r#"{"model_name": "ecs::task", "transition": {"progression": "immediate"}}"#,
        );
    }
}

impl Drop for Transitions {
    fn drop(&mut self) {
        moto_api("unset-transition", r#"{"model_name": "ecs::task"}"#);
    }
}

fn moto_api(action: &str, body: &str) {
    let out = Command::new("curl")
        .args([
            "-sf",
            "-X",
            "POST",
            &format!("{}/moto-api/state-manager/{action}", moto_url()),
            "-d",
            body,
        ])
        .output()
        .expect("curl runs");
    assert!(out.status.success(), "moto-api {action}: {out:?}");
}

/// A cluster with one EC2 container instance (moto runs EC2 launch-type tasks only), removed
/// with everything in it when dropped.
pub struct Cluster {
    /// The cluster's name.
    pub name: String,
    instance_id: Option<String>,
    container_instance: Option<String>,
}

impl Cluster {
    /// An empty cluster (no capacity: RunTask places nothing).
    pub async fn empty(label: &str) -> Self {
        let (ecs, _) = clients().await;
        let name = unique_name(label);
        ecs.create_cluster()
            .cluster_name(&name)
            .send()
            .await
            .expect("CreateCluster");
        Self {
            name,
            instance_id: None,
            container_instance: None,
        }
    }

    /// A cluster with one container instance (4096 CPU units, 7482 MiB in moto).
    pub async fn with_capacity(label: &str) -> Self {
        let mut c = Self::empty(label).await;
        let image = xml_value(&ec2(&[("Action", "DescribeImages")]), "imageId");
        let run = ec2(&[
            ("Action", "RunInstances"),
            ("ImageId", &image),
            ("MinCount", "1"),
            ("MaxCount", "1"),
            ("InstanceType", "m5.4xlarge"),
        ]);
        let instance_id = xml_value(&run, "instanceId");
        c.instance_id = Some(instance_id.clone());
        let doc = serde_json::json!({
            "instanceId": instance_id, "region": "us-east-1", "availabilityZone": "us-east-1a",
            "instanceType": "m5.4xlarge", "imageId": image, "privateIp": "10.0.0.1",
            "accountId": "123456789012", "architecture": "x86_64"
        });
        let (ecs, _) = clients().await;
        let out = ecs
            .register_container_instance()
            .cluster(&c.name)
            .instance_identity_document(doc.to_string())
            .send()
            .await
            .expect("RegisterContainerInstance");
        c.container_instance = out
            .container_instance()
            .and_then(|ci| ci.container_instance_arn())
            .map(str::to_owned);
        c
    }

    /// Every task of the cluster (any status).
    pub async fn tasks(&self) -> Vec<aws_sdk_ecs::types::Task> {
        let (ecs, _) = clients().await;
        let mut arns = Vec::new();
        for status in [
            aws_sdk_ecs::types::DesiredStatus::Running,
            aws_sdk_ecs::types::DesiredStatus::Stopped,
        ] {
            let out = ecs
                .list_tasks()
                .cluster(&self.name)
                .desired_status(status)
                .send()
                .await
                .expect("ListTasks");
            arns.extend(out.task_arns().iter().cloned());
        }
        arns.sort();
        arns.dedup();
        let mut tasks = Vec::new();
        for chunk in arns.chunks(100) {
            let out = ecs
                .describe_tasks()
                .cluster(&self.name)
                .set_tasks(Some(chunk.to_vec()))
                .send()
                .await
                .expect("DescribeTasks");
            tasks.extend(out.tasks().iter().cloned());
        }
        tasks
    }

    /// The task ARNs of the cluster without describing them (ListTasks does not advance
    /// moto's state machine).
    pub async fn task_arns(&self) -> Vec<String> {
        let (ecs, _) = clients().await;
        let out = ecs
            .list_tasks()
            .cluster(&self.name)
            .send()
            .await
            .expect("ListTasks");
        out.task_arns().to_vec()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let name = self.name.clone();
        let ci = self.container_instance.take();
        let instance = self.instance_id.take();
        // Drop cannot be async: clean up on a runtime of our own, on its own thread (the test's
        // runtime may be the current one).
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let (ecs, _) = clients().await;
                if let Ok(out) = ecs.list_tasks().cluster(&name).send().await {
                    for arn in out.task_arns() {
                        let _ = ecs.stop_task().cluster(&name).task(arn).send().await;
                    }
                }
                if let Some(ci) = ci {
                    let _ = ecs
                        .deregister_container_instance()
                        .cluster(&name)
                        .container_instance(ci)
                        .force(true)
                        .send()
                        .await;
                }
                let _ = ecs.delete_cluster().cluster(&name).send().await;
            });
            if let Some(i) = instance {
                let _ = std::panic::catch_unwind(|| {
                    ec2(&[("Action", "TerminateInstances"), ("InstanceId.1", &i)])
                });
            }
        })
        .join()
        .ok();
    }
}

/// A kitchen project in a temporary directory; its task definitions are deregistered when
/// dropped (`ecs-runner cleanup` on moto).
pub struct Project {
    /// The directory.
    pub dir: tempfile::TempDir,
    /// The cluster its cleanup targets.
    pub cluster: Option<String>,
}

impl Project {
    /// A project with `kitchen.yml` and the given files.
    pub fn new(kitchen_yml: &str, files: &[(&str, &str)]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(&unique_name("proj"))
            .tempdir()
            .unwrap();
        std::fs::write(dir.path().join("kitchen.yml"), kitchen_yml).unwrap();
        for (p, text) in files {
            let path = dir.path().join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
        }
        Self { dir, cluster: None }
    }

    /// The project directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `ecs-runner ARGS` in the project, pointed at moto.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin());
        cmd.current_dir(self.path()).args(args).envs(moto_env());
        cmd
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        if let Some(c) = &self.cluster {
            let _ = self.command(&["cleanup", "--cluster", c]).output();
        }
    }
}

/// Runs `ecs-runner ARGS` in `dir` (no moto settings: `--local` and offline commands) to its
/// end.
pub fn ecs_runner_in(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(bin())
        .current_dir(dir)
        .args(args)
        .output()
        .expect("ecs-runner starts")
}

/// `n` bytes gzip cannot shrink (xorshift), so a bundle carrying them stays over ECS's
/// 64 KiB limit for an inline bundle.
pub fn incompressible(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// The ecs-runner binary built for these tests.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ecs-runner"))
}

/// The awslogs stream of a task in the default settings.
pub fn stream_of(task_arn: &str) -> String {
    format!("kitchen/kitchen/{}", task_arn.rsplit('/').next().unwrap())
}

/// Writes `lines` as the log events of a task's stream (moto's tasks write none).
pub async fn write_logs(group: &str, stream: &str, lines: &[String]) {
    let (_, logs) = clients().await;
    let _ = logs.create_log_group().log_group_name(group).send().await;
    let _ = logs
        .create_log_stream()
        .log_group_name(group)
        .log_stream_name(stream)
        .send()
        .await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let events: Vec<_> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(now + i as i64)
                .message(l)
                .build()
                .unwrap()
        })
        .collect();
    logs.put_log_events()
        .log_group_name(group)
        .log_stream_name(stream)
        .set_log_events(Some(events))
        .send()
        .await
        .expect("PutLogEvents");
}

/// Deletes a log group (a test's own).
pub async fn delete_log_group(group: &str) {
    let (_, logs) = clients().await;
    let _ = logs.delete_log_group().log_group_name(group).send().await;
}

/// The registry `scripts/setup-host` runs for image bundles (Registry HTTP API V2, no auth).
pub fn registry_host() -> String {
    let port = std::env::var("KITCHEN_REGISTRY_PORT").unwrap_or_else(|_| "5055".into());
    format!("127.0.0.1:{port}")
}

/// A namespace of the test registry for one test: `ecs.registry` is `host/<namespace>`. When
/// dropped, every manifest the test pushed there is deleted (the registry keeps the blobs
/// until its garbage collector runs) and every local image labelled with `project` removed.
pub struct RegistryNamespace {
    /// `host/namespace`, the value of `ecs.registry`.
    pub registry: String,
    repository: String,
    project: PathBuf,
}

impl RegistryNamespace {
    /// A fresh namespace for the project at `project`.
    pub fn new(project: &Path) -> Self {
        let namespace = unique_name("reg");
        Self {
            registry: format!("{}/{namespace}", registry_host()),
            repository: format!("{namespace}/kitchen-ecs-bundles"),
            project: project.to_path_buf(),
        }
    }

    /// The tags the registry holds in this namespace's bundle repository.
    pub fn tags(&self) -> Vec<String> {
        let out = Command::new("curl")
            .args([
                "-s",
                &format!(
                    "http://{}/v2/{}/tags/list",
                    registry_host(),
                    self.repository
                ),
            ])
            .output()
            .expect("curl");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        v["tags"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Local images labelled with the project (there must be none after a run).
    pub fn local_images(&self) -> Vec<String> {
        let out = Command::new("docker")
            .args([
                "images",
                "-q",
                "--filter",
                &format!("label=kitchen.ecs.project={}", self.project.display()),
            ])
            .output()
            .expect("docker images");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for RegistryNamespace {
    fn drop(&mut self) {
        for tag in self.tags() {
            let url = format!(
                "http://{}/v2/{}/manifests/",
                registry_host(),
                self.repository
            );
            let head = Command::new("curl")
                .args([
                    "-sI",
                    "-H",
                    "Accept: application/vnd.docker.distribution.manifest.v2+json",
                    &format!("{url}{tag}"),
                ])
                .output();
            let Ok(head) = head else { continue };
            let digest = String::from_utf8_lossy(&head.stdout).lines().find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("docker-content-digest:")
                    .map(|d| d.trim().to_owned())
            });
            if let Some(d) = digest {
                let _ = Command::new("curl")
                    .args(["-s", "-X", "DELETE", &format!("{url}{d}")])
                    .output();
            }
        }
        for id in self.local_images() {
            let _ = Command::new("docker").args(["rmi", "-f", &id]).output();
        }
    }
}
