//! The Docker driver (`driver: {name: docker}`), over the engine API through bollard.
//!
//! Keys, as kitchen-docker and kitchen-dokken users write them: `image`, `dockerfile` (with
//! `build_args`; built once per content and tagged `kitchen-driver-build:<hash>`),
//! `privileged`, `cap_add`, `cap_drop`, `volumes`, `tmpfs`, `env`, `hostname`, `run_command`,
//! `memory`, `cpus`, `user`, `forward`, `network_mode` (default `none`), `labels`,
//! `ready_timeout` (seconds, default 60), `step_timeout` (seconds, each step's limit; see
//! `lifecycle::step_timeout_of`), and the engine's address `docker_host_url`,
//! `tls_verify`, `cert_path` (kitchen-dokken's names; `DOCKER_HOST`, `DOCKER_TLS_VERIFY` and
//! `DOCKER_CERT_PATH` otherwise, see `endpoint.rs`).
//!
//! Containers are named `kitchen-<hash of kitchen_root>-<instance>` and carry the labels
//! [`LABEL_PROJECT`] and [`LABEL_INSTANCE`], so the driver finds what it owns even when a state
//! file was lost. The API version is negotiated with the engine, never pinned.
//!
//! One file per job: `config.rs` reads the `driver:` block and turns it into the engine's
//! create body (pure), `endpoint.rs` says which engine to reach and how (socket, TCP, TLS),
//! `image.rs` resolves or builds the image, `connection.rs` is the
//! [`DockerConnection`] (exec, archives, terminal); this file creates, waits for, finds and
//! removes containers. Names come from [`super::naming`].

mod build_context;
mod config;
mod connection;
mod endpoint;
mod image;
mod kitchen_docker;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bollard::Docker;
use bollard::errors::Error as BollardError;
use bollard::models::ContainerConfig;
use bollard::query_parameters::{
    CommitContainerOptions, CreateContainerOptions, ListContainersOptions, ListImagesOptions,
    LogsOptions, RemoveContainerOptions, RemoveImageOptions, StartContainerOptions,
};
use futures::StreamExt;
use tokio::sync::OnceCell;

use super::{Driver, ready};
use crate::config::{PluginConfig, parse_block};
use crate::converge_cache::{self, CachedImage};
use crate::error::{Error, Result};
use crate::plugin::InstanceContext;
use crate::state::{State, keys};
use crate::transport::Connection;

use super::naming::container_name;
use config::{DockerConfig, parse_forward, parse_memory, runs_init};
pub use connection::DockerConnection;
pub(crate) use endpoint::Endpoint;
use endpoint::EndpointSettings;

/// Label holding the project directory (`kitchen_root`) on every container the driver creates
/// and every image it builds (the checkout's owner mark, [`super::naming::OWNER_LABEL`]).
pub const LABEL_PROJECT: &str = super::naming::OWNER_LABEL;
/// Label holding the instance name on every container the driver creates.
pub const LABEL_INSTANCE: &str = super::naming::INSTANCE_LABEL;

/// The default `run_command`: keeps the container alive in busybox and Debian alike and stops
/// at once on SIGTERM.
pub const KEEP_ALIVE: &str = "trap exit TERM; while :; do sleep 3600 & wait; done";

/// The Docker driver.
#[derive(Debug)]
pub struct DockerDriver {
    config: DockerConfig,
    endpoint: Endpoint,
    client: OnceCell<Docker>,
}

impl DockerDriver {
    /// Reads the `driver:` block of `instance`.
    ///
    /// # Errors
    /// [`Error::Config`] naming the bad key.
    pub fn from_config(instance: &str, block: &PluginConfig) -> Result<Self> {
        let mut config: DockerConfig = parse_block("driver", instance, block)?;
        let bad = |message: String| Error::config("driver", instance, message);
        for option in kitchen_docker::translate(&mut config).map_err(bad)? {
            crate::config::unused::record("driver", "docker", option);
        }
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
        let endpoint = EndpointSettings::from_env(
            config.docker_host_url.clone(),
            config.tls_verify,
            config.cert_path.clone(),
        )
        .resolve()
        .map_err(bad)?;
        Ok(Self {
            config,
            endpoint,
            client: OnceCell::new(),
        })
    }

