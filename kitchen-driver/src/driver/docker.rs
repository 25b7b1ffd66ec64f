//! The Docker driver (`driver: {name: docker}`), over the engine API through bollard.
//!
//! Keys, as kitchen-docker and kitchen-dokken users write them: `image`, `dockerfile` (with
//! `build_args`; built once per content and tagged `kitchen-driver-build:<hash>`),
//! `privileged`, `cap_add`, `cap_drop`, `volumes`, `tmpfs`, `env`, `hostname`, `run_command`,
//! `memory`, `cpus`, `user`, `forward`, `network_mode` (default `none`), `labels`,
//! `ready_timeout` (seconds, default 60).
//!
//! Containers are named `kitchen-<hash of kitchen_root>-<instance>` and carry the labels
//! [`LABEL_PROJECT`] and [`LABEL_INSTANCE`], so the driver finds what it owns even when a state
//! file was lost. The API version is negotiated with the engine, never pinned.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::exec::{CreateExecOptions, ResizeExecOptions, StartExecOptions, StartExecResults};
use bollard::models::{ContainerCreateBody, HostConfig, HostConfigCgroupnsModeEnum, PortBinding};
use bollard::query_parameters::{
    BuildImageOptions, CreateContainerOptions, DownloadFromContainerOptions, ListContainersOptions,
    LogsOptions, RemoveContainerOptions, StartContainerOptions, UploadToContainerOptions,
};
use futures::StreamExt;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use super::{
    Connection, Driver, DriverContext, ExecOutput, ExecRequest, LoginCommand, TarBuilder, Target,
    TtySession, parse_block,
};
use crate::config::PluginConfig;
use crate::error::{Error, Result};
use crate::report::{LineSplitter, NullSink, OutputSink, OutputStream};
use crate::state::State;

/// Label holding the project directory (`kitchen_root`) on every container the driver creates.
pub const LABEL_PROJECT: &str = "io.kitchen-driver.project";
/// Label holding the instance name on every container the driver creates.
pub const LABEL_INSTANCE: &str = "io.kitchen-driver.instance";

/// The default `run_command`: keeps the container alive in busybox and Debian alike and stops
/// at once on SIGTERM.
pub const KEEP_ALIVE: &str = "trap exit TERM; while :; do sleep 3600 & wait; done";

/// A string or a list of strings (kitchen-docker accepts both for most list keys).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(untagged)]
enum OneOrMany {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::None => Vec::new(),
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// A list of `K=V` strings or a map.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(untagged)]
enum EnvSpec {
    #[default]
    None,
    One(String),
    List(Vec<String>),
    Map(BTreeMap<String, serde_json::Value>),
}

impl EnvSpec {
    fn into_vec(self) -> Vec<String> {
        match self {
            EnvSpec::None => Vec::new(),
            EnvSpec::One(s) => vec![s],
            EnvSpec::List(v) => v,
            EnvSpec::Map(m) => m
                .into_iter()
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) => format!("{k}={s}"),
                    other => format!("{k}={other}"),
                })
                .collect(),
        }
    }
}

/// A string or a number (`memory: 512m` or `memory: 536870912`, `forward: 80`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
enum StrOrNum {
    Str(String),
    Num(serde_json::Number),
}

impl StrOrNum {
    fn text(&self) -> String {
        match self {
            StrOrNum::Str(s) => s.clone(),
            StrOrNum::Num(n) => n.to_string(),
        }
    }
}

/// `tmpfs` as a list of `PATH[:OPTIONS]` or a map PATH -> OPTIONS.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(untagged)]
enum TmpfsSpec {
    #[default]
    None,
    One(String),
    List(Vec<String>),
    Map(BTreeMap<String, String>),
}

/// The typed `driver:` block.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
struct DockerConfig {
    image: Option<String>,
    dockerfile: Option<String>,
    build_args: BTreeMap<String, StrOrNum>,
    privileged: bool,
    cap_add: OneOrMany,
    cap_drop: OneOrMany,
    volumes: OneOrMany,
    tmpfs: TmpfsSpec,
    env: EnvSpec,
    hostname: Option<String>,
    run_command: Option<String>,
    memory: Option<StrOrNum>,
    cpus: Option<f64>,
    user: Option<String>,
    forward: Vec<StrOrNum>,
    network_mode: Option<String>,
    labels: BTreeMap<String, StrOrNum>,
    ready_timeout: Option<u64>,
}

/// One published port: `[host_ip:][host_port:]container_port[/proto]`.
#[derive(Debug, Clone, PartialEq)]
struct Forward {
    host_ip: Option<String>,
    host_port: Option<String>,
    container: String,
}

fn parse_forward(spec: &str) -> Option<Forward> {
    let (ports, proto) = match spec.split_once('/') {
        Some((p, proto)) => (p, proto),
        None => (spec, "tcp"),
    };
    let parts: Vec<&str> = ports.split(':').collect();
    let (host_ip, host_port, container) = match parts.as_slice() {
        [c] => (None, None, *c),
        [h, c] => (None, Some(*h), *c),
        [ip, h, c] => (Some(*ip), Some(*h), *c),
        _ => return None,
    };
    if container.parse::<u16>().is_err()
        || host_port.is_some_and(|h| !h.is_empty() && h.parse::<u16>().is_err())
    {
        return None;
    }
    Some(Forward {
        host_ip: host_ip.map(str::to_string),
        host_port: host_port.filter(|h| !h.is_empty()).map(str::to_string),
        container: format!("{container}/{proto}"),
    })
}

