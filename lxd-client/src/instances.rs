//! Instances: list, get, create, update, rename, delete, state, logs, snapshots.

use bytes::Bytes;
use http::{HeaderValue, Method};

use crate::client::{Client, ETag, Either};
use crate::error::{Error, Result};
use crate::exec::ExecBuilder;
use crate::files::Files;
use crate::guard::InstanceGuard;
use crate::models::{
    Config, Instance, InstancePost, InstancePut, InstanceSource, InstanceState, InstanceStatePut,
    InstanceType, Snapshot, SnapshotPost, StatusCode, name_from_url,
};
use crate::operations::OperationHandle;
use crate::request::{RequestSpec, seg};

/// `/1.0/instances`, scoped to the client's project.
///
/// ```no_run
/// # async fn demo(client: lxd_client::Client) -> lxd_client::Result<()> {
/// let instances = client.instances();
/// instances.create("c1").image_alias("kitchen/busybox").send().await?.wait().await?;
/// instances.start("c1").await?.wait().await?;
/// let out = instances.exec("c1", ["echo", "hi"]).output().await?;
/// assert_eq!(out.stdout, b"hi\n");
/// instances.stop("c1").force().await?.wait().await?;
/// instances.delete("c1").await?.wait().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Instances {
    client: Client,
}

fn path(name: &str) -> String {
    format!("/1.0/instances/{}", seg(name))
}

/// The request for a state change (pure; unit-tested).
pub(crate) fn state_request(name: &str, body: &InstanceStatePut) -> RequestSpec {
    RequestSpec::new(Method::PUT, format!("{}/state", path(name))).json(body)
}

/// The request for a listing at `recursion` with an optional filter (pure; unit-tested).
pub(crate) fn list_request(recursion: u8, filter: Option<&str>) -> RequestSpec {
    let mut spec = RequestSpec::get("/1.0/instances");
    if recursion > 0 {
        spec = spec.query("recursion", recursion.to_string());
    }
    if let Some(f) = filter {
        spec = spec.query("filter", f);
    }
    spec
}

impl Instances {
    pub(crate) fn new(client: Client) -> Self {
        Instances { client }
    }

    /// This handle on a connection pool of its own (see [`InstanceGuard`]'s drop).
    pub(crate) fn with_own_connections(&self) -> Self {
        Instances {
            client: self.client.with_own_pool(),
        }
    }

    /// `GET /1.0/instances` (recursion 0): instance names.
    ///
    /// # Errors
    /// API or decode errors.
    pub async fn names(&self) -> Result<Vec<String>> {
        self.names_filtered(None).await
    }

    /// Instance names matching an LXD filter expression such as `status eq Running`.
    ///
    /// # Errors
    /// API or decode errors.
    pub async fn names_filtered(&self, filter: Option<&str>) -> Result<Vec<String>> {
        let urls: Vec<String> = self.client.sync(list_request(0, filter)).await?;
        Ok(urls.iter().map(|u| name_from_url(u)).collect())
    }

    /// `GET /1.0/instances?recursion=1`: all instances, without runtime state.
    ///
    /// # Errors
    /// API or decode errors.
    pub async fn list(&self) -> Result<Vec<Instance>> {
        self.list_filtered(None, false).await
    }

    /// `GET /1.0/instances?recursion=2`: all instances with `state` and `snapshots` filled
    /// (much slower on the server).
    ///
    /// # Errors
    /// API or decode errors.
    pub async fn list_with_state(&self) -> Result<Vec<Instance>> {
        self.list_filtered(None, true).await
    }

    /// Instances matching `filter` (e.g. `name eq kdtest-.*`), with state when `with_state`.
    ///
    /// # Errors
    /// API or decode errors.
    pub async fn list_filtered(
        &self,
        filter: Option<&str>,
        with_state: bool,
    ) -> Result<Vec<Instance>> {
        let recursion = if with_state { 2 } else { 1 };
        self.client.sync(list_request(recursion, filter)).await
    }

    /// `GET /1.0/instances/{name}`.
    ///
    /// # Errors
    /// [`Error::is_not_found`] when it does not exist; API or decode errors.
    pub async fn get(&self, name: &str) -> Result<Instance> {
        self.client.sync(RequestSpec::get(path(name))).await
    }

