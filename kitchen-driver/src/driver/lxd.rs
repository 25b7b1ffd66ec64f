//! The LXD driver (`driver: {name: lxd}`), over `lxd-client`.
//!
//! Keys: `image` (alias or fingerprint in the local image store), `profiles`, `config`
//! (instance config such as `security.nesting`, `limits.memory`), `devices`, `storage_pool`,
//! `type` (`container` or `virtual-machine`), `ephemeral`, `project`, `remote` (only `local`
//! here), `wait_for` (a command that must exit 0 before the instance counts as ready) and
//! `ready_timeout` (seconds, default 120).
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

use super::docker::project_hash;
use super::{
    Connection, Driver, DriverContext, ExecOutput, ExecRequest, LoginCommand, TarBuilder, Target,
    TtySession, parse_block,
};
use crate::config::PluginConfig;
use crate::error::{Error, Result};
use crate::report::{LineSplitter, NullSink, OutputSink, OutputStream};
use crate::state::State;

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
    wait_for: Option<String>,
    ready_timeout: Option<u64>,
}

/// The LXD instance name for an instance of the project at `kitchen_root`: a valid hostname
/// (`[a-z0-9-]`, at most 63 characters, starting with a letter).
pub fn instance_name(kitchen_root: &std::path::Path, instance: &str) -> String {
    let mut tail: String = instance
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let prefix = format!("kitchen-{}-", project_hash(kitchen_root));
    let room = 63 - prefix.len();
    if tail.len() > room {
        // Keep names unique when truncating: the end is a hash of the full instance name.
        let h = project_hash(std::path::Path::new(instance));
        tail.truncate(room - 7);
        tail = format!("{}-{}", tail.trim_end_matches('-'), &h[..6]);
    }
    let name = format!("{prefix}{tail}");
    name.trim_end_matches('-').to_string()
}