/// `512m`, `1g`, `1024k`, `123` (bytes) -> bytes.
fn parse_memory(s: &str) -> Option<i64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1i64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.trim().parse::<i64>().ok().map(|n| n * mult)
}

/// Whether `run_command` boots an init system that needs the cgroup set-up.
fn runs_init(run_command: &str) -> bool {
    let first = run_command.split_whitespace().next().unwrap_or("");
    first == "/sbin/init" || first.ends_with("/systemd") || first == "/usr/sbin/init"
}

/// Characters Docker accepts in a container name (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`).
fn sanitize_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// A valid hostname label from an instance name: lowercase, `[a-z0-9-]`, at most 63.
pub(crate) fn sanitize_hostname(s: &str) -> String {
    let mut h: String = s
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    h.truncate(63);
    let h = h.trim_matches('-').to_string();
    if h.is_empty() { "kitchen".into() } else { h }
}

/// First 8 hex digits of SHA-256 of the project path: names unique per checkout.
pub fn project_hash(kitchen_root: &Path) -> String {
    let digest = Sha256::digest(kitchen_root.to_string_lossy().as_bytes());
    digest.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

/// The container name for an instance of the project at `kitchen_root`.
pub fn container_name(kitchen_root: &Path, instance: &str) -> String {
    sanitize_name(&format!(
        "kitchen-{}-{instance}",
        project_hash(kitchen_root)
    ))
}

/// The Docker driver.
#[derive(Debug)]
pub struct DockerDriver {
    config: DockerConfig,
    client: OnceCell<Docker>,
}

impl DockerDriver {
    /// Reads the `driver:` block of `instance`.
    ///
    /// # Errors
    /// [`Error::Config`] naming the bad key.
    pub fn from_config(instance: &str, block: &PluginConfig) -> Result<Self> {
        let config: DockerConfig = parse_block("driver", instance, block)?;
        let bad = |message: String| Error::config("driver", instance, message);
        if config.image.is_none() && config.dockerfile.is_none() {
            return Err(bad(
                "set `image` (such as kitchen/busybox:latest) or `dockerfile`".into(),
            ));
        }
        for f in &config.forward {
            if parse_forward(&f.text()).is_none() {
                return Err(bad(format!(
                    "key `forward`: `{}` is not [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]",
                    f.text()
                )));
            }
        }
        if !config.forward.is_empty() && config.network_mode.as_deref().unwrap_or("none") == "none"
        {
            return Err(bad(
                "key `forward` publishes ports, which needs a network: set `network_mode` (such as `bridge` or a network name); the default here is `none`".into(),
            ));
        }
        if let Some(m) = &config.memory
            && parse_memory(&m.text()).is_none()
        {
            return Err(bad(format!(
                "key `memory`: `{}` is not a size such as 512m",
                m.text()
            )));
        }
        Ok(Self {
            config,
            client: OnceCell::new(),
        })
    }

    async fn docker(&self) -> Result<Docker> {
        self.client
            .get_or_try_init(|| async {
                let docker = Docker::connect_with_defaults()
                    .map_err(|source| Error::DockerConnect { source })?;
                docker
                    .negotiate_version()
                    .await
                    .map_err(|source| Error::DockerConnect { source })
            })
            .await
            .cloned()
    }

    /// Builds the container's create body (pure: unit-tested).
    fn create_body(&self, ctx_root: &Path, instance: &str, image: &str) -> ContainerCreateBody {
        let c = &self.config;
        let run_command = c.run_command.clone();
        let init = run_command.as_deref().is_some_and(runs_init);
        let cmd = match &run_command {
            Some(rc) => vec!["sh".to_string(), "-c".to_string(), format!("exec {rc}")],
            None => vec!["sh".into(), "-c".into(), KEEP_ALIVE.into()],
        };
        let mut cap_add = c.cap_add.clone().into_vec();
        let mut binds = c.volumes.clone().into_vec();
        let mut tmpfs: HashMap<String, String> = match c.tmpfs.clone() {
            TmpfsSpec::None => HashMap::new(),
            TmpfsSpec::One(s) => [split_tmpfs(&s)].into_iter().collect(),
            TmpfsSpec::List(v) => v.iter().map(|s| split_tmpfs(s)).collect(),
            TmpfsSpec::Map(m) => m.into_iter().collect(),
        };
        let mut cgroupns = None;
        if init && !c.privileged {
            // What systemd as PID 1 needs on this kind of host (runtimes-here.md).
            if !cap_add
                .iter()
                .any(|x| x == "SYS_ADMIN" || x == "CAP_SYS_ADMIN")
            {
                cap_add.push("SYS_ADMIN".into());
            }
            if !binds.iter().any(|b| b.starts_with("/sys/fs/cgroup:")) {
                binds.push("/sys/fs/cgroup:/sys/fs/cgroup:rw".into());
            }
            tmpfs.entry("/run".into()).or_default();
            tmpfs.entry("/run/lock".into()).or_default();
            cgroupns = Some(HostConfigCgroupnsModeEnum::HOST);
        }
        let mut labels: HashMap<String, String> = c
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.text()))
            .collect();
        labels.insert(
            LABEL_PROJECT.into(),
            ctx_root.to_string_lossy().into_owned(),
        );
        labels.insert(LABEL_INSTANCE.into(), instance.to_string());

        let forwards: Vec<Forward> = c
            .forward
            .iter()
            .filter_map(|f| parse_forward(&f.text()))
            .collect();
        let mut port_bindings = HashMap::new();
        for f in &forwards {
            port_bindings.insert(
                f.container.clone(),
                Some(vec![PortBinding {
                    host_ip: f.host_ip.clone(),
                    host_port: Some(f.host_port.clone().unwrap_or_default()),
                }]),
            );
        }
        let host_config = HostConfig {
            privileged: Some(c.privileged),
            cap_add: (!cap_add.is_empty()).then_some(cap_add),
            cap_drop: Some(c.cap_drop.clone().into_vec()).filter(|v| !v.is_empty()),
            binds: (!binds.is_empty()).then_some(binds),
            tmpfs: (!tmpfs.is_empty()).then_some(tmpfs),
            cgroupns_mode: cgroupns,
            memory: c.memory.as_ref().and_then(|m| parse_memory(&m.text())),
            nano_cpus: c.cpus.map(|x| (x * 1e9) as i64),
            network_mode: Some(c.network_mode.clone().unwrap_or_else(|| "none".into())),
            port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
            ..Default::default()
        };
        ContainerCreateBody {
            image: Some(image.to_string()),
            cmd: Some(cmd),
            entrypoint: Some(vec![]),
            env: Some(c.env.clone().into_vec()).filter(|v| !v.is_empty()),
            hostname: Some(
                c.hostname
                    .clone()
                    .unwrap_or_else(|| sanitize_hostname(instance)),
            ),
            user: c.user.clone(),
            labels: Some(labels),
            exposed_ports: (!forwards.is_empty())
                .then(|| forwards.iter().map(|f| f.container.clone()).collect()),
            stop_signal: init.then(|| "SIGRTMIN+3".to_string()),
            host_config: Some(host_config),
            ..Default::default()
        }
    }

    /// The image to run: `image`, or the `dockerfile` built (once per content).
    async fn resolve_image(&self, docker: &Docker, ctx: &DriverContext) -> Result<String> {
        let instance = &ctx.instance.name;
        if let Some(dockerfile) = &self.config.dockerfile {
            return self.build_image(docker, ctx, dockerfile).await;
        }
        // from_config guarantees one of image/dockerfile.
        let image = self.config.image.clone().unwrap_or_default();
        match docker.inspect_image(&image).await {
            Ok(_) => Ok(image),
            Err(e) if is_not_found(&e) => Err(Error::MissingImage {
                image: image.clone(),
                instance: instance.clone(),
                hint: format!(
                    "build or import it first (`docker build -t {image} DIR`, `docker load -i IMAGE.tar`, or `docker import ROOTFS.tar {image}`), or give the platform `driver: {{dockerfile: PATH}}` and kitchen-driver builds it"
                ),
            }),
            Err(source) => Err(Error::Docker {
                action: format!("inspecting image {image}"),
                instance: instance.clone(),
                source,
            }),
        }
    }

    async fn build_image(
        &self,
        docker: &Docker,
        ctx: &DriverContext,
        dockerfile: &str,
    ) -> Result<String> {
        let instance = &ctx.instance.name;
        let path = ctx.kitchen_root.join(dockerfile);
        let context_dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| ctx.kitchen_root.clone());
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "Dockerfile".into());
        let build_args: HashMap<String, String> = self
            .config
            .build_args
            .iter()
            .map(|(k, v)| (k.clone(), v.text()))
            .collect();
        let (tar, hash) = context_tar(&context_dir, &file_name, &self.config.build_args)?;
        let tag = format!("kitchen-driver-build:{hash}");
        if docker.inspect_image(&tag).await.is_ok() {
            ctx.output
                .debug(&format!("dockerfile {dockerfile}: cached image {tag}"));
            return Ok(tag);
        }
        ctx.output
            .info(&format!("Building image {tag} from {dockerfile}"));
        let opts = BuildImageOptions {
            dockerfile: file_name,
            t: Some(tag.clone()),
            rm: true,
            forcerm: true,
            buildargs: Some(build_args),
            ..Default::default()
        };
        let mut stream = docker.build_image(opts, None, Some(bollard::body_full(tar.into())));
        let mut splitter = LineSplitter::default();
        let mut last_lines: Vec<String> = Vec::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(s) = info.stream {
                        splitter.push(s.as_bytes(), |l| {
                            ctx.output.line(OutputStream::Stdout, l);
                            last_lines.push(l.to_string());
                        });
                    }
                    if let Some(detail) = info.error_detail {
                        return Err(Error::Runtime {
                            instance: instance.clone(),
                            message: format!(
                                "building {dockerfile} failed: {} (if a FROM image is missing, build or import it locally: no registry is reachable)",
                                detail.message.unwrap_or_default()
                            ),
                        });
                    }
                }
                Err(source) => {
                    return Err(Error::Docker {
                        action: format!("building image from {dockerfile}"),
                        instance: instance.clone(),
                        source,
                    });
                }
            }
        }
        Ok(tag)
    }

    /// Removes every container labelled with this project and instance except `keep`.
    async fn remove_owned(
        &self,
        docker: &Docker,
        ctx: &DriverContext,
        keep: Option<&str>,
    ) -> Result<Vec<String>> {
        let root = ctx.kitchen_root.to_string_lossy().into_owned();
        let filters = HashMap::from([(
            "label".to_string(),
            vec![
                format!("{LABEL_PROJECT}={root}"),
                format!("{LABEL_INSTANCE}={}", ctx.instance.name),
            ],
        )]);
        let list = docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters),
                ..Default::default()
            }))
            .await
            .map_err(|source| Error::Docker {
                action: "listing containers".into(),
                instance: ctx.instance.name.clone(),
                source,
            })?;
        let mut removed = Vec::new();
        for c in list {
            let Some(id) = c.id else { continue };
            if keep.is_some_and(|k| k == id) {
                continue;
            }
            remove_container(docker, &ctx.instance.name, &id).await?;
            removed.push(id);
        }
        Ok(removed)
    }

    async fn wait_ready(&self, conn: &DockerConnection, ctx: &DriverContext) -> Result<()> {
        let timeout = Duration::from_secs(self.config.ready_timeout.unwrap_or(60));
        let init = self.config.run_command.as_deref().is_some_and(runs_init);
        let started = Instant::now();
        let mut last;
        loop {
            let inspect = conn
                .docker
                .inspect_container(&conn.id, None)
                .await
                .map_err(|source| Error::Docker {
                    action: "inspecting container".into(),
                    instance: ctx.instance.name.clone(),
                    source,
                })?;
            let st = inspect.state.unwrap_or_default();
            if st.running != Some(true) {
                let logs = container_logs(&conn.docker, &conn.id).await;
                return Err(Error::Runtime {
                    instance: ctx.instance.name.clone(),
                    message: format!(
                        "container {} stopped right after starting (exit code {}{}); its output:\n{logs}{}",
                        conn.name,
                        st.exit_code.unwrap_or(-1),
                        st.error
                            .filter(|e| !e.is_empty())
                            .map(|e| format!(", {e}"))
                            .unwrap_or_default(),
                        if init {
                            "\nsystemd as PID 1 needs a systemd image (such as kitchen/debian-12:latest); the driver adds SYS_ADMIN, the /sys/fs/cgroup mount, cgroupns=host and tmpfs /run, /run/lock"
                        } else {
                            ""
                        }
                    ),
                });
            }
            let probe = if init { super::READINESS_PROBE } else { "true" };
            match conn.exec(&ExecRequest::shell(probe), &NullSink).await {
                Ok(out) => {
                    let answer = out.stdout.trim().to_string();
                    if !init && out.success() {
                        return Ok(());
                    }
                    if init && (answer == "running" || answer == "degraded") {
                        ctx.output.debug(&format!("systemd is {answer}"));
                        return Ok(());
                    }
                    last = format!("`{probe}` answered `{answer}` (exit {})", out.exit_code);
                }
                Err(e) => last = e.to_string(),
            }
            if started.elapsed() > timeout {
                return Err(Error::Runtime {
                    instance: ctx.instance.name.clone(),
                    message: format!(
                        "container {} not ready after {}s: {last}; raise `ready_timeout` if it is slow",
                        conn.name,
                        timeout.as_secs()
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn split_tmpfs(s: &str) -> (String, String) {
    match s.split_once(':') {
        Some((p, o)) => (p.to_string(), o.to_string()),
        None => (s.to_string(), String::new()),
    }
}

/// The build context as a tar, and a content hash over it and the build arguments.
fn context_tar(
    dir: &Path,
    dockerfile: &str,
    args: &BTreeMap<String, StrOrNum>,
) -> Result<(Vec<u8>, String)> {
    let mut files = Vec::new();
    collect_files(dir, dir, &mut files)?;
    files.sort();
    if !files.iter().any(|(rel, _)| rel == dockerfile) {
        return Err(Error::io(
            "reading dockerfile",
            dir.join(dockerfile),
            std::io::Error::new(std::io::ErrorKind::NotFound, "not found"),
        ));
    }
    let mut hasher = Sha256::new();
    let mut tar = TarBuilder::new();
    for (rel, path) in &files {
        let data = std::fs::read(path).map_err(|e| Error::io("reading", path, e))?;
        hasher.update(rel.as_bytes());
        hasher.update([0]);
        hasher.update((data.len() as u64).to_le_bytes());
        hasher.update(&data);
        tar.add_bytes(rel, &data, 0o644)?;
    }
    for (k, v) in args {
        hasher.update(format!("ARG {k}={}\0", v.text()).as_bytes());
    }
    let hash: String = hasher
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((tar.finish()?, hash))
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("reading directory", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("reading directory", dir, e))?;
        let path = entry.path();
        let name = entry.file_name();
        if name == ".kitchen" || name == ".git" || name == "target" {
            continue;
        }
        if path.is_dir() {
            collect_files(root, &path, out)?;
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.push((rel.to_string_lossy().into_owned(), path));
        }
    }
    Ok(())
}

fn is_not_found(e: &BollardError) -> bool {
    matches!(
        e,
        BollardError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

async fn remove_container(docker: &Docker, instance: &str, id: &str) -> Result<()> {
    match docker
        .remove_container(
            id,
            Some(RemoveContainerOptions {
                force: true,
                v: true,
                ..Default::default()
            }),
        )
        .await
    {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        // 409 "removal already in progress" also means it is going away.
        Err(BollardError::DockerResponseServerError {
            status_code: 409, ..
        }) => Ok(()),
        Err(source) => Err(Error::Docker {
            action: format!("removing container {id}"),
            instance: instance.to_string(),
            source,
        }),
    }
}

async fn container_logs(docker: &Docker, id: &str) -> String {
    let mut stream = docker.logs(
        id,
        Some(LogsOptions {
            stdout: true,
            stderr: true,
            tail: "20".into(),
            ..Default::default()
        }),
    );
    let mut text = String::new();
    while let Some(Ok(chunk)) = stream.next().await {
        text.push_str(&chunk.to_string());
    }
    text
}

#[async_trait]
impl Driver for DockerDriver {
    fn name(&self) -> &'static str {
        "docker"
    }

    async fn create(&self, ctx: &DriverContext, state: &mut State) -> Result<()> {
        let docker = self.docker().await?;
        let instance = ctx.instance.name.clone();
        // An instance already created: keep it if it is running (test-kitchen's drivers do).
        if let Some(id) = state.get_str("container_id").map(str::to_string) {
            match docker.inspect_container(&id, None).await {
                Ok(c) if c.state.as_ref().and_then(|s| s.running) == Some(true) => {
                    ctx.output.info(&format!("Container {id} already exists"));
                    return Ok(());
                }
                Ok(_) => remove_container(&docker, &instance, &id).await?,
                Err(e) if is_not_found(&e) => {}
                Err(source) => {
                    return Err(Error::Docker {
                        action: "inspecting container".into(),
                        instance,
                        source,
                    });
                }
            }
            state.remove("container_id");
        }
        // Leftovers of a run whose state file was lost carry our labels: they are ours.
        for id in self.remove_owned(&docker, ctx, None).await? {
            ctx.output
                .warn(&format!("Removed leftover container {id} of this instance"));
        }
        let image = self.resolve_image(&docker, ctx).await?;
        let name = container_name(&ctx.kitchen_root, &instance);
        let body = self.create_body(&ctx.kitchen_root, &instance, &image);
        ctx.output
            .debug(&format!("Creating container {name} from {image}"));
        let created = docker
            .create_container(
                Some(CreateContainerOptions {
                    name: Some(name.clone()),
                    ..Default::default()
                }),
                body,
            )
            .await
            .map_err(|source| Error::Docker {
                action: format!("creating container {name} from {image}"),
                instance: instance.clone(),
                source,
            })?;
        // Recorded before anything else can fail, so destroy always finds it.
        state.set("container_id", created.id.clone());
        state.set("container_name", name.clone());
        state.set("image", image.clone());
        if let Err(source) = docker
            .start_container(&created.id, None::<StartContainerOptions>)
            .await
        {
            let msg = source.to_string();
            // Do not leave a created-but-never-started container behind.
            if remove_container(&docker, &instance, &created.id)
                .await
                .is_ok()
            {
                state.remove("container_id");
                state.remove("container_name");
            }
            let hint = if self.config.privileged && msg.contains("operation not permitted") {
                "; `privileged: true` is refused on this host (its capability bounding set lacks some capabilities): drop it and grant what is needed with `cap_add` (systemd: run_command /sbin/init gets SYS_ADMIN and the cgroup mount automatically)"
            } else {
                ""
            };
            return Err(Error::Runtime {
                instance,
                message: format!("starting container {name} failed: {msg}{hint}"),
            });
        }
        let conn = DockerConnection {
            docker: docker.clone(),
            id: created.id.clone(),
            name: name.clone(),
            instance: instance.clone(),
            user: self.config.user.clone(),
        };
        self.wait_ready(&conn, ctx).await?;
        let inspect = docker
            .inspect_container(&created.id, None)
            .await
            .map_err(|source| Error::Docker {
                action: "inspecting container".into(),
                instance: instance.clone(),
                source,
            })?;
        if let Some(h) = inspect.config.as_ref().and_then(|c| c.hostname.clone()) {
            state.set("hostname", h);
        }
        let ports = inspect
            .network_settings
            .and_then(|n| n.ports)
            .unwrap_or_default();
        let mut forwarded = serde_json::Map::new();
        for (port, bindings) in ports {
            if let Some(host_port) = bindings
                .unwrap_or_default()
                .into_iter()
                .find_map(|b| b.host_port.filter(|p| !p.is_empty()))
            {
                forwarded.insert(port, host_port.into());
            }
        }
        if forwarded.len() == 1
            && let Some(p) = forwarded.values().next()
        {
            state.set("port", p.clone());
        }
        if !forwarded.is_empty() {
            state.set("forwarded_ports", serde_json::Value::Object(forwarded));
        }
        ctx.output.info(&format!(
            "Container {name} ({}) is ready",
            &created.id[..12.min(created.id.len())]
        ));
        Ok(())
    }

    async fn destroy(&self, ctx: &DriverContext, state: &mut State) -> Result<()> {
        let docker = self.docker().await?;
        if let Some(id) = state.get_str("container_id").map(str::to_string) {
            ctx.output.info(&format!("Removing container {id}"));
            remove_container(&docker, &ctx.instance.name, &id).await?;
        }
        for id in self.remove_owned(&docker, ctx, None).await? {
            ctx.output.info(&format!("Removed container {id}"));
        }
        for key in [
            "container_id",
            "container_name",
            "hostname",
            "port",
            "forwarded_ports",
            "image",
        ] {
            state.remove(key);
        }
        Ok(())
    }

    async fn connection(&self, ctx: &DriverContext, state: &State) -> Result<Arc<dyn Connection>> {
        let Some(id) = state.get_str("container_id") else {
            return Err(Error::NotCreated {
                instance: ctx.instance.name.clone(),
            });
        };
        Ok(Arc::new(DockerConnection {
            docker: self.docker().await?,
            id: id.to_string(),
            name: state.get_str("container_name").unwrap_or(id).to_string(),
            instance: ctx.instance.name.clone(),
            user: self.config.user.clone(),
        }))
    }
}

/// A connection to a container: exec, archive upload and download through the engine API.
#[derive(Debug, Clone)]
pub struct DockerConnection {
    docker: Docker,
    id: String,
    name: String,
    instance: String,
    user: Option<String>,
}

impl DockerConnection {
    /// The exit code of a finished exec. The output stream ends when the process closes its
    /// output; the exit code follows shortly.
    async fn exit_code(&self, exec_id: &str) -> Result<i64> {
        let mut delay = Duration::from_millis(5);
        loop {
            let inspect = self
                .docker
                .inspect_exec(exec_id)
                .await
                .map_err(|e| self.err("inspecting exec", e))?;
            if inspect.running != Some(true) {
                return Ok(inspect.exit_code.unwrap_or(-1));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(200));
        }
    }

    fn err(&self, action: impl Into<String>, source: BollardError) -> Error {
        Error::Docker {
            action: action.into(),
            instance: self.instance.clone(),
            source,
        }
    }
}

#[async_trait]
impl Connection for DockerConnection {
    async fn exec(&self, req: &ExecRequest, sink: &dyn OutputSink) -> Result<ExecOutput> {
        let env: Vec<String> = req.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let created = self
            .docker
            .create_exec(
                &self.id,
                CreateExecOptions::<String> {
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    cmd: Some(req.argv.clone()),
                    env: (!env.is_empty()).then_some(env),
                    user: req.user.clone().or_else(|| self.user.clone()),
                    working_dir: req.workdir.clone(),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| self.err(format!("creating exec `{}`", req.display()), e))?;
        let started = self
            .docker
            .start_exec(&created.id, None)
            .await
            .map_err(|e| self.err(format!("starting exec `{}`", req.display()), e))?;
        let mut out = ExecOutput::default();
        if let StartExecResults::Attached { mut output, .. } = started {
            let (mut so, mut se) = (LineSplitter::default(), LineSplitter::default());
            while let Some(item) = output.next().await {
                match item
                    .map_err(|e| self.err(format!("reading output of `{}`", req.display()), e))?
                {
                    LogOutput::StdOut { message } | LogOutput::Console { message } => {
                        out.stdout.push_str(&String::from_utf8_lossy(&message));
                        so.push(&message, |l| sink.line(OutputStream::Stdout, l));
                    }
                    LogOutput::StdErr { message } => {
                        out.stderr.push_str(&String::from_utf8_lossy(&message));
                        se.push(&message, |l| sink.line(OutputStream::Stderr, l));
                    }
                    LogOutput::StdIn { .. } => {}
                }
            }
            so.finish(|l| sink.line(OutputStream::Stdout, l));
            se.finish(|l| sink.line(OutputStream::Stderr, l));
        }
        out.exit_code = self.exit_code(&created.id).await?;
        Ok(out)
    }

    async fn upload_tar(&self, tar: Vec<u8>, remote_dir: &str) -> Result<()> {
        self.docker
            .upload_to_container(
                &self.id,
                Some(UploadToContainerOptions {
                    path: remote_dir.to_string(),
                    ..Default::default()
                }),
                bollard::body_full(tar.into()),
            )
            .await
            .map_err(|e| self.err(format!("uploading into {remote_dir}"), e))
    }

    async fn download_tar(&self, remote: &str) -> Result<Vec<u8>> {
        let mut stream = self.docker.download_from_container(
            &self.id,
            Some(DownloadFromContainerOptions {
                path: remote.to_string(),
            }),
        );
        let mut data = Vec::new();
        while let Some(chunk) = stream.next().await {
            data.extend_from_slice(
                &chunk.map_err(|e| self.err(format!("downloading {remote}"), e))?,
            );
        }
        Ok(data)
    }

    async fn open_tty(
        &self,
        argv: &[String],
        env: &[(String, String)],
        width: u16,
        height: u16,
    ) -> Result<TtySession> {
        let env: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let created = self
            .docker
            .create_exec(
                &self.id,
                CreateExecOptions::<String> {
                    attach_stdin: Some(true),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    tty: Some(true),
                    cmd: Some(argv.to_vec()),
                    env: (!env.is_empty()).then_some(env),
                    user: self.user.clone(),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| self.err("creating the login exec", e))?;
        let started = self
            .docker
            .start_exec(
                &created.id,
                Some(StartExecOptions {
                    tty: true,
                    ..Default::default()
                }),
            )
            .await
            .map_err(|e| self.err("starting the login exec", e))?;
        let StartExecResults::Attached {
            mut output,
            mut input,
        } = started
        else {
            return Err(Error::Runtime {
                instance: self.instance.clone(),
                message: "the login exec started detached".into(),
            });
        };
        let docker = self.docker.clone();
        let exec_id = created.id.clone();
        let resize = move |w: u16, h: u16| {
            let docker = docker.clone();
            let exec_id = exec_id.clone();
            async move {
                let _ = docker
                    .resize_exec(
                        &exec_id,
                        ResizeExecOptions {
                            width: w,
                            height: h,
                        },
                    )
                    .await;
            }
        };
        resize(width, height).await;
        let (session, mut ends) = TtySession::channels();
        let this = self.clone();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let mut input_open = true;
            loop {
                tokio::select! {
                    data = ends.input.recv(), if input_open => match data {
                        Some(d) => {
                            if input.write_all(&d).await.is_err() {
                                input_open = false;
                            }
                            let _ = input.flush().await;
                        }
                        None => {
                            let _ = input.shutdown().await;
                            input_open = false;
                        }
                    },
                    Some((w, h)) = ends.resize.recv() => resize(w, h).await,
                    item = output.next() => match item {
                        Some(Ok(chunk)) => {
                            if ends.output.send(chunk.into_bytes().to_vec()).await.is_err() {
                                break;
                            }
                        }
                        _ => break,
                    },
                }
            }
            drop(ends.output);
            let code = this.exit_code(&created.id).await;
            let _ = ends.exit.send(code);
        });
        Ok(session)
    }

    fn login_command(&self) -> LoginCommand {
        let mut args = vec!["exec".to_string(), "-it".to_string()];
        if let Some(u) = &self.user {
            args.extend(["-u".to_string(), u.clone()]);
        }
        args.extend([
            self.id.clone(),
            "sh".into(),
            "-c".into(),
            super::LOGIN_SHELL.into(),
        ]);
        LoginCommand {
            program: "docker".into(),
            args,
            env: std::env::var("DOCKER_HOST")
                .map(|h| vec![("DOCKER_HOST".to_string(), h)])
                .unwrap_or_default(),
        }
    }

    fn target(&self) -> Target {
        Target::Docker {
            container_id: self.id.clone(),
            container_name: self.name.clone(),
            docker_host: std::env::var("DOCKER_HOST").ok(),
        }
    }

    fn instance(&self) -> &str {
        &self.instance
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn driver(v: serde_json::Value) -> Result<DockerDriver> {
        let serde_json::Value::Object(m) = v else {
            panic!("object")
        };
        DockerDriver::from_config("default-busybox", &m)
    }

    #[test]
    fn default_body_keeps_alive_without_network_and_labels_ownership() {
        let d = driver(
            json!({"name": "docker", "image": "kitchen/busybox:latest", "kitchen_root": "/x"}),
        )
        .unwrap();
        let b = d.create_body(
            Path::new("/proj"),
            "default-busybox",
            "kitchen/busybox:latest",
        );
        assert_eq!(b.cmd.as_ref().unwrap()[2], KEEP_ALIVE);
        let hc = b.host_config.unwrap();
        assert_eq!(hc.network_mode.as_deref(), Some("none"));
        assert_eq!(hc.privileged, Some(false));
        let labels = b.labels.unwrap();
        assert_eq!(labels[LABEL_PROJECT], "/proj");
        assert_eq!(labels[LABEL_INSTANCE], "default-busybox");
        assert_eq!(b.hostname.as_deref(), Some("default-busybox"));
    }

    #[test]
    fn init_run_command_gets_the_systemd_options() {
        let d = driver(json!({"image": "kitchen/debian-12:latest", "run_command": "/sbin/init", "cap_add": "NET_ADMIN", "tmpfs": ["/tmp:size=10m"]})).unwrap();
        let b = d.create_body(Path::new("/p"), "i", "img");
        assert_eq!(b.cmd.as_ref().unwrap()[2], "exec /sbin/init");
        assert_eq!(b.stop_signal.as_deref(), Some("SIGRTMIN+3"));
        let hc = b.host_config.unwrap();
        assert_eq!(hc.cap_add.unwrap(), ["NET_ADMIN", "SYS_ADMIN"]);
        assert_eq!(hc.binds.unwrap(), ["/sys/fs/cgroup:/sys/fs/cgroup:rw"]);
        assert_eq!(hc.cgroupns_mode, Some(HostConfigCgroupnsModeEnum::HOST));
        let t = hc.tmpfs.unwrap();
        assert_eq!(t["/tmp"], "size=10m");
        assert!(t.contains_key("/run") && t.contains_key("/run/lock"));
    }

    #[test]
    fn keys_map_to_the_api() {
        let d = driver(json!({
            "image": "i", "env": {"A": "1", "B": 2}, "memory": "512m", "cpus": 1.5,
            "volumes": ["/h:/c:ro"], "user": "nobody", "hostname": "web",
            "network_mode": "bridge", "forward": ["8080:80", 443, "127.0.0.1::53/udp"],
            "labels": {"team": "x"}, "cap_drop": ["NET_RAW"], "privileged": true
        }))
        .unwrap();
        let b = d.create_body(Path::new("/p"), "i", "i");
        assert_eq!(b.env.unwrap(), ["A=1", "B=2"]);
        assert_eq!(b.user.as_deref(), Some("nobody"));
        assert_eq!(b.hostname.as_deref(), Some("web"));
        assert_eq!(b.labels.unwrap()["team"], "x");
        let mut exposed = b.exposed_ports.unwrap();
        exposed.sort();
        assert_eq!(exposed, ["443/tcp", "53/udp", "80/tcp"]);
        let hc = b.host_config.unwrap();
        assert_eq!(hc.memory, Some(512 << 20));
        assert_eq!(hc.nano_cpus, Some(1_500_000_000));
        assert_eq!(hc.binds.unwrap(), ["/h:/c:ro"]);
        assert_eq!(hc.cap_drop.unwrap(), ["NET_RAW"]);
        assert_eq!(hc.privileged, Some(true));
        let pb = hc.port_bindings.unwrap();
        assert_eq!(
            pb["80/tcp"].as_ref().unwrap()[0].host_port.as_deref(),
            Some("8080")
        );
        assert_eq!(
            pb["443/tcp"].as_ref().unwrap()[0].host_port.as_deref(),
            Some("")
        );
        assert_eq!(
            pb["53/udp"].as_ref().unwrap()[0].host_ip.as_deref(),
            Some("127.0.0.1")
        );
    }

    #[test]
    fn bad_blocks_name_the_key() {
        let e = driver(json!({"name": "docker"})).unwrap_err().to_string();
        assert!(e.contains("`image`"), "{e}");
        let e = driver(json!({"image": "i", "forward": [80]}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("network_mode"), "{e}");
        let e = driver(json!({"image": "i", "memory": "lots"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("memory"), "{e}");
        let e = driver(json!({"image": "i", "privileged": "yes"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("privileged"), "{e}");
    }

    #[test]
    fn names_are_unique_per_project_and_valid() {
        let a = container_name(Path::new("/a"), "default-Ubuntu 2204");
        let b = container_name(Path::new("/b"), "default-Ubuntu 2204");
        assert_ne!(a, b);
        assert!(
            a.starts_with("kitchen-") && a.ends_with("-default-Ubuntu-2204"),
            "{a}"
        );
        assert_eq!(sanitize_hostname("Suite_X.Y"), "suite-x-y");
        assert_eq!(parse_memory("1g"), Some(1 << 30));
        assert_eq!(parse_memory("100"), Some(100));
        assert_eq!(parse_forward("x:80"), None);
    }

    #[test]
    fn context_hash_follows_content_and_args() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("Dockerfile"),
            "FROM kitchen/busybox:latest\n",
        )
        .unwrap();
        let args = BTreeMap::new();
        let (_, h1) = context_tar(dir.path(), "Dockerfile", &args).unwrap();
        let (_, h1b) = context_tar(dir.path(), "Dockerfile", &args).unwrap();
        assert_eq!(h1, h1b);
        let args2 = BTreeMap::from([("V".to_string(), StrOrNum::Str("2".into()))]);
        let (_, h2) = context_tar(dir.path(), "Dockerfile", &args2).unwrap();
        assert_ne!(h1, h2);
        std::fs::write(
            dir.path().join("Dockerfile"),
            "FROM kitchen/busybox:latest\nRUN true\n",
        )
        .unwrap();
        let (_, h3) = context_tar(dir.path(), "Dockerfile", &args).unwrap();
        assert_ne!(h1, h3);
        assert!(context_tar(dir.path(), "Nope", &args).is_err());
    }
}