    /// `GET /1.0/instances/{name}` with its ETag, for [`Instances::update`].
    ///
    /// # Errors
    /// As [`Instances::get`].
    pub async fn get_with_etag(&self, name: &str) -> Result<(Instance, Option<ETag>)> {
        self.client.sync_etag(RequestSpec::get(path(name))).await
    }

    /// `GET /1.0/instances/{name}/state`: status, processes, memory, network, CPU.
    ///
    /// # Errors
    /// API or decode errors.
    pub async fn state(&self, name: &str) -> Result<InstanceState> {
        self.client
            .sync(RequestSpec::get(format!("{}/state", path(name))))
            .await
    }

    /// Starts building `POST /1.0/instances` for a new instance called `name`.
    pub fn create(&self, name: impl Into<String>) -> CreateBuilder {
        CreateBuilder {
            client: self.client.clone(),
            body: InstancePost {
                name: name.into(),
                source: InstanceSource {
                    source_type: "none".into(),
                    ..Default::default()
                },
                ..Default::default()
            },
            target: None,
        }
    }

    /// `PUT /1.0/instances/{name}`: replaces the writable configuration. With `etag`, sends
    /// `If-Match` and fails with 412 when someone else changed the instance meanwhile.
    ///
    /// # Errors
    /// [`Error::is_precondition_failed`] on a stale ETag; API errors.
    pub async fn update(
        &self,
        name: &str,
        body: &InstancePut,
        etag: Option<&ETag>,
    ) -> Result<Option<OperationHandle>> {
        let spec = with_if_match(RequestSpec::new(Method::PUT, path(name)).json(body), etag)?;
        Ok(match self.client.sync_or_operation(spec).await? {
            Either::Operation(op) => Some(op),
            Either::Sync(..) => None,
        })
    }

    /// `PATCH /1.0/instances/{name}`: merges `patch` (any JSON object with instance fields)
    /// into the configuration. With `etag`, sends `If-Match`.
    ///
    /// # Errors
    /// [`Error::is_precondition_failed`] on a stale ETag; API errors.
    pub async fn patch(
        &self,
        name: &str,
        patch: &serde_json::Value,
        etag: Option<&ETag>,
    ) -> Result<()> {
        let spec = with_if_match(
            RequestSpec::new(Method::PATCH, path(name)).json(patch),
            etag,
        )?;
        match self.client.sync_or_operation(spec).await? {
            Either::Operation(op) => op.wait().await.map(|_| ()),
            Either::Sync(..) => Ok(()),
        }
    }

    /// `POST /1.0/instances/{name}` `{"name": new}`: renames a stopped instance.
    ///
    /// # Errors
    /// API errors (e.g. 409 when `new` exists).
    pub async fn rename(&self, name: &str, new: &str) -> Result<OperationHandle> {
        self.client
            .operation(
                RequestSpec::new(Method::POST, path(name))
                    .json(&serde_json::json!({ "name": new })),
            )
            .await
    }

    /// `DELETE /1.0/instances/{name}` (it must be stopped).
    ///
    /// # Errors
    /// [`Error::is_not_found`]; API errors.
    pub async fn delete(&self, name: &str) -> Result<OperationHandle> {
        self.client
            .operation(RequestSpec::new(Method::DELETE, path(name)))
            .await
    }

    /// `PUT /1.0/instances/{name}/state` with a full [`InstanceStatePut`].
    ///
    /// # Errors
    /// API errors. A refused change (e.g. starting a running instance) comes back as an
    /// operation failure from [`OperationHandle::wait`].
    pub async fn change_state(
        &self,
        name: &str,
        body: &InstanceStatePut,
    ) -> Result<OperationHandle> {
        self.client.operation(state_request(name, body)).await
    }

    fn state_change(&self, name: &str, action: &str) -> StateChange {
        StateChange {
            client: self.client.clone(),
            name: name.to_string(),
            body: InstanceStatePut {
                action: action.into(),
                timeout: -1,
                force: false,
                stateful: false,
            },
        }
    }

