//! The LXD driver (`driver: {name: lxd}`), over `lxd-client`.
//!
//! Keys: `image` (alias or fingerprint in the local image store), `profiles`, `config`
//! (instance config such as `security.nesting`, `limits.memory`), `devices`, `storage_pool`,
//! `type` (`container` or `virtual-machine`), `ephemeral`, `project`, `target` (a cluster
//! member), `wait_for` (a command that must exit 0 before the instance counts as ready),
//! `ready_timeout` (seconds, default 120), `step_timeout` (seconds: limits each step, see
//! `lifecycle::step_timeout_of`) and `pristine_snapshot` (see below). The server:
//! `remote` (an `lxc` remote) or `remote_url` with `server_certificate`, `client_certificate`
//! and `client_key` (see `lxd_remote.rs`, which also names their environment variables); the
//! local socket otherwise.
//!
//! Reset: create snapshots the instance as [`PRISTINE_SNAPSHOT`] once it is ready (the state
//! create leaves it in; taken after the first start, the snapshot's files are already shifted
//! to the container's uid map, so a restored start skips LXD 5.0.2's remap of the rootfs, about
//! a second for Debian), and `reset` kills the instance (no clean shutdown: nothing of it is
//! kept), restores the snapshot, starts it and waits until it is ready as create does. The
//! snapshot of the running instance is what a power cut would leave on disk; its boot replays
//! nothing a test depends on. On a copy-on-write
//! pool (btrfs, zfs, lvm, ceph) the snapshot is a clone taking a few milliseconds; on a `dir`
//! pool it copies the whole rootfs (seconds for Debian, measured in PERFORMANCE.md), as does
//! its restore, so by default (`pristine_snapshot` unset) create takes it only on copy-on-write
//! pools and `reset` elsewhere deletes and recreates the instance from its image, which costs
//! the same as a restore there and nothing at create. `pristine_snapshot: true` takes it on
//! every pool, `false` never.
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
use super::{Driver, PRISTINE_SNAPSHOT, ready};
use crate::config::{PluginConfig, parse_block};
use crate::converge_cache::{self, CachedImage};
use crate::error::{Error, Result};
use crate::plugin::InstanceContext;
use crate::report::{LineSplitter, NullSink, OutputSink, OutputStream};
use crate::state::{State, keys};
use crate::transport::tty::TtyRuntime;
use crate::transport::{
    Connection, EXEC_OUTPUT_GRACE, ExecMarker, ExecOutput, ExecRequest, KillOnDrop, Target,
    TtySession, UploadEntry, UploadSet,
};

/// How long the kill of a stopped command may take.
const KILL_WAIT: Duration = Duration::from_secs(30);

/// Config key holding the project directory on every instance the driver creates (the
/// checkout's owner mark, [`super::naming::LXD_OWNER_KEY`]).
pub const CONFIG_PROJECT: &str = super::naming::LXD_OWNER_KEY;
/// Config key holding the instance name on every instance the driver creates.
pub const CONFIG_INSTANCE: &str = super::naming::LXD_INSTANCE_KEY;

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
    pristine_snapshot: Option<bool>,
    /// Read by [`crate::converge_cache::enabled`] from the raw block; declared so it is a
    /// known key.
    #[allow(dead_code)]
    converge_cache: bool,
    /// Each step's time limit in seconds: read by the runner (`lifecycle::step_timeout_of`),
    /// named here so it is a known key.
    #[allow(dead_code)]
    step_timeout: Option<f64>,
}