    async fn docker(&self) -> Result<Docker> {
        self.client
            .get_or_try_init(|| async {
                let docker = self.endpoint.client()?;
                docker
                    .negotiate_version()
                    .await
                    .map_err(|source| self.endpoint.unreachable(&source))
            })
            .await
            .cloned()
    }

    /// The connection to container `id`.
    fn connect(&self, docker: Docker, id: &str, name: &str, instance: &str) -> DockerConnection {
        DockerConnection {
            docker,
            id: id.to_string(),
            name: name.to_string(),
            instance: instance.to_string(),
            user: self.config.user.clone(),
            docker_host: match &self.endpoint {
                Endpoint::Unix(url) if url == endpoint::DEFAULT_HOST => {
                    std::env::var("DOCKER_HOST").ok()
                }
                other => Some(other.url().to_string()),
            },
            endpoint: self.endpoint.clone(),
        }
    }

    /// Removes every container labelled with this project and instance except `keep`.
    async fn remove_owned(
        &self,
        docker: &Docker,
        ctx: &InstanceContext,
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
            .map_err(|source| {
                self.endpoint
                    .docker_error("listing containers", ctx.instance.name.clone(), source)
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

    async fn wait_ready(&self, conn: &DockerConnection, ctx: &InstanceContext) -> Result<()> {
        let timeout = Duration::from_secs(self.config.ready_timeout.unwrap_or(60));
        let what = format!("container {}", conn.name);
        ready::wait_until_ready(
            conn,
            ctx,
            &what,
            timeout,
            Duration::from_millis(200),
            || self.still_running(conn, ctx),
        )
        .await
    }

    /// Fails, with the container's last lines, when it stopped right after starting.
    async fn still_running(&self, conn: &DockerConnection, ctx: &InstanceContext) -> Result<()> {
        let init = self.config.run_command.as_deref().is_some_and(runs_init);
        let inspect = conn
            .docker
            .inspect_container(&conn.id, None)
            .await
            .map_err(|source| {
                self.endpoint.docker_error(
                    "inspecting container",
                    ctx.instance.name.clone(),
                    source,
                )
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
        Ok(())
    }
}

pub(super) fn is_not_found(e: &BollardError) -> bool {
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

/// The tag of this checkout's cached image for `key`: `kitchen-cache-<project hash>:<key16>`.
fn cache_tag(kitchen_root: &std::path::Path, key: &str) -> String {
    format!(
        "kitchen-cache-{}:{}",
        super::naming::project_hash(kitchen_root),
        &key[..16.min(key.len())]
    )
}

/// The engine an instance's merged `driver:` block names (`docker_host_url`, `tls_verify`,
/// `cert_path`, then DOCKER_HOST and its friends), as the driver resolves it; for
/// `destroy --orphans`, which looks on every engine kitchen.yml uses.
///
/// # Errors
/// A message naming the setting the driver would refuse.
pub(crate) fn engine_of(block: &PluginConfig) -> std::result::Result<Endpoint, String> {
    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct EngineKeys {
        docker_host_url: Option<String>,
        tls_verify: Option<bool>,
        cert_path: Option<String>,
    }
    let k: EngineKeys = serde_json::from_value(serde_json::Value::Object(block.clone()))
        .map_err(|e| format!("driver: {e}"))?;
    EndpointSettings::from_env(k.docker_host_url, k.tls_verify, k.cert_path).resolve()
}

/// A client of `endpoint` that has answered (the API version is negotiated).
///
/// # Errors
/// [`Error::DockerConnect`] naming the endpoint and what to try.
pub(crate) async fn connect(endpoint: &Endpoint) -> Result<Docker> {
    endpoint
        .client()?
        .negotiate_version()
        .await
        .map_err(|source| endpoint.unreachable(&source))
}

/// The converge cache images of the checkout at `kitchen_root` on the Docker engine.
///
/// # Errors
/// Engine errors.
pub async fn docker_cached_images(
    docker: &Docker,
    kitchen_root: &std::path::Path,
) -> std::result::Result<Vec<CachedImage>, BollardError> {
    let root = kitchen_root.to_string_lossy().into_owned();
    let filters = HashMap::from([(
        "label".to_string(),
        vec![
            converge_cache::LABEL_KEY.to_string(),
            format!("{LABEL_PROJECT}={root}"),
        ],
    )]);
    let uses = converge_cache::recorded_uses(kitchen_root);
    Ok(docker
        .list_images(Some(ListImagesOptions {
            filters: Some(filters),
            ..Default::default()
        }))
        .await?
        .into_iter()
        .map(|i| {
            let name = i.repo_tags.first().cloned().unwrap_or_else(|| i.id.clone());
            CachedImage {
                runtime: "docker",
                key: i
                    .labels
                    .get(converge_cache::LABEL_KEY)
                    .cloned()
                    .unwrap_or_default(),
                instance: i.labels.get(LABEL_INSTANCE).cloned().unwrap_or_default(),
                size: u64::try_from(i.size).unwrap_or(0),
                created: i.created,
                last_used: uses.get(&name).copied().unwrap_or(0).max(i.created),
                id: i.id,
                name,
            }
        })
        .collect())
}

/// Removes a cached image; the engine refuses while a container runs from it.
///
/// # Errors
/// Engine errors other than "not found" (409 names the container using it).
pub async fn remove_docker_cached(
    docker: &Docker,
    image: &CachedImage,
) -> std::result::Result<(), BollardError> {
    match docker
        .remove_image(&image.id, None::<RemoveImageOptions>, None)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e),
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

    fn check_files(&self, paths: &crate::plugin::ConfigPaths<'_>) -> Result<()> {
        let Some(dockerfile) = &self.config.dockerfile else {
            return Ok(());
        };
        // As `build_image` resolves it: relative to kitchen_root; its directory is the context.
        let path = paths.kitchen_root.join(dockerfile);
        if !path.is_file() {
            return Err(paths.refuse(
                "driver",
                "driver.dockerfile",
                &format!("the Dockerfile {} does not exist", path.display()),
                "create it, or correct the path (relative to the directory holding kitchen.yml)",
            ));
        }
        let context = path.parent().unwrap_or(paths.kitchen_root);
        build_context::DockerIgnore::load(context).map_err(|e| {
            paths.refuse(
                "driver",
                "driver.dockerfile",
                &format!("its build context cannot be read: {e}"),
                "correct the .dockerignore pattern named",
            )
        })?;
        Ok(())
    }

    async fn create(&self, ctx: &InstanceContext, state: &mut State) -> Result<()> {
        let docker = self.docker().await?;
        let instance = ctx.instance.name.clone();
        // An instance already created: keep it if it is running (test-kitchen's drivers do).
        if let Some(id) = state.get_str(keys::CONTAINER_ID).map(str::to_string) {
            match docker.inspect_container(&id, None).await {
                Ok(c) if c.state.as_ref().and_then(|s| s.running) == Some(true) => {
                    ctx.output.info(&format!("Container {id} already exists"));
                    return Ok(());
                }
                Ok(_) => remove_container(&docker, &instance, &id).await?,
                Err(e) if is_not_found(&e) => {}
                Err(source) => {
                    return Err(self.endpoint.docker_error(
                        "inspecting container",
                        instance,
                        source,
                    ));
                }
            }
            state.remove(keys::CONTAINER_ID);
        }
        // Leftovers of a run whose state file was lost carry our labels: they are ours.
        for id in self.remove_owned(&docker, ctx, None).await? {
            ctx.output
                .warn(&format!("Removed leftover container {id} of this instance"));
        }
        // A converge cache hit starts from the cached image.
        let image = match state.get_str(converge_cache::STATE_IMAGE) {
            Some(cached) => cached.to_string(),
            None => self.resolve_image(&docker, ctx).await?,
        };
        let name = container_name(&ctx.kitchen_root, &instance);
        let body = self.create_body(&ctx.kitchen_root, &instance, &image);
        ctx.output
            .debug(&format!("Creating container {name} from {image}"));
        // Saved before the request: a process killed while the engine creates the container
        // leaves a state file that names it (destroy also finds it by its labels).
        state.set(keys::CONTAINER_NAME, name.clone());
        state.set(keys::IMAGE, image.clone());
        ctx.save_state(state)?;
        let created = docker
            .create_container(
                Some(CreateContainerOptions {
                    name: Some(name.clone()),
                    ..Default::default()
                }),
                body,
            )
            .await
            .map_err(|source| {
                self.endpoint.docker_error(
                    format!("creating container {name} from {image}"),
                    instance.clone(),
                    source,
                )
            })?;
        // Recorded and saved before anything else can fail, so destroy always finds it.
        state.set(keys::CONTAINER_ID, created.id.clone());
        ctx.save_state(state)?;
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
                state.remove(keys::CONTAINER_ID);
                state.remove(keys::CONTAINER_NAME);
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
        let conn = self.connect(docker.clone(), &created.id, &name, &instance);
        self.wait_ready(&conn, ctx).await?;
        let inspect = docker
            .inspect_container(&created.id, None)
            .await
            .map_err(|source| {
                self.endpoint
                    .docker_error("inspecting container", instance.clone(), source)
            })?;
        if let Some(h) = inspect.config.as_ref().and_then(|c| c.hostname.clone()) {
            state.set(keys::HOSTNAME, h);
        }
        let ports = inspect
            .network_settings
            .and_then(|n| n.ports)
            .unwrap_or_default();
        let mut forwarded = serde_json::Map::new();
        let mut forwarded_host = None;
        for (port, bindings) in ports {
            if let Some((host_ip, host_port)) =
                bindings.unwrap_or_default().into_iter().find_map(|b| {
                    b.host_port
                        .filter(|p| !p.is_empty())
                        .map(|p| (b.host_ip.unwrap_or_default(), p))
                })
            {
                forwarded_host.get_or_insert_with(|| {
                    endpoint::published_host(self.endpoint.remote_host(), &host_ip)
                });
                forwarded.insert(port, host_port.into());
            }
        }
        if let Some(h) = forwarded_host {
            state.set(keys::FORWARDED_HOST, h);
        }
        if forwarded.len() == 1
            && let Some(p) = forwarded.values().next()
        {
            state.set(keys::PORT, p.clone());
        }
        if !forwarded.is_empty() {
            state.set(keys::FORWARDED_PORTS, serde_json::Value::Object(forwarded));
        }
        ctx.output.info(&format!(
            "Container {name} ({}) is ready",
            &created.id[..12.min(created.id.len())]
        ));
        Ok(())
    }

    async fn destroy(&self, ctx: &InstanceContext, state: &mut State) -> Result<()> {
        let docker = self.docker().await?;
        if let Some(id) = state.get_str(keys::CONTAINER_ID).map(str::to_string) {
            ctx.output.info(&format!("Removing container {id}"));
            remove_container(&docker, &ctx.instance.name, &id).await?;
        }
        for id in self.remove_owned(&docker, ctx, None).await? {
            ctx.output.info(&format!("Removed container {id}"));
        }
        state.forget_instance();
        Ok(())
    }

    async fn connection(
        &self,
        ctx: &InstanceContext,
        state: &State,
    ) -> Result<Arc<dyn Connection>> {
        let id = state.created(keys::CONTAINER_ID, &ctx.instance.name)?;
        let name = state.get_str(keys::CONTAINER_NAME).unwrap_or(id);
        Ok(Arc::new(self.connect(
            self.docker().await?,
            id,
            name,
            &ctx.instance.name,
        )))
    }

    async fn base_image_id(&self, ctx: &InstanceContext) -> Result<Option<String>> {
        let docker = self.docker().await?;
        let image = self.resolve_image(&docker, ctx).await?;
        let inspect = docker.inspect_image(&image).await.map_err(|source| {
            self.endpoint.docker_error(
                format!("inspecting image {image}"),
                ctx.instance.name.clone(),
                source,
            )
        })?;
        Ok(Some(inspect.id.unwrap_or(image)))
    }

    async fn find_converged(&self, ctx: &InstanceContext, key: &str) -> Result<Option<String>> {
        let docker = self.docker().await?;
        let tag = cache_tag(&ctx.kitchen_root, key);
        match docker.inspect_image(&tag).await {
            Ok(_) => Ok(Some(tag)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(source) => Err(self.endpoint.docker_error(
                format!("inspecting image {tag}"),
                ctx.instance.name.clone(),
                source,
            )),
        }
    }

    async fn publish_converged(
        &self,
        ctx: &InstanceContext,
        state: &State,
        key: &str,
    ) -> Result<String> {
        let id = state.created(keys::CONTAINER_ID, &ctx.instance.name)?;
        let docker = self.docker().await?;
        let tag = cache_tag(&ctx.kitchen_root, key);
        let (repo, version) = tag.split_once(':').unwrap_or((tag.as_str(), "latest"));
        // The container's labels (checkout, instance) go along; these are added to them.
        let labels = HashMap::from([
            (converge_cache::LABEL_KEY.to_string(), key.to_string()),
            (
                LABEL_PROJECT.to_string(),
                ctx.kitchen_root.to_string_lossy().into_owned(),
            ),
            (LABEL_INSTANCE.to_string(), ctx.instance.name.clone()),
        ]);
        docker
            .commit_container(
                CommitContainerOptions {
                    container: Some(id.to_string()),
                    repo: Some(repo.to_string()),
                    tag: Some(version.to_string()),
                    comment: Some(format!("kitchen-driver converge cache {key}")),
                    pause: true,
                    ..Default::default()
                },
                ContainerConfig {
                    labels: Some(labels),
                    ..Default::default()
                },
            )
            .await
            .map_err(|source| {
                self.endpoint.docker_error(
                    format!("committing container {id} as {tag}"),
                    ctx.instance.name.clone(),
                    source,
                )
            })?;
        Ok(tag)
    }

    async fn evict_converged(&self, ctx: &InstanceContext, max: usize) -> Result<Vec<String>> {
        let docker = self.docker().await?;
        let err = |source| {
            self.endpoint.docker_error(
                "listing or removing cached images",
                ctx.instance.name.clone(),
                source,
            )
        };
        let images = docker_cached_images(&docker, &ctx.kitchen_root)
            .await
            .map_err(err)?;
        let mut evicted = Vec::new();
        for image in converge_cache::to_evict(&images, max) {
            remove_docker_cached(&docker, &image).await.map_err(err)?;
            evicted.push(image.name);
        }
        Ok(evicted)
    }

    /// A container has no cheap snapshot of its own: the pristine one is a new container from
    /// the same image, with the same name and labels (the image's layers are shared, so this
    /// costs a container start, not an unpack).
    async fn reset(&self, ctx: &InstanceContext, state: &mut State) -> Result<()> {
        let id = state
            .created(keys::CONTAINER_ID, &ctx.instance.name)?
            .to_string();
        let docker = self.docker().await?;
        ctx.output
            .info(&format!("Recreating container {id} from its image"));
        remove_container(&docker, &ctx.instance.name, &id).await?;
        state.remove(keys::CONTAINER_ID);
        self.create(ctx, state).await
    }
}