    /// Starts an instance; `.await` it for the [`OperationHandle`].
    ///
    /// ```no_run
    /// # async fn demo(instances: lxd_client::Instances) -> lxd_client::Result<()> {
    /// instances.start("c1").await?.wait().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn start(&self, name: &str) -> StateChange {
        self.state_change(name, "start")
    }

    /// Stops an instance cleanly, or kills it with [`StateChange::force`].
    ///
    /// ```no_run
    /// # async fn demo(instances: lxd_client::Instances) -> lxd_client::Result<()> {
    /// instances.stop("c1").force().await?.wait().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn stop(&self, name: &str) -> StateChange {
        self.state_change(name, "stop")
    }

    /// Restarts an instance (cleanly, or with [`StateChange::force`]).
    pub fn restart(&self, name: &str) -> StateChange {
        self.state_change(name, "restart")
    }

    /// Freezes (pauses) an instance.
    pub fn freeze(&self, name: &str) -> StateChange {
        self.state_change(name, "freeze")
    }

    /// Unfreezes an instance.
    pub fn unfreeze(&self, name: &str) -> StateChange {
        self.state_change(name, "unfreeze")
    }

    /// Deletes an instance whatever its state, as `lxc delete --force`: kills it if it runs,
    /// then deletes it, waiting for each step at most [`OperationHandle::DEFAULT_TIMEOUT`].
    /// An instance that disappears on the way (ephemeral, or deleted by someone else) counts
    /// as deleted.
    ///
    /// ```no_run
    /// # async fn demo(instances: lxd_client::Instances) -> lxd_client::Result<()> {
    /// instances.delete_force("c1").await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Error::is_not_found`] when there is no such instance; API and operation errors.
    pub async fn delete_force(&self, name: &str) -> Result<()> {
        if self.state(name).await?.status_code != StatusCode::STOPPED {
            let stopped = match self.stop(name).force().await {
                Ok(op) => op.wait().await.map(drop),
                Err(e) => Err(e),
            };
            if let Err(e) = stopped {
                // It may have stopped meanwhile ("The instance is already stopped") or, if
                // ephemeral, be gone: only a still running instance is an error.
                match self.state(name).await {
                    Ok(state) if state.status_code != StatusCode::STOPPED => return Err(e),
                    Err(gone) if gone.is_not_found() => return Ok(()),
                    _ => {}
                }
            }
        }
        match self.delete(name).await {
            Ok(op) => match op.wait().await {
                Err(e) if e.is_not_found() => Ok(()),
                other => other.map(drop),
            },
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// A guard that deletes the existing instance `name` when dropped (see
    /// [`InstanceGuard`]); [`CreateBuilder::launch_guarded`] creates one with the instance.
    pub fn guard(&self, name: &str) -> InstanceGuard {
        InstanceGuard::new(self.clone(), name.to_string())
    }

    /// Starts building a command to run in the instance; see [`ExecBuilder`].
    pub fn exec<I, S>(&self, name: &str, command: I) -> ExecBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ExecBuilder::new(
            self.client.clone(),
            name.to_string(),
            command.into_iter().map(Into::into).collect(),
        )
    }

    /// The files of one instance.
    pub fn files(&self, name: &str) -> Files {
        Files::new(self.client.clone(), name.to_string())
    }

    /// The snapshots of one instance.
    pub fn snapshots(&self, name: &str) -> Snapshots {
        Snapshots {
            client: self.client.clone(),
            instance: name.to_string(),
        }
    }

    /// `GET /1.0/instances/{name}/logs`: log file names (`lxc.log`, `exec_*.stdout`, ...).
    ///
    /// # Errors
    /// API or decode errors.
    pub async fn logs(&self, name: &str) -> Result<Vec<String>> {
        let urls: Vec<String> = self
            .client
            .sync(RequestSpec::get(format!("{}/logs", path(name))))
            .await?;
        Ok(urls.iter().map(|u| name_from_url(u)).collect())
    }

    /// `GET /1.0/instances/{name}/logs/{file}`: one log file's content.
    ///
    /// # Errors
    /// [`Error::is_not_found`]; API errors.
    pub async fn log(&self, name: &str, file: &str) -> Result<Bytes> {
        let spec = RequestSpec::get(format!("{}/logs/{}", path(name), seg(file)));
        Ok(self.client.send_collect(spec).await?.1)
    }

    /// `DELETE /1.0/instances/{name}/logs/{file}`.
    ///
    /// # Errors
    /// API errors.
    pub async fn delete_log(&self, name: &str, file: &str) -> Result<()> {
        let spec = RequestSpec::new(Method::DELETE, format!("{}/logs/{}", path(name), seg(file)));
        self.client.send_collect(spec).await?;
        Ok(())
    }

    /// `GET /1.0/instances/{name}/console`: the console log (containers: what init wrote).
    ///
    /// # Errors
    /// API errors.
    pub async fn console_log(&self, name: &str) -> Result<Bytes> {
        let spec = RequestSpec::get(format!("{}/console", path(name)));
        Ok(self.client.send_collect(spec).await?.1)
    }
}

