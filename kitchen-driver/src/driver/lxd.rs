//! The LXD driver (`driver: {name: lxd}`), over `lxd-client`.
//!
//! Keys: `image` (alias or fingerprint in the local image store), `profiles`, `config`
//! (instance config such as `security.nesting`, `limits.memory`), `devices`, `storage_pool`,
//! `type` (`container` or `virtual-machine`), `ephemeral`, `project`, `target` (a cluster
//! member), `wait_for` (a command that must exit 0 before the instance counts as ready) and
//! `ready_timeout` (seconds, default 120); `step_timeout` (seconds) limits each step (see
//! `lifecycle::step_timeout_of`). The server: `remote` (an `lxc` remote) or
//! `remote_url` with `server_certificate`, `client_certificate` and `client_key` (see
//! `lxd_remote.rs`, which also names their environment variables); the local socket otherwise.
//!
//! Instances are named `kitchen-<hash of kitchen_root>-<instance>` (a valid hostname, unique
//! per checkout) and carry the config keys [`CONFIG_PROJECT`] and [`CONFIG_INSTANCE`]. Ready
//! means: exec answers and, where systemd runs, `systemctl is-system-running` says `running`
//! or `degraded`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use lxd_client::models::InstanceType;
use lxd_client::{Client, FileOptions};
use serde::Deserialize;
use tokio::sync::OnceCell;

use super::lxd_image;
use super::lxd_remote::{self, RemoteKeys, Server};
use super::naming::lxd_instance_name;
use super::{Driver, ready};
use crate::config::{PluginConfig, parse_block};
use crate::error::{Error, Result};
use crate::plugin::InstanceContext;
use crate::report::{LineSplitter, NullSink, OutputSink, OutputStream};
use crate::state::{State, keys};
use crate::transport::tty::TtyRuntime;
use crate::transport::{
    Connection, EXEC_OUTPUT_GRACE, ExecMarker, ExecOutput, ExecRequest, KillOnDrop, TarBuilder,
    Target, TtySession,
};

/// How long the kill of a stopped command may take.
const KILL_WAIT: Duration = Duration::from_secs(30);

/// Config key holding the project directory on every instance the driver creates.
pub const CONFIG_PROJECT: &str = "user.kitchen.project";
/// Config key holding the instance name on every instance the driver creates.
pub const CONFIG_INSTANCE: &str = "user.kitchen.instance";

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
enum Scalar {
    Str(String),
    Bool(bool),
    Num(serde_json::Number),
}