/// The LXD driver.
#[derive(Debug)]
pub struct LxdDriver {
    config: LxdConfig,
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
            Some(i) if i.contains(':') => {
                let (remote, _) = i.split_once(':').unwrap_or_default();
                if remote != "local" {
                    return Err(bad(format!(
                        "key `image`: `{i}` names the remote `{remote}`; only images in the local store are supported (no registry is reachable here): import it with `lxc image import` and use its alias"
                    )));
                }
            }
            Some(_) => {}
        }
        if let Some(r) = &config.remote
            && r != "local"
        {
            return Err(bad(format!(
                "key `remote`: only `local` is supported, not `{r}`"
            )));
        }
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
            client: OnceCell::new(),
        })
    }

    fn project(&self) -> String {
        self.config
            .project
            .clone()
            .unwrap_or_else(|| "default".into())
    }

    async fn client(&self) -> Result<Client> {
        self.client
            .get_or_try_init(|| async {
                let c = Client::connect_local().await.map_err(|source| Error::Lxd {
                    action:
                        "connecting to the LXD daemon (is it running? scripts/setup-host starts it)"
                            .into(),
                    instance: String::new(),
                    source: Box::new(source),
                })?;
                Ok::<_, Error>(match &self.config.project {
                    Some(p) => c.project(p.clone()),
                    None => c,
                })
            })
            .await
            .cloned()
    }

    fn err(
        ctx: &DriverContext,
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
    async fn remove(client: &Client, ctx: &DriverContext, name: &str) -> Result<bool> {
        let instances = client.instances();
        match instances.get(name).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => return Ok(false),
            Err(e) => return Err(Self::err(ctx, format!("reading instance {name}"))(e)),
        }
        // A stopped instance refuses the stop; an ephemeral one is gone after it. A stop that
        // LXD gave up on (its 30 s operation timeout, e.g. when another client of the daemon
        // holds a silent connection) may still be running and make it refuse the delete: retry.
        if let Ok(op) = instances.stop(name, true).await {
            let _ = op.wait(Some(Duration::from_secs(300))).await;
        }
        let mut attempt = 0u64;
        loop {
            attempt += 1;
            let result = match instances.delete(name).await {
                Ok(op) => op.wait(Some(Duration::from_secs(300))).await.map(|_| ()),
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => return Ok(true),
                Err(e) if e.is_not_found() => return Ok(true),
                Err(e) if attempt < 6 => {
                    tracing::debug!(instance = %name, error = %e, "delete refused; retrying");
                    tokio::time::sleep(Duration::from_secs(attempt)).await;
                    if let Ok(op) = instances.stop(name, true).await {
                        let _ = op.wait(Some(Duration::from_secs(300))).await;
                    }
                }
                Err(e) => return Err(Self::err(ctx, format!("deleting instance {name}"))(e)),
            }
        }
    }

    async fn wait_ready(&self, conn: &LxdConnection, ctx: &DriverContext) -> Result<()> {
        let timeout = Duration::from_secs(self.config.ready_timeout.unwrap_or(120));
        let started = Instant::now();
        let probe = super::READINESS_PROBE;
        let mut last;
        loop {
            match conn.exec(&ExecRequest::shell(probe), &NullSink).await {
                Ok(out) => {
                    let answer = out.stdout.trim().to_string();
                    if answer == "running" || answer == "degraded" {
                        break;
                    }
                    last = format!("`systemctl is-system-running` answered `{answer}`");
                }
                Err(e) => last = e.to_string(),
            }
            if started.elapsed() > timeout {
                return Err(Error::Runtime {
                    instance: ctx.instance.name.clone(),
                    message: format!(
                        "LXD instance {} not ready after {}s: {last}; raise `ready_timeout` if it is slow",
                        conn.name,
                        timeout.as_secs()
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
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

    async fn create(&self, ctx: &DriverContext, state: &mut State) -> Result<()> {
        let client = self.client().await?;
        let instances = client.instances();
        let name = instance_name(&ctx.kitchen_root, &ctx.instance.name);
        let root = ctx.kitchen_root.to_string_lossy().into_owned();
        if state.get_str("container_name").is_some()
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
        let image = image.strip_prefix("local:").unwrap_or(&image).to_string();
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
        ctx.output
            .debug(&format!("Creating LXD instance {name} from {image}"));
        // Recorded first: a crash from here on leaves a name destroy can find.
        state.set("container_name", name.clone());
        state.set("lxd_project", self.project());
        state.set("image", image.clone());
        let created = match b.send().await {
            Ok(op) => op.wait(Some(Duration::from_secs(600))).await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = created {
            let _ = Self::remove(&client, ctx, &name).await;
            state.remove("container_name");
            return Err(Self::err(
                ctx,
                format!("creating instance {name} from {image}"),
            )(e));
        }
        // The hostname test-kitchen users expect inside is the instance's name (as on Docker),
        // not the image's (`debian-12`) nor the LXD name: both test images' inits, and systemd,
        // set it from /etc/hostname at boot. An instance without /etc (a bare VM) keeps LXD's.
        let hostname = super::docker::sanitize_hostname(&ctx.instance.name);
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
                Ok(op) => op.wait(Some(Duration::from_secs(120))).await.map(|_| ()),
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
                state.remove("container_name");
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
        state.set("hostname", hostname);
        ctx.output.info(&format!("LXD instance {name} is ready"));
        Ok(())
    }

    async fn destroy(&self, ctx: &DriverContext, state: &mut State) -> Result<()> {
        let client = self.client().await?;
        let name = state
            .get_str("container_name")
            .map(str::to_string)
            .unwrap_or_else(|| instance_name(&ctx.kitchen_root, &ctx.instance.name));
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
        for key in ["container_name", "lxd_project", "hostname", "image"] {
            state.remove(key);
        }
        Ok(())
    }

    async fn connection(&self, ctx: &DriverContext, state: &State) -> Result<Arc<dyn Connection>> {
        let Some(name) = state.get_str("container_name") else {
            return Err(Error::NotCreated {
                instance: ctx.instance.name.clone(),
            });
        };
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
        let mut b = self
            .client
            .instances()
            .exec(&self.name, req.argv.clone())
            .envs(req.env.clone());
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
        if let Some(stdin) = process.take_stdin() {
            stdin.close();
        }
        let stdout = process.take_stdout();
        let stderr = process.take_stderr();
        let pump = |stream: Option<lxd_client::OutputStream>, which: OutputStream| async move {
            let mut text = Vec::new();
            let mut split = LineSplitter::default();
            if let Some(mut s) = stream {
                while let Some(chunk) = s.next().await {
                    let Ok(chunk) = chunk else { break };
                    text.extend_from_slice(&chunk);
                    split.push(&chunk, |l| sink.line(which, l));
                }
            }
            split.finish(|l| sink.line(which, l));
            String::from_utf8_lossy(&text).into_owned()
        };
        let (out, err) = tokio::join!(
            pump(stdout, OutputStream::Stdout),
            pump(stderr, OutputStream::Stderr)
        );
        let status = process
            .wait(None)
            .await
            .map_err(self.err(format!("waiting for `{}`", req.display())))?;
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
        let mut stdin = process.take_stdin();
        let mut stdout = process.take_stdout();
        let (session, mut ends) = TtySession::channels();
        let instance = self.instance.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    data = ends.input.recv(), if stdin.is_some() => match (data, stdin.as_mut()) {
                        (Some(d), Some(w)) => {
                            if w.write(bytes::Bytes::from(d)).await.is_err() {
                                stdin = None;
                            }
                        }
                        _ => stdin = None,
                    },
                    Some((w, h)) = ends.resize.recv() => {
                        let _ = process.resize(u32::from(w), u32::from(h)).await;
                    }
                    chunk = async {
                        match stdout.as_mut() {
                            Some(s) => s.next().await,
                            None => None,
                        }
                    } => match chunk {
                        Some(Ok(b)) => {
                            if ends.output.send(b.to_vec()).await.is_err() {
                                break;
                            }
                        }
                        _ => break,
                    },
                }
            }
            drop(ends.output);
            drop(stdin);
            let code = process
                .wait(None)
                .await
                .map(|s| i64::from(s.code))
                .map_err(|source| Error::Lxd {
                    action: "waiting for the login shell".into(),
                    instance,
                    source: Box::new(source),
                });
            let _ = ends.exit.send(code);
        });
        Ok(session)
    }

    fn login_command(&self) -> LoginCommand {
        let mut args = vec!["exec".to_string(), self.name.clone()];
        if self.project != "default" {
            args.extend(["--project".to_string(), self.project.clone()]);
        }
        args.extend([
            "--".into(),
            "sh".into(),
            "-c".into(),
            super::LOGIN_SHELL.into(),
        ]);
        LoginCommand {
            program: "lxc".into(),
            args,
            env: Vec::new(),
        }
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
    fn names_are_valid_hostnames_unique_per_project() {
        let a = instance_name(std::path::Path::new("/a"), "default-Ubuntu 2204");
        let b = instance_name(std::path::Path::new("/b"), "default-Ubuntu 2204");
        assert_ne!(a, b);
        assert!(
            a.starts_with("kitchen-") && a.ends_with("-default-ubuntu-2204"),
            "{a}"
        );
        let long = "x".repeat(100);
        let l1 = instance_name(std::path::Path::new("/a"), &long);
        let l2 = instance_name(std::path::Path::new("/a"), &format!("{long}y"));
        assert!(l1.len() <= 63 && l2.len() <= 63, "{l1}");
        assert_ne!(l1, l2);
        for n in [&a, &l1] {
            assert!(
                n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            );
            assert!(!n.ends_with('-'));
        }
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