fn with_if_match(spec: RequestSpec, etag: Option<&ETag>) -> Result<RequestSpec> {
    Ok(match etag {
        Some(tag) => {
            let value = HeaderValue::from_str(&format!("\"{}\"", tag.0)).map_err(|_| {
                Error::InvalidInput(format!("ETag {:?} is not a header value", tag.0))
            })?;
            spec.header(http::header::IF_MATCH, value)
        }
        None => spec,
    })
}

/// Builder for `POST /1.0/instances`; finish with [`CreateBuilder::send`].
#[derive(Debug, Clone)]
#[must_use = "call .send() to create the instance"]
pub struct CreateBuilder {
    client: Client,
    body: InstancePost,
    target: Option<String>,
}

impl CreateBuilder {
    /// From a local image alias (e.g. `kitchen/busybox`).
    pub fn image_alias(mut self, alias: impl Into<String>) -> Self {
        self.body.source = InstanceSource {
            source_type: "image".into(),
            alias: Some(alias.into()),
            ..Default::default()
        };
        self
    }

    /// From a local image fingerprint (or a unique prefix of it).
    pub fn image_fingerprint(mut self, fingerprint: impl Into<String>) -> Self {
        self.body.source = InstanceSource {
            source_type: "image".into(),
            fingerprint: Some(fingerprint.into()),
            ..Default::default()
        };
        self
    }

    /// From a remote image server (`protocol`: `simplestreams` or `lxd`), pulled by alias.
    pub fn remote_image(
        mut self,
        server: impl Into<String>,
        protocol: impl Into<String>,
        alias: impl Into<String>,
    ) -> Self {
        self.body.source = InstanceSource {
            source_type: "image".into(),
            alias: Some(alias.into()),
            server: Some(server.into()),
            protocol: Some(protocol.into()),
            mode: Some("pull".into()),
            ..Default::default()
        };
        self
    }

    /// Any source.
    pub fn source(mut self, source: InstanceSource) -> Self {
        self.body.source = source;
        self
    }

    /// Adds a profile (the first call replaces the server default `default`).
    pub fn profile(mut self, profile: impl Into<String>) -> Self {
        self.body
            .profiles
            .get_or_insert_with(Vec::new)
            .push(profile.into());
        self
    }

    /// Sets the profile list (empty: no profiles at all).
    pub fn profiles<I, S>(mut self, profiles: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.body.profiles = Some(profiles.into_iter().map(Into::into).collect());
        self
    }