impl Scalar {
    fn text(&self) -> String {
        match self {
            Scalar::Str(s) => s.clone(),
            Scalar::Bool(b) => b.to_string(),
            Scalar::Num(n) => n.to_string(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
struct LxdConfig {
    image: Option<String>,
    profiles: Option<Vec<String>>,
    config: BTreeMap<String, Scalar>,
    devices: BTreeMap<String, BTreeMap<String, Scalar>>,
    storage_pool: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    ephemeral: bool,
    project: Option<String>,
    remote: Option<String>,
    remote_url: Option<String>,
    server_certificate: Option<String>,
    client_certificate: Option<String>,
    client_key: Option<String>,
    target: Option<String>,
    /// Forced into every block by test-kitchen: where relative certificate paths start.
    kitchen_root: Option<String>,
    wait_for: Option<String>,
    ready_timeout: Option<u64>,
    /// Each step's time limit in seconds: read by the runner (`lifecycle::step_timeout_of`),
    /// named here so it is a known key.
    #[allow(dead_code)]
    step_timeout: Option<f64>,
}

/// The LXD driver.
#[derive(Debug)]
pub struct LxdDriver {
    config: LxdConfig,
    server: Server,
    instance: String,
    client: OnceCell<Client>,
}

impl LxdDriver {
    /// Reads the `driver:` block of `instance`.
    ///
    /// # Errors
    /// [`Error::Config`] naming the bad key.
    pub fn from_config(instance: &str, block: &PluginConfig) -> Result<Self> {
        let config: LxdConfig = parse_block("driver", instance, block)?;
        let bad = |message: String| Error::config("driver", instance, message);
        match config.image.as_deref() {
            None | Some("") => {
                return Err(bad("set `image` (an alias such as kitchen/busybox)".into()));
            }
            Some(i) => {
                if let Some((remote, _)) = lxd_image::remote_image(i) {
                    // The remote must be an LXD server of lxc's configuration (image servers
                    // such as `images:` speak simplestreams, which the copy does not).
                    let known = lxd_client::LxcConfig::load()
                        .ok()
                        .and_then(|c| c.remote(remote).ok().map(lxd_client::Remote::is_lxd));
                    if known != Some(true) {
                        return Err(bad(format!(
                            "key `image`: `{i}` names the remote `{remote}`, which is not an LXD server in lxc's configuration (LXD_CONF or ~/.config/lxc): add it with `lxc remote add {remote} ...`, or import the image with `lxc image import` and use its alias"
                        )));
                    }
                }
            }
        }
        let server = lxd_remote::resolve(
            &RemoteKeys {
                remote: config.remote.clone(),
                remote_url: config.remote_url.clone(),
                server_certificate: config.server_certificate.clone(),
                client_certificate: config.client_certificate.clone(),
                client_key: config.client_key.clone(),
                base: config.kitchen_root.clone().unwrap_or_default().into(),
            },
            |k| std::env::var(k).ok(),
        )
        .map_err(bad)?;
        if let Some(k) = &config.kind
            && k != "container"
            && k != "virtual-machine"
        {
            return Err(bad(format!(
                "key `type`: `{k}` is not container or virtual-machine"
            )));
        }
        Ok(Self {
            config,
            server,
            instance: instance.to_string(),
            client: OnceCell::new(),
        })
    }

    /// The instance's project: `project`, else the lxc remote's own (once connected), else
    /// `default`.
    fn project(&self) -> String {
        self.config
            .project
            .clone()
            .or_else(|| {
                self.client
                    .get()
                    .and_then(|c| c.project_name().map(str::to_string))
            })
            .unwrap_or_else(|| "default".into())
    }

    async fn client(&self) -> Result<Client> {
        self.client
            .get_or_try_init(|| async {
                let c = lxd_remote::connect(&self.server, &self.instance).await?;
                Ok::<_, Error>(match &self.config.project {
                    Some(p) => c.project(p.clone()),
                    None => c,
                })
            })
            .await
            .cloned()
    }

    fn err(
        ctx: &InstanceContext,
        action: impl Into<String>,
    ) -> impl FnOnce(lxd_client::Error) -> Error {
        let instance = ctx.instance.name.clone();
        let action = action.into();
        move |source| Error::Lxd {
            action,
            instance,
            source: Box::new(source),
        }
    }

    /// Removes the instance `name` if it exists (stopping it first).
    async fn remove(client: &Client, ctx: &InstanceContext, name: &str) -> Result<bool> {
        let instances = client.instances();
        match instances.get(name).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => return Ok(false),
            Err(e) => return Err(Self::err(ctx, format!("reading instance {name}"))(e)),
        }
        // A stopped instance refuses the stop; an ephemeral one is gone after it. A stop that
        // LXD gave up on (its 30 s operation timeout, e.g. when another client of the daemon
        // holds a silent connection) may still be running and make it refuse the delete: retry.
        if let Ok(op) = instances.stop(name).force().await {
            let _ = op.wait_for(Duration::from_secs(300)).await;
        }
        let mut attempt = 0u64;
        loop {
            attempt += 1;
            let result = match instances.delete(name).await {
                Ok(op) => op.wait_for(Duration::from_secs(300)).await.map(|_| ()),
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => return Ok(true),
                Err(e) if e.is_not_found() => return Ok(true),
                Err(e) if attempt < 6 => {
                    tracing::debug!(instance = %name, error = %e, "delete refused; retrying");
                    tokio::time::sleep(Duration::from_secs(attempt)).await;
                    if let Ok(op) = instances.stop(name).force().await {
                        let _ = op.wait_for(Duration::from_secs(300)).await;
                    }
                }
                Err(e) => return Err(Self::err(ctx, format!("deleting instance {name}"))(e)),
            }
        }
    }

    async fn wait_ready(&self, conn: &LxdConnection, ctx: &InstanceContext) -> Result<()> {
        let timeout = Duration::from_secs(self.config.ready_timeout.unwrap_or(120));
        let started = Instant::now();
        let what = format!("LXD instance {}", conn.name);
        ready::wait_until_ready(
            conn,
            ctx,
            &what,
            timeout,
            Duration::from_millis(250),
            || async { Ok(()) },
        )
        .await?;
        if let Some(cmd) = &self.config.wait_for {
            loop {
                let out = conn
                    .exec(&ExecRequest::shell(cmd.clone()), &NullSink)
                    .await?;
                if out.success() {
                    break;
                }
                if started.elapsed() > timeout {
                    return Err(Error::Runtime {
                        instance: ctx.instance.name.clone(),
                        message: format!(
                            "`wait_for` command `{cmd}` still exits {} after {}s",
                            out.exit_code,
                            timeout.as_secs()
                        ),
                    });
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Driver for LxdDriver {
    fn name(&self) -> &'static str {
        "lxd"
    }

    async fn create(&self, ctx: &InstanceContext, state: &mut State) -> Result<()> {
        let client = self.client().await?;
        let instances = client.instances();
        let name = lxd_instance_name(&ctx.kitchen_root, &ctx.instance.name);
        let root = ctx.kitchen_root.to_string_lossy().into_owned();
        if state.get_str(keys::CONTAINER_NAME).is_some()
            && let Ok(i) = instances.get(&name).await
            && i.status == "Running"
        {
            ctx.output.info(&format!("Instance {name} already exists"));
            return Ok(());
        }
        // The name is ours only if the instance says so.
        match instances.get(&name).await {
            Ok(existing) => {
                if existing.config.get(CONFIG_PROJECT).map(String::as_str) == Some(root.as_str()) {
                    Self::remove(&client, ctx, &name).await?;
                    ctx.output
                        .warn(&format!("Removed leftover instance {name}"));
                } else {
                    return Err(Error::Runtime {
                        instance: ctx.instance.name.clone(),
                        message: format!(
                            "an LXD instance named {name} exists and was not created by kitchen-driver for this project; remove or rename it"
                        ),
                    });
                }
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(Self::err(ctx, format!("reading instance {name}"))(e)),
        }
        // Image: by alias, or by fingerprint when it looks like one.
        let image = self.config.image.clone().unwrap_or_default();
        let image = match lxd_image::remote_image(&image) {
            Some((remote, alias)) => {
                lxd_image::ensure_copied(&client, remote, alias, &ctx.instance.name, &ctx.output)
                    .await?;
                alias.to_string()
            }
            None => image.strip_prefix("local:").unwrap_or(&image).to_string(),
        };
        let by_fingerprint = image.len() >= 12 && image.chars().all(|c| c.is_ascii_hexdigit());
        let known = if by_fingerprint {
            client.images().get(&image).await.is_ok()
        } else {
            client.images().get_alias(&image).await.is_ok()
        };
        if !known {
            return Err(Error::MissingImage {
                image: image.clone(),
                instance: ctx.instance.name.clone(),
                hint: format!(
                    "import it first: `lxc image import METADATA.tar.xz ROOTFS.squashfs --alias {image}` (or a unified tarball: `lxc image import IMAGE.tar.gz --alias {image}`), or copy it from a remote you reach: `lxc image copy REMOTE:IMAGE local: --alias {image}`"
                ),
            });
        }
        let mut b = instances.create(name.clone());
        b = if by_fingerprint {
            b.image_fingerprint(&image)
        } else {
            b.image_alias(&image)
        };
        if let Some(p) = &self.config.profiles {
            b = b.profiles(p.clone());
        }
        for (k, v) in &self.config.config {
            b = b.config(k.clone(), v.text());
        }
        b = b.config(CONFIG_PROJECT, root.clone());
        b = b.config(CONFIG_INSTANCE, ctx.instance.name.clone());
        for (dev, settings) in &self.config.devices {
            b = b.device(
                dev.clone(),
                settings.iter().map(|(k, v)| (k.clone(), v.text())),
            );
        }
        if let Some(pool) = &self.config.storage_pool {
            b = b.storage_pool(pool.clone());
        }
        if self.config.kind.as_deref() == Some("virtual-machine") {
            b = b.instance_type(InstanceType::VirtualMachine);
        }
        b = b.ephemeral(self.config.ephemeral);
        if let Some(member) = &self.config.target {
            b = b.target(member.clone());
        }
        ctx.output
            .debug(&format!("Creating LXD instance {name} from {image}"));
        // Recorded first: a crash from here on leaves a name destroy can find.
        state.set(keys::CONTAINER_NAME, name.clone());
        state.set(keys::LXD_PROJECT, self.project());
        state.set(keys::IMAGE, image.clone());
        let created = match b.send().await {
            Ok(op) => op.wait_for(Duration::from_secs(600)).await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = created {
            let _ = Self::remove(&client, ctx, &name).await;
            state.remove(keys::CONTAINER_NAME);
            return Err(Self::err(
                ctx,
                format!("creating instance {name} from {image}"),
            )(e));
        }
        // The hostname test-kitchen users expect inside is the instance's name (as on Docker),
        // not the image's (`debian-12`) nor the LXD name: both test images' inits, and systemd,
        // set it from /etc/hostname at boot. An instance without /etc (a bare VM) keeps LXD's.
        let hostname = super::naming::sanitize_hostname(&ctx.instance.name);
        if let Err(e) = instances
            .files(&name)
            .push(
                "/etc/hostname",
                format!("{hostname}\n"),
                FileOptions::default().mode(0o644),
            )
            .await
        {
            ctx.output
                .debug(&format!("Could not write /etc/hostname in {name}: {e}"));
        }
        // A start fails when LXC's pre-start hook (`lxd callhook`) cannot reach the daemon in
        // time ("forkstart ... exit status 1"), as when another client holds a silent unix
        // connection to LXD 5.0.2; try twice, and report the container's log when it fails.
        let mut started = Ok(());
        for attempt in 0..2 {
            started = match instances.start(&name).await {
                Ok(op) => op.wait_for(Duration::from_secs(120)).await.map(|_| ()),
                Err(e) => Err(e),
            };
            if started.is_ok() {
                break;
            }
            if attempt == 0 {
                ctx.output.warn(&format!(
                    "Starting LXD instance {name} failed; retrying once"
                ));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        if let Err(e) = started {
            let log = instances
                .log(&name, "lxc.log")
                .await
                .map(|b| {
                    let text = String::from_utf8_lossy(&b).into_owned();
                    let lines: Vec<&str> = text.lines().collect();
                    lines[lines.len().saturating_sub(10)..].join("\n")
                })
                .unwrap_or_default();
            if Self::remove(&client, ctx, &name).await.is_ok() {
                state.remove(keys::CONTAINER_NAME);
            }
            return Err(Error::Runtime {
                instance: ctx.instance.name.clone(),
                message: format!("starting LXD instance {name} failed: {e}; lxc.log:\n{log}"),
            });
        }
        let conn = LxdConnection {
            client: client.clone(),
            name: name.clone(),
            project: self.project(),
            instance: ctx.instance.name.clone(),
        };
        self.wait_ready(&conn, ctx).await?;
        state.set(keys::HOSTNAME, hostname);
        ctx.output.info(&format!("LXD instance {name} is ready"));
        Ok(())
    }

    async fn destroy(&self, ctx: &InstanceContext, state: &mut State) -> Result<()> {
        let client = self.client().await?;
        let name = state
            .get_str(keys::CONTAINER_NAME)
            .map(str::to_string)
            .unwrap_or_else(|| lxd_instance_name(&ctx.kitchen_root, &ctx.instance.name));
        let root = ctx.kitchen_root.to_string_lossy().into_owned();
        // Only ever delete what carries this project's key.
        match client.instances().get(&name).await {
            Ok(i) if i.config.get(CONFIG_PROJECT).map(String::as_str) == Some(root.as_str()) => {
                ctx.output.info(&format!("Removing LXD instance {name}"));
                Self::remove(&client, ctx, &name).await?;
            }
            Ok(_) => ctx.output.warn(&format!(
                "LXD instance {name} was not created by kitchen-driver for this project; left alone"
            )),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(Self::err(ctx, format!("reading instance {name}"))(e)),
        }
        state.forget_instance();
        Ok(())
    }

    async fn connection(
        &self,
        ctx: &InstanceContext,
        state: &State,
    ) -> Result<Arc<dyn Connection>> {
        let name = state.created(keys::CONTAINER_NAME, &ctx.instance.name)?;
        Ok(Arc::new(LxdConnection {
            client: self.client().await?,
            name: name.to_string(),
            project: self.project(),
            instance: ctx.instance.name.clone(),
        }))
    }
}

/// A connection to an LXD instance: exec over websockets and the files API.
#[derive(Debug, Clone)]
pub struct LxdConnection {
    client: Client,
    name: String,
    project: String,
    instance: String,
}

impl LxdConnection {
    fn err(&self, action: impl Into<String>) -> impl FnOnce(lxd_client::Error) -> Error {
        let instance = self.instance.clone();
        let action = action.into();
        move |source| Error::Lxd {
            action,
            instance,
            source: Box::new(source),
        }
    }
}

#[async_trait]
impl Connection for LxdConnection {
    async fn exec(&self, req: &ExecRequest, sink: &dyn OutputSink) -> Result<ExecOutput> {
        let marker = ExecMarker::new();
        let mut b = self
            .client
            .instances()
            .exec(&self.name, req.argv.clone())
            .envs(req.env.clone())
            .env(marker.env().0, marker.env().1);
        if let Some(dir) = &req.workdir {
            b = b.cwd(dir.clone());
        }
        if let Some(user) = &req.user {
            let uid: u32 = user.parse().map_err(|_| Error::Runtime {
                instance: self.instance.clone(),
                message: format!("LXD exec takes a numeric uid, not user `{user}`"),
            })?;
            b = b.user(uid);
        }
        let mut process = b
            .spawn()
            .await
            .map_err(self.err(format!("starting `{}`", req.display())))?;
        // Dropped before the command ended (a step timeout, an abort): LXD kills the process
        // it started when the control socket closes; this kills what that process started.
        let mut kill_guard = {
            let instances = self.client.instances();
            let name = self.name.clone();
            let script = marker.kill_script();
            KillOnDrop::new(Box::pin(async move {
                if let Ok(p) = instances
                    .exec(&name, ["sh".to_string(), "-c".to_string(), script])
                    .spawn()
                    .await
                {
                    let _ = p.wait_for(KILL_WAIT).await;
                }
            }))
        };
        if let Some(stdin) = process.take_stdin() {
            stdin.close();
        }
        let stdout = process.take_stdout();
        let stderr = process.take_stderr();
        // What each stream carried so far: kept outside the pumps, which may be given up.
        let texts = [
            std::sync::Mutex::new(Vec::new()),
            std::sync::Mutex::new(Vec::new()),
        ];
        let texts = &texts;
        let pump = |stream: Option<lxd_client::OutputStream>, which: OutputStream| async move {
            let text = &texts[usize::from(which == OutputStream::Stderr)];
            let mut split = LineSplitter::default();
            if let Some(mut s) = stream {
                while let Some(chunk) = s.next().await {
                    let Ok(chunk) = chunk else { break };
                    if let Ok(mut t) = text.lock() {
                        t.extend_from_slice(&chunk);
                    }
                    split.push(&chunk, |l| sink.line(which, l));
                }
            }
            split.finish(|l| sink.line(which, l));
        };
        let pumps = async {
            tokio::join!(
                pump(stdout, OutputStream::Stdout),
                pump(stderr, OutputStream::Stderr)
            )
        };
        tokio::pin!(pumps);
        // LXD keeps the output websockets open while any process holds the command's stdout
        // or stderr, a daemon started in the background included: once the command itself
        // ended, read for a grace period more, then stop.
        let (status, output) = tokio::select! {
            status = process.wait() => {
                let output = tokio::time::timeout(EXEC_OUTPUT_GRACE, &mut pumps).await.ok();
                (status, output)
            }
            output = &mut pumps => (process.wait().await, Some(output)),
        };
        let status = status.map_err(self.err(format!("waiting for `{}`", req.display())))?;
        kill_guard.disarm();
        if output.is_none() {
            sink.line(
                OutputStream::Stderr,
                &format!(
                    "kitchen-driver: stopped reading output {}s after `{}` ended: a process it started in the background still holds stdout or stderr open",
                    EXEC_OUTPUT_GRACE.as_secs(),
                    req.display()
                ),
            );
        }
        let text = |i: usize| {
            texts[i]
                .lock()
                .map(|t| String::from_utf8_lossy(&t).into_owned())
                .unwrap_or_default()
        };
        let (out, err) = (text(0), text(1));
        Ok(ExecOutput {
            exit_code: i64::from(status.code),
            stdout: out,
            stderr: err,
        })
    }

    async fn upload_tar(&self, tar: Vec<u8>, remote_dir: &str) -> Result<()> {
        let files = self.client.instances().files(&self.name);
        let base = remote_dir.trim_end_matches('/');
        for entry in unpack_entries(tar, remote_dir)? {
            let path = format!("{base}/{}", entry.path);
            match entry.data {
                None => files
                    .mkdir_all(&path, FileOptions::default().mode(entry.mode))
                    .await
                    .map_err(self.err(format!("creating {path}")))?,
                Some(data) => {
                    if let Some((parent, _)) = path.rsplit_once('/')
                        && !parent.is_empty()
                    {
                        files
                            .mkdir_all(parent, FileOptions::default())
                            .await
                            .map_err(self.err(format!("creating {parent}")))?;
                    }
                    files
                        .push(
                            &path,
                            bytes::Bytes::from(data),
                            FileOptions::default().mode(entry.mode),
                        )
                        .await
                        .map_err(self.err(format!("uploading {path}")))?;
                }
            }
        }
        Ok(())
    }

    async fn download_tar(&self, remote: &str) -> Result<Vec<u8>> {
        let files = self.client.instances().files(&self.name);
        let info = files
            .stat(remote)
            .await
            .map_err(self.err(format!("reading {remote}")))?;
        let base = remote
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or("download")
            .to_string();
        let mut tar = TarBuilder::new();
        if info.file_type == lxd_client::FileType::Directory {
            let tmp = tempfile::Builder::new()
                .prefix("kitchen-driver-download-")
                .tempdir()
                .map_err(|e| {
                    Error::io("creating a temporary directory", std::env::temp_dir(), e)
                })?;
            files
                .pull_dir(remote, tmp.path())
                .await
                .map_err(self.err(format!("downloading {remote}")))?;
            tar.add_path(tmp.path(), &base)?;
        } else {
            let (_, data) = files
                .read(remote)
                .await
                .map_err(self.err(format!("downloading {remote}")))?;
            tar.add_bytes(&base, &data, 0o644)?;
        }
        tar.finish()
    }

    async fn open_tty(
        &self,
        argv: &[String],
        env: &[(String, String)],
        width: u16,
        height: u16,
    ) -> Result<TtySession> {
        let mut process = self
            .client
            .instances()
            .exec(&self.name, argv.to_vec())
            .envs(env.to_vec())
            .interactive(true)
            .size(u32::from(width), u32::from(height))
            .spawn()
            .await
            .map_err(self.err("starting the login shell"))?;
        let stdin = process.take_stdin();
        let stdout = process.take_stdout();
        let (session, ends) = TtySession::channels();
        let instance = self.instance.clone();
        tokio::spawn(async move {
            let output = match stdout {
                Some(s) => s.map(|item| item.ok().map(|b| b.to_vec())).left_stream(),
                None => futures::stream::empty().right_stream(),
            };
            let mut runtime = LxdTty {
                process: &process,
                stdin,
            };
            let exit = ends.pump(output, &mut runtime).await;
            drop(runtime);
            let code = process
                .wait()
                .await
                .map(|s| i64::from(s.code))
                .map_err(|source| Error::Lxd {
                    action: "waiting for the login shell".into(),
                    instance,
                    source: Box::new(source),
                });
            let _ = exit.send(code);
        });
        Ok(session)
    }

    fn target(&self) -> Target {
        Target::Lxd {
            name: self.name.clone(),
            project: self.project.clone(),
        }
    }

    fn instance(&self) -> &str {
        &self.instance
    }

    async fn resource_usage(&self) -> Result<Option<crate::transport::ResourceUsage>> {
        let state = self
            .client
            .instances()
            .state(&self.name)
            .await
            .map_err(self.err("reading the instance state"))?;
        let positive = |v: i64| u64::try_from(v).ok().filter(|v| *v > 0);
        let memory = state.memory.as_ref();
        Ok(Some(crate::transport::ResourceUsage::new(
            memory.and_then(|m| positive(m.usage)),
            memory.and_then(|m| positive(m.usage_peak)),
            state
                .cpu
                .as_ref()
                .and_then(|c| positive(c.usage))
                .map(std::time::Duration::from_nanos),
        )))
    }
}

/// LXD's side of a `login` exec: its stdin websocket and its resize control.
struct LxdTty<'a> {
    process: &'a lxd_client::ExecProcess,
    stdin: Option<lxd_client::ExecStdin>,
}

#[async_trait]
impl TtyRuntime for LxdTty<'_> {
    async fn write(&mut self, data: Vec<u8>) -> bool {
        let written = match self.stdin.as_mut() {
            Some(w) => w.write(bytes::Bytes::from(data)).await.is_ok(),
            None => false,
        };
        if !written {
            self.stdin = None;
        }
        written
    }

    async fn close_input(&mut self) {
        self.stdin = None;
    }

    async fn resize(&mut self, width: u16, height: u16) {
        let _ = self
            .process
            .resize(u32::from(width), u32::from(height))
            .await;
    }
}

/// One entry of an upload archive: a directory (`data` is `None`) or a file.
#[derive(Debug, PartialEq)]
struct TarEntry {
    path: String,
    mode: u32,
    data: Option<Vec<u8>>,
}

/// The directories and regular files of a tar archive, in order (pure: unit-tested).
fn unpack_entries(tar: Vec<u8>, remote_dir: &str) -> Result<Vec<TarEntry>> {
    let bad = |e: std::io::Error| Error::io("reading upload archive for", remote_dir, e);
    let mut archive = tar::Archive::new(std::io::Cursor::new(tar));
    let mut out = Vec::new();
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let path = entry
            .path()
            .map_err(bad)?
            .to_string_lossy()
            .trim_end_matches('/')
            .trim_start_matches("./")
            .to_string();
        if path.is_empty() || path == "." {
            continue;
        }
        let mode = entry.header().mode().unwrap_or(0o644) & 0o7777;
        match entry.header().entry_type() {
            tar::EntryType::Directory => out.push(TarEntry {
                path,
                mode,
                data: None,
            }),
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mut data = Vec::new();
                std::io::Read::read_to_end(&mut entry, &mut data).map_err(bad)?;
                out.push(TarEntry {
                    path,
                    mode,
                    data: Some(data),
                });
            }
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn driver(v: serde_json::Value) -> Result<LxdDriver> {
        let serde_json::Value::Object(m) = v else {
            panic!("object")
        };
        LxdDriver::from_config("default-busybox", &m)
    }

    #[test]
    fn keys_are_checked() {
        assert!(driver(json!({"image": "kitchen/busybox", "profiles": ["default"], "config": {"security.nesting": true, "limits.cpu": 1}, "devices": {"d": {"type": "disk", "source": "/x", "path": "/y"}}, "type": "container", "ephemeral": false, "project": "p"})).is_ok());
        let e = driver(json!({})).unwrap_err().to_string();
        assert!(e.contains("`image`"), "{e}");
        let e = driver(json!({"image": "ubuntu:22.04"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("remote `ubuntu`"), "{e}");
        assert!(driver(json!({"image": "local:kitchen/busybox"})).is_ok());
        let e = driver(json!({"image": "i", "type": "vm"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`type`"), "{e}");
        let e = driver(json!({"image": "i", "profiles": "default"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("profiles"), "{e}");
    }

    #[test]
    fn archive_entries_keep_modes_and_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        std::fs::write(dir.path().join("data/a.txt"), "A").unwrap();
        let mut b = TarBuilder::new();
        b.add_path(&dir.path().join("data"), "data").unwrap();
        b.add_bytes("run.sh", b"echo hi", 0o755).unwrap();
        let entries = unpack_entries(b.finish().unwrap(), "/tmp/kitchen").unwrap();
        assert_eq!(entries[0].path, "data");
        assert!(entries[0].data.is_none());
        assert!(
            entries.contains(&TarEntry {
                path: "data/a.txt".into(),
                mode: entries
                    .iter()
                    .find(|e| e.path == "data/a.txt")
                    .unwrap()
                    .mode,
                data: Some(b"A".to_vec())
            })
        );
        assert!(entries.contains(&TarEntry {
            path: "run.sh".into(),
            mode: 0o755,
            data: Some(b"echo hi".to_vec())
        }));
    }
}