/// State key: the snapshot `reset` restores, when create took one.
pub const STATE_PRISTINE_SNAPSHOT: &str = "lxd_pristine_snapshot";

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

    /// Whether create takes the pristine snapshot of `name`: `pristine_snapshot` when set,
    /// else only when the instance's root pool is copy-on-write (not `dir`).
    async fn wants_pristine_snapshot(&self, client: &Client, name: &str) -> Result<bool> {
        if let Some(explicit) = self.config.pristine_snapshot {
            return Ok(explicit);
        }
        let Ok(instance) = client.instances().get(name).await else {
            return Ok(false);
        };
        let Some(pool) = instance
            .expanded_devices
            .get("root")
            .and_then(|root| root.get("pool"))
        else {
            return Ok(false);
        };
        Ok(match client.storage_pools().get(pool).await {
            Ok(p) => p.driver != "dir",
            Err(_) => false,
        })
    }

    /// Snapshots the created, started and ready instance as [`PRISTINE_SNAPSHOT`] when
    /// [`Self::wants_pristine_snapshot`]; the snapshot's name, or `None`.
    async fn pristine_snapshot(
        &self,
        client: &Client,
        ctx: &InstanceContext,
        name: &str,
    ) -> Result<Option<String>> {
        if !self.wants_pristine_snapshot(client, name).await? {
            return Ok(None);
        }
        let started = Instant::now();
        let snapshots = client.instances().snapshots(name);
        let taken = match snapshots.create(PRISTINE_SNAPSHOT).send().await {
            Ok(op) => op.wait_for(Duration::from_secs(600)).await.map(|_| ()),
            Err(e) => Err(e),
        };
        taken.map_err(Self::err(ctx, format!("snapshotting instance {name}")))?;
        ctx.output.debug(&format!(
            "Snapshot {name}/{PRISTINE_SNAPSHOT} taken in {} ms",
            started.elapsed().as_millis()
        ));
        Ok(Some(PRISTINE_SNAPSHOT.to_string()))
    }

    /// Starts `name`. A start fails when LXC's pre-start hook (`lxd callhook`) cannot reach
    /// the daemon in time ("forkstart ... exit status 1"), as when another client holds a
    /// silent unix connection to LXD 5.0.2: so it tries twice, and the error carries the end
    /// of the container's `lxc.log`.
    async fn start(client: &Client, ctx: &InstanceContext, name: &str) -> Result<(), String> {
        let instances = client.instances();
        let mut started = Ok(());
        for attempt in 0..2 {
            started = match instances.start(name).await {
                Ok(op) => op.wait_for(Duration::from_secs(120)).await.map(|_| ()),
                Err(e) => Err(e),
            };
            if started.is_ok() {
                return Ok(());
            }
            if attempt == 0 {
                ctx.output.warn(&format!(
                    "Starting LXD instance {name} failed; retrying once"
                ));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        let log = instances
            .log(name, "lxc.log")
            .await
            .map(|b| {
                let text = String::from_utf8_lossy(&b).into_owned();
                let lines: Vec<&str> = text.lines().collect();
                lines[lines.len().saturating_sub(10)..].join("\n")
            })
            .unwrap_or_default();
        let error = started.err().map(|e| e.to_string()).unwrap_or_default();
        Err(format!(
            "starting LXD instance {name} failed: {error}; lxc.log:\n{log}"
        ))
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
            // Short: a probe that finds systemd booting waits in the instance (`--wait`);
            // only those that find it not yet answering come round again.
            Duration::from_millis(100),
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
        // The name is ours only if the instance says so: this checkout, and this instance
        // (names of two instances can collide; the loader refuses that, but another tool or
        // an older kitchen.yml may have created the container).
        match instances.get(&name).await {
            Ok(existing) => match owner_of(&existing.config, &root, &ctx.instance.name) {
                Owner::ThisInstance => {
                    Self::remove(&client, ctx, &name).await?;
                    ctx.output
                        .warn(&format!("Removed leftover instance {name}"));
                }
                other => {
                    return Err(Error::Runtime {
                        instance: ctx.instance.name.clone(),
                        message: format!(
                            "an LXD instance named {name} exists and {}; remove or rename it",
                            other.describe()
                        ),
                    });
                }
            },
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(Self::err(ctx, format!("reading instance {name}"))(e)),
        }
        // Image: by alias, or by fingerprint when it looks like one; a converge cache hit
        // starts from the cached image instead.
        let image = match state.get_str(converge_cache::STATE_IMAGE) {
            Some(cached) => cached.to_string(),
            None => self.config.image.clone().unwrap_or_default(),
        };
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
        // Recorded, and saved, first: a crash from here on leaves a name destroy can find.
        state.set(keys::CONTAINER_NAME, name.clone());
        state.set(keys::LXD_PROJECT, self.project());
        state.set(keys::IMAGE, image.clone());
        ctx.save_state(state)?;
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
        if let Err(message) = Self::start(&client, ctx, &name).await {
            if Self::remove(&client, ctx, &name).await.is_ok() {
                state.remove(keys::CONTAINER_NAME);
            }
            return Err(Error::Runtime {
                instance: ctx.instance.name.clone(),
                message,
            });
        }
        let conn = LxdConnection {
            client: client.clone(),
            name: name.clone(),
            project: self.project(),
            instance: ctx.instance.name.clone(),
        };
        self.wait_ready(&conn, ctx).await?;
        // After the first start: see the module's "Reset".
        if let Some(snapshot) = self.pristine_snapshot(&client, ctx, &name).await? {
            state.set(STATE_PRISTINE_SNAPSHOT, snapshot);
        }
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
        // Only ever delete what carries this project's and this instance's keys.
        match client.instances().get(&name).await {
            Ok(i) => match owner_of(&i.config, &root, &ctx.instance.name) {
                Owner::ThisInstance => {
                    ctx.output.info(&format!("Removing LXD instance {name}"));
                    Self::remove(&client, ctx, &name).await?;
                }
                other => ctx.output.warn(&format!(
                    "LXD instance {name} {}; left alone",
                    other.describe()
                )),
            },
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(Self::err(ctx, format!("reading instance {name}"))(e)),
        }
        state.forget_instance();
        state.remove(STATE_PRISTINE_SNAPSHOT);
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

    async fn base_image_id(&self, ctx: &InstanceContext) -> Result<Option<String>> {
        let client = self.client().await?;
        let image = self.config.image.clone().unwrap_or_default();
        // REMOTE:ALIAS: the copy in the instance's server (made once) is what create uses.
        let image = match lxd_image::remote_image(&image) {
            Some((remote, alias)) => {
                lxd_image::ensure_copied(&client, remote, alias, &ctx.instance.name, &ctx.output)
                    .await?;
                alias.to_string()
            }
            None => image.strip_prefix("local:").unwrap_or(&image).to_string(),
        };
        let by_fingerprint = image.len() >= 12 && image.chars().all(|c| c.is_ascii_hexdigit());
        let fingerprint = if by_fingerprint {
            client.images().get(&image).await.map(|i| i.fingerprint)
        } else {
            client.images().get_alias(&image).await.map(|a| a.target)
        };
        fingerprint
            .map(Some)
            .map_err(Self::err(ctx, format!("reading image {image}")))
    }

    async fn find_converged(&self, ctx: &InstanceContext, key: &str) -> Result<Option<String>> {
        let client = self.client().await?;
        let alias = cache_alias(&ctx.kitchen_root, key);
        match client.images().get_alias(&alias).await {
            Ok(_) => Ok(Some(alias)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(Self::err(ctx, format!("reading image alias {alias}"))(e)),
        }
    }

    async fn publish_converged(
        &self,
        ctx: &InstanceContext,
        state: &State,
        key: &str,
    ) -> Result<String> {
        let name = state
            .created(keys::CONTAINER_NAME, &ctx.instance.name)?
            .to_string();
        let client = self.client().await?;
        let alias = cache_alias(&ctx.kitchen_root, key);
        // LXD publishes a running instance only through a snapshot (a clone on copy-on-write
        // pools); the snapshot goes once the image exists.
        let snapshots = client.instances().snapshots(&name);
        if let Ok(op) = snapshots.delete(CONVERGED_SNAPSHOT).await {
            let _ = op.wait_for(Duration::from_secs(600)).await;
        }
        let taken = match snapshots.create(CONVERGED_SNAPSHOT).send().await {
            Ok(op) => op.wait_for(Duration::from_secs(600)).await.map(|_| ()),
            Err(e) => Err(e),
        };
        taken.map_err(Self::err(ctx, format!("snapshotting instance {name}")))?;
        let body = serde_json::json!({
            "source": {"type": "snapshot", "name": format!("{name}/{CONVERGED_SNAPSHOT}")},
            // Uncompressed: gzip of a Debian rootfs costs more than the converge it saves.
            "compression_algorithm": "none",
            "properties": {
                "description": format!("kitchen-driver converge cache: {} ({key})", ctx.instance.name),
                converge_cache::PROPERTY_KEY: key,
                CONFIG_PROJECT: ctx.kitchen_root.to_string_lossy(),
                CONFIG_INSTANCE: ctx.instance.name,
            },
            "aliases": [{"name": alias, "description": format!("converge cache {key}")}],
        });
        let published = match client
            .query_operation(lxd_client::Method::POST, "/1.0/images", Some(&body))
            .await
        {
            Ok(op) => op.wait_for(Duration::from_secs(1800)).await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Ok(op) = snapshots.delete(CONVERGED_SNAPSHOT).await {
            let _ = op.wait_for(Duration::from_secs(600)).await;
        }
        published.map_err(Self::err(ctx, format!("publishing {name} as {alias}")))?;
        Ok(alias)
    }

    async fn evict_converged(&self, ctx: &InstanceContext, max: usize) -> Result<Vec<String>> {
        let client = self.client().await?;
        let images = lxd_cached_images(&client, &ctx.kitchen_root)
            .await
            .map_err(Self::err(ctx, "listing cached images"))?;
        let mut evicted = Vec::new();
        for image in converge_cache::to_evict(&images, max) {
            remove_lxd_cached(&client, &image)
                .await
                .map_err(Self::err(ctx, format!("removing image {}", image.name)))?;
            evicted.push(image.name);
        }
        Ok(evicted)
    }

    async fn reset(&self, ctx: &InstanceContext, state: &mut State) -> Result<()> {
        let name = state
            .created(keys::CONTAINER_NAME, &ctx.instance.name)?
            .to_string();
        let client = self.client().await?;
        let snapshot = state.get_str(STATE_PRISTINE_SNAPSHOT).map(str::to_string);
        let Some(snapshot) = snapshot else {
            // No snapshot (a `dir` pool): a new instance from the image is the pristine one.
            ctx.output.info(&format!(
                "Recreating LXD instance {name} from its image (no {PRISTINE_SNAPSHOT} snapshot on this pool)"
            ));
            Self::remove(&client, ctx, &name).await?;
            state.remove(keys::CONTAINER_NAME);
            return self.create(ctx, state).await;
        };
        ctx.output
            .info(&format!("Restoring LXD instance {name} to {snapshot}"));
        let instances = client.instances();
        let mut phase = Instant::now();
        let mut took = |what: &str| {
            ctx.output.debug(&format!(
                "LXD instance {name}: {what} in {} ms",
                phase.elapsed().as_millis()
            ));
            phase = Instant::now();
        };
        // Killed, not shut down: the restore throws away whatever a clean shutdown would
        // save, and LXD restores a running instance by killing it too. Not an ephemeral
        // one, which a stop deletes: LXD's restore keeps it while it kills it.
        let current = instances
            .get(&name)
            .await
            .map_err(Self::err(ctx, format!("reading instance {name}")))?;
        // LXD restarts what it restores running.
        let restarted_by_lxd = current.is_running() && current.ephemeral;
        if current.is_running() && !current.ephemeral {
            let stopped = match instances.stop(&name).force().await {
                Ok(op) => op.wait_for(Duration::from_secs(120)).await.map(|_| ()),
                Err(e) => Err(e),
            };
            stopped.map_err(Self::err(ctx, format!("stopping instance {name}")))?;
            took("killed");
        }
        let restored = match instances.snapshots(&name).restore(&snapshot).await {
            Ok(op) => op.wait_for(Duration::from_secs(600)).await.map(|_| ()),
            Err(e) => Err(e),
        };
        restored.map_err(Self::err(ctx, format!("restoring {name} to {snapshot}")))?;
        took("restored");
        // The snapshot was taken after the first start: its files are already shifted to the
        // container's uid map, so this start has no remap to do.
        if !restarted_by_lxd {
            Self::start(&client, ctx, &name)
                .await
                .map_err(|message| Error::Runtime {
                    instance: ctx.instance.name.clone(),
                    message,
                })?;
            took("started");
        }
        let conn = LxdConnection {
            client: client.clone(),
            name: name.clone(),
            project: self.project(),
            instance: ctx.instance.name.clone(),
        };
        self.wait_ready(&conn, ctx).await?;
        took("ready");
        ctx.output.info(&format!("LXD instance {name} is reset"));
        Ok(())
    }
}

/// The snapshot a converged instance is published from (removed once published).
const CONVERGED_SNAPSHOT: &str = "kitchen-converged";

/// The alias of this checkout's cached image for `key`.
fn cache_alias(kitchen_root: &std::path::Path, key: &str) -> String {
    format!(
        "kitchen-cache-{}",
        converge_cache::image_suffix(kitchen_root, key)
    )
}

/// Seconds since the epoch of an RFC 3339 time (0 for LXD's "never", or unreadable).
fn epoch(t: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| d.timestamp().max(0))
        .unwrap_or(0)
}

/// The converge cache images of the checkout at `kitchen_root` in the local LXD store.
///
/// # Errors
/// API errors.
pub async fn lxd_cached_images(
    client: &Client,
    kitchen_root: &std::path::Path,
) -> std::result::Result<Vec<CachedImage>, lxd_client::Error> {
    let root = kitchen_root.to_string_lossy();
    Ok(client
        .images()
        .list()
        .await?
        .into_iter()
        .filter(|i| i.properties.get(CONFIG_PROJECT).map(String::as_str) == Some(root.as_ref()))
        .filter_map(|i| {
            let key = i.properties.get(converge_cache::PROPERTY_KEY)?.clone();
            let created = epoch(&i.created_at);
            Some(CachedImage {
                runtime: "lxd",
                name: i
                    .aliases
                    .first()
                    .map(|a| a.name.clone())
                    .unwrap_or_else(|| i.fingerprint.clone()),
                id: i.fingerprint,
                key,
                instance: i
                    .properties
                    .get(CONFIG_INSTANCE)
                    .cloned()
                    .unwrap_or_default(),
                size: u64::try_from(i.size).unwrap_or(0),
                created,
                last_used: epoch(&i.last_used_at).max(created),
            })
        })
        .collect())
}

/// Deletes a cached image (instances created from it keep their own copy).
///
/// # Errors
/// API errors other than "not found".
pub async fn remove_lxd_cached(
    client: &Client,
    image: &CachedImage,
) -> std::result::Result<(), lxd_client::Error> {
    match client.images().delete(&image.id).await {
        Ok(op) => op.wait_for(Duration::from_secs(300)).await.map(|_| ()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whose an existing LXD instance is, by its owner keys.
#[derive(Debug, PartialEq)]
enum Owner {
    /// This checkout's, for this kitchen instance: kitchen-driver may replace or delete it.
    ThisInstance,
    /// This checkout's, for another kitchen instance (their names collide).
    OtherInstance(String),
    /// Not this checkout's (another checkout's, or not kitchen-driver's at all).
    Foreign,
}

impl Owner {
    fn describe(&self) -> String {
        match self {
            Owner::ThisInstance => "belongs to this instance".into(),
            Owner::OtherInstance(other) => format!(
                "belongs to this project's instance `{other}`, whose LXD name is the same (LXD names are lowercase, with `-` for anything but letters and digits): rename one of the two"
            ),
            Owner::Foreign => "was not created by kitchen-driver for this project".into(),
        }
    }
}

/// Compares an instance's owner keys with this checkout (`root`) and kitchen instance. An
/// instance created before the instance key existed (project key only) counts as this one's.
fn owner_of(
    config: &std::collections::HashMap<String, String>,
    root: &str,
    instance: &str,
) -> Owner {
    if config.get(CONFIG_PROJECT).map(String::as_str) != Some(root) {
        return Owner::Foreign;
    }
    match config.get(CONFIG_INSTANCE) {
        Some(other) if other != instance => Owner::OtherInstance(other.clone()),
        _ => Owner::ThisInstance,
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

    /// Sends each entry through lxd-client's file API: a directory is created, a file is
    /// pushed streamed from disk (read in chunks as it is sent, so memory stays bounded
    /// whatever the size of a cookbook or a roles tree), a symlink is created as a link.
    async fn upload_set(&self, upload: UploadSet, remote_dir: &str) -> Result<()> {
        let files = self.client.instances().files(&self.name);
        let base = remote_dir.trim_end_matches('/');
        // Directories known to exist: the walk lists a directory before what it holds, so
        // only generated files with a `/` in their name need a parent made.
        let mut made = std::collections::HashSet::new();
        for entry in upload.entries() {
            let entry = entry?;
            let path = format!("{base}/{}", entry.name());
            if let Some((parent, _)) = entry.name().rsplit_once('/')
                && !made.contains(parent)
            {
                let parent = format!("{base}/{parent}");
                files
                    .mkdir_all(&parent, FileOptions::default())
                    .await
                    .map_err(self.err(format!("creating {parent}")))?;
            }
            match entry {
                UploadEntry::Dir { name, mode } => {
                    files
                        .mkdir_all(&path, FileOptions::default().mode(mode))
                        .await
                        .map_err(self.err(format!("creating {path}")))?;
                    made.insert(name);
                }
                UploadEntry::File { local, mode, .. } => files
                    .push_file(&local, &path, FileOptions::default().mode(mode))
                    .await
                    .map_err(self.err(format!("uploading {} to {path}", local.display())))?,
                UploadEntry::Symlink { target, .. } => files
                    .symlink(&path, &target.to_string_lossy(), FileOptions::default())
                    .await
                    .map_err(self.err(format!("creating the symlink {path}")))?,
                UploadEntry::Bytes { data, mode, .. } => files
                    .push(&path, data, FileOptions::default().mode(mode))
                    .await
                    .map_err(self.err(format!("uploading {path}")))?,
            }
        }
        Ok(())
    }

    async fn download_tar(&self, remote: &str) -> Result<Vec<u8>> {
        let files = self.client.instances().files(&self.name);
        let base = remote
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .filter(|b| !b.is_empty())
            .unwrap_or("download")
            .to_string();
        // The archive is built straight from the server's answers, never through host files:
        // a symlink in the instance stays a symlink entry (as in Docker's archive), so nothing
        // outside the instance is ever read, and every name the server lists is checked.
        let mut tar = tar::Builder::new(Vec::new());
        let mut pending = vec![(remote.trim_end_matches('/').to_string(), base)];
        while let Some((path, name)) = pending.pop() {
            let content = files
                .pull(&path)
                .await
                .map_err(self.err(format!("downloading {path}")))?;
            let mut header = tar::Header::new_gnu();
            header.set_mtime(0);
            let archived = |e: std::io::Error| Error::io("archiving download", &path, e);
            match content {
                lxd_client::FileContent::File { info, body } => {
                    let data = body
                        .bytes()
                        .await
                        .map_err(self.err(format!("downloading {path}")))?;
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(info.mode & 0o7777);
                    header.set_size(data.len() as u64);
                    tar.append_data(&mut header, &name, &data[..])
                        .map_err(archived)?;
                }
                lxd_client::FileContent::Symlink { info, target } => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_mode(info.mode & 0o7777);
                    header.set_size(0);
                    tar.append_link(&mut header, &name, &target)
                        .map_err(archived)?;
                }
                lxd_client::FileContent::Directory { info, entries } => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(info.mode & 0o7777);
                    header.set_size(0);
                    tar.append_data(&mut header, &name, std::io::empty())
                        .map_err(archived)?;
                    for entry in entries {
                        check_listed_name(&self.instance, &path, &entry)?;
                        pending.push((format!("{path}/{entry}"), format!("{name}/{entry}")));
                    }
                }
                _ => {
                    return Err(Error::UnsafeDownload {
                        instance: self.instance.clone(),
                        path,
                        reason: "the server reported a file type kitchen-driver does not know"
                            .into(),
                    });
                }
            }
        }
        tar.into_inner()
            .map_err(|e| Error::io("finishing archive", "<memory>", e))
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

/// Refuses a directory entry name that is not one plain component (`..`, `/etc`, `a/b`): a
/// hostile or broken server must not steer a download out of the directory it lists.
fn check_listed_name(instance: &str, dir: &str, name: &str) -> Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(Error::UnsafeDownload {
            instance: instance.to_string(),
            path: format!("{dir}/{name}"),
            reason: format!("the server listed the entry name {name:?} in {dir}"),
        });
    }
    Ok(())
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
    fn listed_names_that_leave_the_directory_are_refused() {
        for bad in ["..", ".", "", "a/b", "/etc"] {
            let e = check_listed_name("i1", "/tmp/out", bad)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("refusing to download") && e.contains("listed"),
                "{e}"
            );
        }
        check_listed_name("i1", "/tmp/out", "..hidden").unwrap();
    }

    #[test]
    fn only_this_instance_of_this_checkout_is_ours() {
        let config = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let mine = config(&[
            (CONFIG_PROJECT, "/p"),
            (CONFIG_INSTANCE, "default-CentOS-7"),
        ]);
        assert_eq!(
            owner_of(&mine, "/p", "default-CentOS-7"),
            Owner::ThisInstance
        );
        assert_eq!(
            owner_of(&mine, "/p", "default-centos-7"),
            Owner::OtherInstance("default-CentOS-7".into())
        );
        assert_eq!(owner_of(&mine, "/q", "default-CentOS-7"), Owner::Foreign);
        assert_eq!(owner_of(&config(&[]), "/p", "x"), Owner::Foreign);
        let old = config(&[(CONFIG_PROJECT, "/p")]);
        assert_eq!(owner_of(&old, "/p", "x"), Owner::ThisInstance);
    }
}