    /// Sets one configuration key.
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.body.config.insert(key.into(), value.into());
        self
    }

    /// Sets all configuration keys.
    pub fn configs(mut self, config: Config) -> Self {
        self.body.config = config;
        self
    }

    /// Adds a device with its key/value settings.
    pub fn device<I, K, V>(mut self, name: impl Into<String>, settings: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.body.devices.insert(
            name.into(),
            settings
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        );
        self
    }

    /// Puts the root disk in storage pool `pool` (adds a `root` disk device).
    pub fn storage_pool(self, pool: impl Into<String>) -> Self {
        let pool = pool.into();
        self.device(
            "root",
            [("type", "disk"), ("path", "/"), ("pool", pool.as_str())],
        )
    }

    /// Deletes the instance when it stops.
    pub fn ephemeral(mut self, ephemeral: bool) -> Self {
        self.body.ephemeral = ephemeral;
        self
    }

    /// Container (default) or virtual machine.
    pub fn instance_type(mut self, kind: InstanceType) -> Self {
        self.body.instance_type = kind;
        self
    }

    /// Description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.body.description = description.into();
        self
    }

    /// Places the instance on cluster member `member` (`lxc launch --target`); a server that
    /// is not clustered refuses the request.
    pub fn target(mut self, member: impl Into<String>) -> Self {
        self.target = Some(member.into());
        self
    }

    /// The request body as built so far.
    pub fn body(&self) -> &InstancePost {
        &self.body
    }

    /// The request (pure: tested by URI and body).
    fn request(&self) -> RequestSpec {
        let spec = RequestSpec::new(Method::POST, "/1.0/instances").json(&self.body);
        match &self.target {
            Some(member) => spec.query("target", member.clone()),
            None => spec,
        }
    }

    /// Sends the request.
    ///
    /// # Errors
    /// API errors. A taken name is [`Error::is_already_exists`] either way servers report
    /// it: LXD 5.0.2 accepts the request and fails the operation (400 `This "instances"
    /// entry already exists`, from [`OperationHandle::wait`]); others answer 409 here. A
    /// missing image shows up as an operation failure or as a 404 here, depending on the
    /// server.
    pub async fn send(self) -> Result<OperationHandle> {
        self.client.operation(self.request()).await
    }

    /// Creates the instance, waits, starts it and waits again (`lxc launch`), each step at
    /// most [`OperationHandle::DEFAULT_TIMEOUT`]. Works on servers without the
    /// `instance_create_start` extension.
    ///
    /// # Errors
    /// As [`CreateBuilder::send`]; a failed start is an operation failure (the instance is
    /// left created and stopped; [`CreateBuilder::launch_guarded`] removes it).
    pub async fn launch(self) -> Result<()> {
        let client = self.client.clone();
        let name = self.body.name.clone();
        self.send().await?.wait().await?;
        client.instances().start(&name).await?.wait().await?;
        Ok(())
    }

    /// As [`CreateBuilder::launch`], and returns an [`InstanceGuard`] that deletes the
    /// instance when dropped. The guard exists from the moment the create succeeded: a
    /// failed start deletes the instance before the error is returned, and a name that was
    /// taken is never touched.
    ///
    /// ```no_run
    /// # async fn demo(instances: lxd_client::Instances) -> lxd_client::Result<()> {
    /// let c1 = instances.create("c1").image_alias("kitchen/busybox").launch_guarded().await?;
    /// instances.exec(c1.name(), ["true"]).output().await?; // an error here still deletes c1
    /// c1.delete().await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`CreateBuilder::launch`].
    pub async fn launch_guarded(self) -> Result<InstanceGuard> {
        let instances = self.client.instances();
        let name = self.body.name.clone();
        self.send().await?.wait().await?;
        let guard = instances.guard(&name);
        let started = match instances.start(&name).await {
            Ok(op) => op.wait().await.map(drop),
            Err(e) => Err(e),
        };
        match started {
            Ok(()) => Ok(guard),
            Err(e) => {
                if let Err(cleanup) = guard.delete().await {
                    tracing::warn!(instance = %name, error = %cleanup, "cannot delete the instance whose start failed");
                }
                Err(e)
            }
        }
    }
}

/// A state change (`PUT /1.0/instances/{name}/state`) being built: set options, then
/// `.await` it (or call [`StateChange::send`]) for the [`OperationHandle`].
///
/// ```no_run
/// # async fn demo(instances: lxd_client::Instances) -> lxd_client::Result<()> {
/// use std::time::Duration;
/// instances.stop("c1").timeout(Duration::from_secs(10)).await?.wait().await?;
/// instances.restart("c1").force().await?.wait().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a state change is sent only when awaited"]
pub struct StateChange {
    client: Client,
    name: String,
    body: InstanceStatePut,
}

impl StateChange {
    /// Kills the instance instead of a clean shutdown (stop, restart).
    pub fn force(mut self) -> Self {
        self.body.force = true;
        self
    }

    /// Saves (stop) or restores (start) the runtime state; needs CRIU.
    pub fn stateful(mut self) -> Self {
        self.body.stateful = true;
        self
    }

    /// How long the server waits for a clean shutdown before it gives up (whole seconds;
    /// default: the server's own).
    pub fn timeout(mut self, limit: std::time::Duration) -> Self {
        self.body.timeout = i64::try_from(limit.as_secs()).unwrap_or(i64::MAX);
        self
    }

    /// The request body as built so far.
    pub fn body(&self) -> &InstanceStatePut {
        &self.body
    }

    /// Sends the request.
    ///
    /// # Errors
    /// API errors ([`Error::is_not_found`] for a missing instance). A refused change (e.g.
    /// starting a running instance) comes back as an operation failure from
    /// [`OperationHandle::wait`].
    pub async fn send(self) -> Result<OperationHandle> {
        self.client
            .operation(state_request(&self.name, &self.body))
            .await
    }
}

impl std::future::IntoFuture for StateChange {
    type Output = Result<OperationHandle>;
    type IntoFuture = futures::future::BoxFuture<'static, Result<OperationHandle>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

/// A snapshot being created: `.await` it (or call [`SnapshotCreate::send`]) for the
/// [`OperationHandle`]; [`SnapshotCreate::stateful`] includes the runtime state.
#[derive(Debug, Clone)]
#[must_use = "a snapshot is created only when awaited"]
pub struct SnapshotCreate {
    client: Client,
    path: String,
    body: SnapshotPost,
}

impl SnapshotCreate {
    /// Includes the runtime state (needs CRIU).
    pub fn stateful(mut self) -> Self {
        self.body.stateful = true;
        self
    }

    /// Sends the request.
    ///
    /// # Errors
    /// API errors; a taken name fails the operation ([`Error::is_already_exists`]).
    pub async fn send(self) -> Result<OperationHandle> {
        self.client
            .operation(RequestSpec::new(Method::POST, self.path).json(&self.body))
            .await
    }
}

impl std::future::IntoFuture for SnapshotCreate {
    type Output = Result<OperationHandle>;
    type IntoFuture = futures::future::BoxFuture<'static, Result<OperationHandle>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

/// `/1.0/instances/{name}/snapshots`.
#[derive(Debug, Clone)]
pub struct Snapshots {
    client: Client,
    instance: String,
}

impl Snapshots {
    fn base(&self) -> String {
        format!("{}/snapshots", path(&self.instance))
    }

    /// Snapshot names.
    ///
    /// # Errors
    /// API or decode errors.
    pub async fn names(&self) -> Result<Vec<String>> {
        let urls: Vec<String> = self.client.sync(RequestSpec::get(self.base())).await?;
        Ok(urls.iter().map(|u| name_from_url(u)).collect())
    }

    /// Snapshots with details (`recursion=1`).
    ///
    /// # Errors
    /// API or decode errors.
    pub async fn list(&self) -> Result<Vec<Snapshot>> {
        self.client
            .sync(RequestSpec::get(self.base()).query("recursion", "1"))
            .await
    }

    /// One snapshot.
    ///
    /// # Errors
    /// [`Error::is_not_found`]; API errors.
    pub async fn get(&self, snapshot: &str) -> Result<Snapshot> {
        self.client
            .sync(RequestSpec::get(format!(
                "{}/{}",
                self.base(),
                seg(snapshot)
            )))
            .await
    }

    /// Creates a snapshot; `.await` it for the [`OperationHandle`].
    ///
    /// ```no_run
    /// # async fn demo(instances: lxd_client::Instances) -> lxd_client::Result<()> {
    /// instances.snapshots("c1").create("before-upgrade").await?.wait().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn create(&self, snapshot: &str) -> SnapshotCreate {
        SnapshotCreate {
            client: self.client.clone(),
            path: self.base(),
            body: SnapshotPost {
                name: snapshot.into(),
                stateful: false,
            },
        }
    }

    /// Restores the instance to a snapshot (`PUT /1.0/instances/{name} {"restore": snap}`).
    ///
    /// # Errors
    /// API errors; a missing snapshot fails the operation.
    pub async fn restore(&self, snapshot: &str) -> Result<OperationHandle> {
        self.client
            .operation(
                RequestSpec::new(Method::PUT, path(&self.instance))
                    .json(&serde_json::json!({ "restore": snapshot })),
            )
            .await
    }

    /// Renames a snapshot.
    ///
    /// # Errors
    /// API errors.
    pub async fn rename(&self, snapshot: &str, new: &str) -> Result<OperationHandle> {
        self.client
            .operation(
                RequestSpec::new(Method::POST, format!("{}/{}", self.base(), seg(snapshot)))
                    .json(&serde_json::json!({ "name": new })),
            )
            .await
    }

    /// Deletes a snapshot.
    ///
    /// # Errors
    /// API errors.
    pub async fn delete(&self, snapshot: &str) -> Result<OperationHandle> {
        self.client
            .operation(RequestSpec::new(
                Method::DELETE,
                format!("{}/{}", self.base(), seg(snapshot)),
            ))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_request_uris() {
        assert_eq!(list_request(0, None).path_and_query(None), "/1.0/instances");
        assert_eq!(
            list_request(2, Some("status eq Running")).path_and_query(Some("p")),
            "/1.0/instances?recursion=2&filter=status%20eq%20Running&project=p"
        );
    }

    #[test]
    fn create_request_names_the_cluster_member() {
        let client = Client::with_socket("/nonexistent");
        let b = client.project("ci").instances().create("c1");
        assert_eq!(
            b.request().path_and_query(Some("ci")),
            "/1.0/instances?project=ci"
        );
        assert_eq!(
            b.target("node2").request().path_and_query(Some("ci")),
            "/1.0/instances?target=node2&project=ci"
        );
    }

    #[test]
    fn state_request_body() {
        let spec = state_request(
            "c1",
            &InstanceStatePut {
                action: "stop".into(),
                timeout: 30,
                force: true,
                stateful: false,
            },
        );
        assert_eq!(spec.method, Method::PUT);
        assert_eq!(spec.path, "/1.0/instances/c1/state");
        let crate::request::RequestBody::Json(body) = &spec.body else {
            panic!("json body expected")
        };
        let v: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"action":"stop","timeout":30,"force":true,"stateful":false})
        );
    }

    #[test]
    fn create_body_from_builder() {
        let client = Client::with_socket("/nonexistent");
        let b = client
            .instances()
            .create("c1")
            .image_alias("kitchen/busybox")
            .profile("default")
            .config("limits.memory", "256MiB")
            .storage_pool("default")
            .ephemeral(true);
        let v = serde_json::to_value(b.body()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "name": "c1",
                "type": "container",
                "source": {"type": "image", "alias": "kitchen/busybox"},
                "profiles": ["default"],
                "config": {"limits.memory": "256MiB"},
                "devices": {"root": {"type": "disk", "path": "/", "pool": "default"}},
                "ephemeral": true
            })
        );
    }

    #[test]
    fn create_body_from_remote_and_fingerprint() {
        let client = Client::with_socket("/nonexistent");
        let b = client.instances().create("c2").remote_image(
            "https://images.example",
            "simplestreams",
            "debian/12",
        );
        assert_eq!(
            serde_json::to_value(&b.body().source).unwrap(),
            serde_json::json!({"type": "image", "alias": "debian/12",
                "server": "https://images.example", "protocol": "simplestreams", "mode": "pull"})
        );
        let b = client
            .instances()
            .create("c3")
            .image_fingerprint("b08343e1e9aa")
            .instance_type(InstanceType::VirtualMachine);
        let v = serde_json::to_value(b.body()).unwrap();
        assert_eq!(v["type"], "virtual-machine");
        assert_eq!(
            v["source"],
            serde_json::json!({"type": "image", "fingerprint": "b08343e1e9aa"})
        );
        assert!(
            v.get("profiles").is_none(),
            "server default profiles when none given"
        );
    }

    #[test]
    fn if_match_is_quoted() {
        let spec = with_if_match(
            RequestSpec::new(Method::PUT, "/1.0/instances/c1"),
            Some(&ETag("abc".into())),
        )
        .unwrap();
        assert_eq!(spec.headers[0].1, "\"abc\"");
    }
}
