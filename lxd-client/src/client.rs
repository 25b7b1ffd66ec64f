//! The [`Client`]: every way to make one (unix socket, HTTPS, the `lxc` CLI's remotes), the
//! typed handles it hands out, its pooled connection and the response envelope.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::client::legacy;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio_tungstenite::WebSocketStream;

use crate::body::Body;
use crate::error::{Error, Result};
use crate::models::{Operation, Server};
use crate::operations::OperationHandle;
use crate::remotes::LxcConfig;
use crate::request::RequestSpec;
use crate::tls::{ClientIdentity, HttpsEndpoint, ServerPin};
use crate::transport::{Connector, Endpoint, Stream, Timeouts};

/// A websocket to the daemon.
pub(crate) type WsStream = WebSocketStream<HangupTolerant>;

/// A connection whose writes succeed (and are dropped) once the peer hung up.
///
/// LXD pings its websockets and closes them right after the last frame. tungstenite answers
/// a ping before it reads the next frame; when that pong hits the closed socket, the write
/// error would surface *before* the data frames still buffered, losing a command's output
/// (seen here with 50 concurrent execs). Writes after a hang-up carry nothing the server
/// could still use, so they are dropped and reading goes on to the end.
pub(crate) struct HangupTolerant {
    inner: Stream,
    hung_up: bool,
}

fn is_hangup(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::BrokenPipe
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionAborted
    )
}

impl tokio::io::AsyncRead for HangupTolerant {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for HangupTolerant {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        use std::task::Poll;
        if self.hung_up {
            return Poll::Ready(Ok(buf.len()));
        }
        match std::pin::Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Ready(Err(e)) if is_hangup(&e) => {
                tracing::debug!(error = %e, "websocket peer hung up; dropping writes");
                self.hung_up = true;
                Poll::Ready(Ok(buf.len()))
            }
            other => other,
        }
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        if self.hung_up {
            return Poll::Ready(Ok(()));
        }
        match std::pin::Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Ready(Err(e)) if is_hangup(&e) => {
                self.hung_up = true;
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        match std::pin::Pin::new(&mut self.inner).poll_shutdown(cx) {
            Poll::Ready(Err(e)) if is_hangup(&e) => Poll::Ready(Ok(())),
            other => other,
        }
    }
}

/// A handle on one LXD daemon, optionally scoped to a project.
///
/// Cheap to clone: clones share one pool of keep-alive connections. The project is a property
/// of the handle ([`Client::project`]); every request made through it (and through the typed
/// handles it gives out) carries `?project=NAME`.
///
/// ```no_run
/// # async fn demo() -> lxd_client::Result<()> {
/// let client = lxd_client::Client::connect_local().await?;
/// let names = client.project("default").instances().names().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    project: Option<Arc<str>>,
}

struct Inner {
    endpoint: Arc<Endpoint>,
    timeouts: Timeouts,
    http: legacy::Client<Connector, Body>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.inner.endpoint)
            .field("project", &self.project)
            .finish()
    }
}

/// The LXD response envelope; every field optional because servers differ.
#[derive(Debug, Deserialize)]
pub(crate) struct Envelope {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub error_code: Option<u16>,
    #[serde(default)]
    pub metadata: serde_json::Value,
}

/// An entity tag from a `GET`, to send back in `If-Match`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ETag(pub String);

/// Socket paths tried in order when no explicit path is given, as `lxc` chooses: only
/// `$LXD_SOCKET` when it is set, else only `$LXD_DIR/unix.socket` when that is set (a
/// daemon the user named is never swapped for another one), else the snap and deb paths of
/// LXD, then Incus's sockets (same API).
pub fn candidate_sockets() -> Vec<PathBuf> {
    sockets_for(
        std::env::var_os("LXD_SOCKET").filter(|v| !v.is_empty()),
        std::env::var_os("LXD_DIR").filter(|v| !v.is_empty()),
    )
}

fn sockets_for(socket: Option<OsString>, dir: Option<OsString>) -> Vec<PathBuf> {
    if let Some(p) = socket {
        return vec![PathBuf::from(p)];
    }
    if let Some(dir) = dir {
        return vec![Path::new(&dir).join("unix.socket")];
    }
    [
        "/var/snap/lxd/common/lxd/unix.socket",
        "/var/lib/lxd/unix.socket",
        "/var/lib/incus/unix.socket",
        "/run/incus/unix.socket",
    ]
    .map(PathBuf::from)
    .to_vec()
}

impl Client {
    /// Connects to the local daemon, finding its unix socket as `lxc` does (see
    /// [`candidate_sockets`]). Nothing is sent until the first request.
    ///
    /// # Errors
    /// [`Error::SocketNotFound`] when no socket exists at a known path.
    pub async fn connect_local() -> Result<Self> {
        let searched = candidate_sockets();
        for p in &searched {
            if tokio::fs::try_exists(p).await.unwrap_or(false) {
                return Ok(Self::with_socket(p));
            }
        }
        Err(Error::SocketNotFound { searched })
    }

    /// A client for the unix socket at `path` (not contacted until the first request).
    pub fn with_socket(path: impl Into<PathBuf>) -> Self {
        Self::new(Endpoint::Unix(path.into()))
    }

    /// A client for any [`Endpoint`].
    pub fn new(endpoint: Endpoint) -> Self {
        Self::pooled(Arc::new(endpoint), Timeouts::default())
    }

    /// The same endpoint and project with a connection pool of its own, for work done on
    /// another runtime (a pooled connection belongs to the runtime that opened it).
    pub(crate) fn with_own_pool(&self) -> Client {
        Client {
            project: self.project.clone(),
            ..Self::pooled(Arc::clone(&self.inner.endpoint), self.inner.timeouts)
        }
    }

    /// The same endpoint and project with other time limits (and a connection pool of its
    /// own). Every client starts with [`Timeouts::default`].
    ///
    /// ```no_run
    /// # async fn demo() -> lxd_client::Result<()> {
    /// use std::time::Duration;
    /// use lxd_client::{Client, Timeouts};
    /// let client = Client::connect_local()
    ///     .await?
    ///     .with_timeouts(Timeouts::default().request(Duration::from_secs(300)));
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_timeouts(&self, timeouts: Timeouts) -> Client {
        Client {
            project: self.project.clone(),
            ..Self::pooled(Arc::clone(&self.inner.endpoint), timeouts)
        }
    }

    /// The time limits this client applies.
    pub fn timeouts(&self) -> Timeouts {
        self.inner.timeouts
    }

    fn pooled(endpoint: Arc<Endpoint>, timeouts: Timeouts) -> Self {
        let http = legacy::Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(64)
            .build(Connector::new(Arc::clone(&endpoint), timeouts));
        Client {
            inner: Arc::new(Inner {
                endpoint,
                timeouts,
                http,
            }),
            project: None,
        }
    }

    /// A client for an HTTPS remote: shorthand for
    /// `Client::new(HttpsEndpoint::new(url, pin, identity)?.into())`. Nothing is sent until
    /// the first request, which fails with [`Error::CertificateMismatch`] if the server
    /// presents another certificate than `pin`.
    ///
    /// ```no_run
    /// # async fn demo() -> lxd_client::Result<()> {
    /// use lxd_client::{Client, ClientIdentity, ServerPin, TlsCertificate};
    /// let pin = ServerPin::Certificate(TlsCertificate::load("servercerts/lab.crt")?);
    /// let id = ClientIdentity::load("client.crt", "client.key")?;
    /// let client = Client::https("https://10.0.0.5:8443", pin, Some(id))?;
    /// println!("{}", client.server().await?.auth);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// See [`HttpsEndpoint::new`].
    pub fn https(url: &str, pin: ServerPin, identity: Option<ClientIdentity>) -> Result<Client> {
        Ok(Client::new(HttpsEndpoint::new(url, pin, identity)?.into()))
    }

    /// A client for the `lxc` remote `name` from the user's `lxc` configuration
    /// ([`LxcConfig::load`], then [`LxcConfig::connect`]).
    ///
    /// ```no_run
    /// # async fn demo() -> lxd_client::Result<()> {
    /// let client = lxd_client::Client::from_remote("lab").await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// See [`LxcConfig::load`] and [`LxcConfig::connect`].
    pub async fn from_remote(name: &str) -> Result<Client> {
        LxcConfig::load()?.connect(name).await
    }

    /// A client for remote `name` of an already loaded `lxc` configuration.
    ///
    /// ```no_run
    /// # async fn demo() -> lxd_client::Result<()> {
    /// let config = lxd_client::LxcConfig::load_from("/home/me/.config/lxc")?;
    /// let client = lxd_client::Client::from_lxc_config(&config, "lab").await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// See [`LxcConfig::connect`].
    pub async fn from_lxc_config(config: &LxcConfig, name: &str) -> Result<Client> {
        config.connect(name).await
    }

    /// Where this client connects.
    pub fn endpoint(&self) -> &Endpoint {
        &self.inner.endpoint
    }

    /// The same client scoped to project `name` (shares the connection pool).
    pub fn project(&self, name: impl Into<String>) -> Client {
        Client {
            inner: Arc::clone(&self.inner),
            project: Some(Arc::from(name.into())),
        }
    }

    /// The project of this handle, if one was set.
    pub fn project_name(&self) -> Option<&str> {
        self.project.as_deref()
    }

    /// `GET /1.0`: the server's API version, extensions and environment.
    ///
    /// # Errors
    /// Connection, API or decode errors.
    pub async fn server(&self) -> Result<Server> {
        self.sync(RequestSpec::get("/1.0")).await
    }

    /// Instances (containers and VMs), with exec, files and snapshots below them.
    pub fn instances(&self) -> crate::Instances {
        crate::Instances::new(self.clone())
    }

    /// Images and aliases.
    pub fn images(&self) -> crate::Images {
        crate::Images::new(self.clone())
    }

    /// Background operations.
    pub fn operations(&self) -> crate::Operations {
        crate::Operations::new(self.clone())
    }

    /// Profiles.
    pub fn profiles(&self) -> crate::Profiles {
        crate::Profiles::new(self.clone())
    }

    /// Networks.
    pub fn networks(&self) -> crate::Networks {
        crate::Networks::new(self.clone())
    }

    /// Storage pools and their volumes.
    pub fn storage_pools(&self) -> crate::StoragePools {
        crate::StoragePools::new(self.clone())
    }

    /// The server's trust store and trust tokens.
    pub fn certificates(&self) -> crate::Certificates {
        crate::Certificates::new(self.clone())
    }

    /// The events websocket.
    pub fn events(&self) -> crate::Events {
        crate::Events::new(self.clone())
    }

    /// Any sync endpoint this crate has no typed call for: `method path` with an optional
    /// JSON body; decodes the envelope's metadata into `T` (use `serde_json::Value` for
    /// anything). `path` starts with `/1.0`; the project is added.
    ///
    /// ```no_run
    /// # async fn demo(client: lxd_client::Client) -> lxd_client::Result<()> {
    /// use lxd_client::Method;
    /// let projects: Vec<String> = client.query(Method::GET, "/1.0/projects", None).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// API and decode errors; [`Error::UnexpectedResponse`] when the server started an
    /// operation instead (use [`Client::query_operation`]).
    pub async fn query<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<T> {
        let mut spec = RequestSpec::new(method, path);
        if let Some(b) = body {
            spec = spec.json(b);
        }
        self.sync(spec).await
    }

    /// Any endpoint that starts a background operation; see [`Client::query`].
    ///
    /// # Errors
    /// API errors; [`Error::UnexpectedResponse`] when the answer was sync.
    pub async fn query_operation(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<OperationHandle> {
        let mut spec = RequestSpec::new(method, path);
        if let Some(b) = body {
            spec = spec.json(b);
        }
        self.operation(spec).await
    }

    /// Sends a request and returns the raw response when its status is a success; error
    /// statuses are decoded into [`Error::Api`].
    pub(crate) async fn send(&self, spec: RequestSpec) -> Result<http::Response<Incoming>> {
        let method = spec.method.clone();
        let path = spec.path.clone();
        tracing::debug!(%method, %path, "lxd request");
        let limit = self.request_limit(&spec);
        let request = spec
            .into_http(self.inner.endpoint.base_url(), self.project.as_deref())
            .map_err(|e| Error::Transport {
                method: method.to_string(),
                path: path.clone(),
                source: e.into(),
            })?;
        let response = match limit {
            Some(limit) => tokio::time::timeout(limit, self.inner.http.request(request))
                .await
                .map_err(|_| Error::Timeout {
                    what: format!("the answer to {method} {path} from {}", self.inner.endpoint),
                    after: limit,
                })?,
            None => self.inner.http.request(request).await,
        };
        let response = response.map_err(|e| {
            if e.is_connect() || crate::transport::is_deferred_connect_error(&e) {
                crate::tls::connect_error(&self.inner.endpoint, e.into())
            } else {
                Error::Transport {
                    method: method.to_string(),
                    path: path.clone(),
                    source: e.into(),
                }
            }
        })?;
        if response.status().is_client_error() || response.status().is_server_error() {
            let status = response.status().as_u16();
            let body = collect(response, &method, &path).await?;
            return Err(api_error(status, &method, &path, &body));
        }
        Ok(response)
    }

    /// Sends a request and returns the whole body.
    pub(crate) async fn send_collect(
        &self,
        spec: RequestSpec,
    ) -> Result<(http::response::Parts, Bytes)> {
        let method = spec.method.clone();
        let path = spec.path.clone();
        let limit = self.request_limit(&spec);
        let response = self.send(spec).await?;
        let (parts, body) = response.into_parts();
        let collect = collect_body(body, &method, &path);
        let body = match limit {
            Some(limit) => {
                tokio::time::timeout(limit, collect)
                    .await
                    .map_err(|_| Error::Timeout {
                        what: format!(
                            "the body of the answer to {method} {path} from {}",
                            self.inner.endpoint
                        ),
                        after: limit,
                    })??
            }
            None => collect.await?,
        };
        Ok((parts, body))
    }

    /// How long `spec` may take ([`Timeouts`]): the request limit plus its long-poll time;
    /// `None` for a streamed body, whose length is the caller's.
    fn request_limit(&self, spec: &RequestSpec) -> Option<Duration> {
        match spec.body {
            crate::request::RequestBody::Stream(..) => None,
            _ => Some(self.inner.timeouts.request_limit() + spec.long_poll),
        }
    }

    /// Sends a request that answers with a sync envelope and decodes its metadata.
    pub(crate) async fn sync<T: DeserializeOwned>(&self, spec: RequestSpec) -> Result<T> {
        Ok(self.sync_etag(spec).await?.0)
    }

    /// Like [`Client::sync`], also returning the `ETag` header.
    pub(crate) async fn sync_etag<T: DeserializeOwned>(
        &self,
        spec: RequestSpec,
    ) -> Result<(T, Option<ETag>)> {
        let method = spec.method.clone();
        let path = spec.path.clone();
        let (parts, body) = self.send_collect(spec).await?;
        let etag = parts
            .headers
            .get(http::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(|v| ETag(v.trim_matches('"').to_string()));
        let envelope = decode_envelope(parts.status.as_u16(), &method, &path, &body)?;
        if envelope.kind != "sync" {
            return Err(Error::UnexpectedResponse {
                method: method.to_string(),
                path,
                detail: format!("expected a sync response, got type `{}`", envelope.kind),
            });
        }
        Ok((decode_metadata(&path, envelope.metadata)?, etag))
    }

    /// Sends a request that starts a background operation and returns its handle. The
    /// handle starts following the operation at once, so it never misses the end.
    pub(crate) async fn operation(&self, spec: RequestSpec) -> Result<OperationHandle> {
        match self.sync_or_operation(spec).await? {
            Either::Operation(op) => Ok(op),
            Either::Sync(method, path) => Err(Error::UnexpectedResponse {
                method: method.to_string(),
                path,
                detail: "expected an operation, got a sync response".into(),
            }),
        }
    }

    /// Sends a request whose answer may be sync or async (servers differ).
    pub(crate) async fn sync_or_operation(&self, spec: RequestSpec) -> Result<Either> {
        let method = spec.method.clone();
        let path = spec.path.clone();
        let (parts, body) = self.send_collect(spec).await?;
        let envelope = decode_envelope(parts.status.as_u16(), &method, &path, &body)?;
        match envelope.kind.as_str() {
            "async" => {
                let op: Operation = decode_metadata(&path, envelope.metadata)?;
                Ok(Either::Operation(OperationHandle::follow(self.clone(), op)))
            }
            _ => Ok(Either::Sync(method, path)),
        }
    }

    /// Opens a websocket at `path` (with its query), e.g. an exec stream.
    pub(crate) async fn websocket(&self, spec: RequestSpec) -> Result<WsStream> {
        let what = spec.path.clone();
        let url = format!(
            "{}{}",
            self.inner.endpoint.ws_base_url(),
            spec.path_and_query(self.project.as_deref())
        );
        let stream = self
            .inner
            .endpoint
            .connect(&self.inner.timeouts)
            .await
            .map_err(|e| crate::tls::connect_error(&self.inner.endpoint, e.into()))?;
        // A plain URL makes tungstenite build the upgrade request itself; it adds no Origin
        // header, which LXD's websocket upgrader would reject.
        let stream = HangupTolerant {
            inner: stream,
            hung_up: false,
        };
        let limit = self.inner.timeouts.request_limit();
        let (ws, _response) =
            tokio::time::timeout(limit, tokio_tungstenite::client_async(url, stream))
                .await
                .map_err(|_| Error::Timeout {
                    what: format!(
                        "the websocket upgrade of {what} from {}",
                        self.inner.endpoint
                    ),
                    after: limit,
                })?
                .map_err(|e| match e {
                    // The server refused the upgrade with an LXD error envelope (e.g. 404
                    // "Operation not found" once an exec operation has gone).
                    tokio_tungstenite::tungstenite::Error::Http(response) => api_error(
                        response.status().as_u16(),
                        &Method::GET,
                        &what,
                        response.body().as_deref().unwrap_or_default(),
                    ),
                    other => Error::Websocket {
                        what,
                        source: other.into(),
                    },
                })?;
        Ok(ws)
    }
}

/// A response that was either sync (metadata) or an operation.
pub(crate) enum Either {
    Sync(Method, String),
    Operation(OperationHandle),
}

async fn collect(response: http::Response<Incoming>, method: &Method, path: &str) -> Result<Bytes> {
    collect_body(response.into_body(), method, path).await
}

async fn collect_body(body: Incoming, method: &Method, path: &str) -> Result<Bytes> {
    Ok(body
        .collect()
        .await
        .map_err(|e| Error::Transport {
            method: method.to_string(),
            path: path.into(),
            source: e.into(),
        })?
        .to_bytes())
}

/// The error for a non-success status: LXD's message when the body is an error envelope,
/// else the start of the body.
pub(crate) fn api_error(status: u16, method: &Method, path: &str, body: &[u8]) -> Error {
    let message = match serde_json::from_slice::<Envelope>(body) {
        Ok(env) => env.error.filter(|m| !m.is_empty()).unwrap_or_default(),
        Err(_) => String::from_utf8_lossy(&body[..body.len().min(300)])
            .trim()
            .to_string(),
    };
    let message = if message.is_empty() {
        http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("error")
            .to_string()
    } else {
        message
    };
    Error::Api {
        status,
        method: method.to_string(),
        path: path.into(),
        message,
    }
}

/// Decodes an envelope, turning `type: error` into [`Error::Api`] whatever the HTTP status.
pub(crate) fn decode_envelope(
    status: u16,
    method: &Method,
    path: &str,
    body: &[u8],
) -> Result<Envelope> {
    let envelope: Envelope = serde_json::from_slice(body).map_err(|source| Error::Decode {
        path: path.into(),
        field: String::from("<envelope>"),
        source,
    })?;
    if envelope.kind == "error" || status >= 400 {
        let code = envelope.error_code.filter(|c| *c >= 400).unwrap_or(status);
        return Err(Error::Api {
            status: code,
            method: method.to_string(),
            path: path.into(),
            message: envelope.error.unwrap_or_default(),
        });
    }
    Ok(envelope)
}

/// Decodes envelope metadata, naming the field path on failure.
pub(crate) fn decode_metadata<T: DeserializeOwned>(
    path: &str,
    metadata: serde_json::Value,
) -> Result<T> {
    serde_path_to_error::deserialize(metadata).map_err(|e| Error::Decode {
        path: path.into(),
        field: e.path().to_string(),
        source: e.into_inner(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode<T: DeserializeOwned>(status: u16, path: &str, body: &[u8]) -> Result<T> {
        let env = decode_envelope(status, &Method::GET, path, body)?;
        decode_metadata(path, env.metadata)
    }

    #[test]
    fn a_socket_the_environment_names_is_the_only_one_tried() {
        let only = |socket: Option<&str>, dir: Option<&str>| {
            sockets_for(socket.map(Into::into), dir.map(Into::into))
        };
        assert_eq!(
            only(Some("/tmp/x.sock"), Some("/srv/lxd")),
            [PathBuf::from("/tmp/x.sock")]
        );
        assert_eq!(
            only(None, Some("/srv/lxd")),
            [PathBuf::from("/srv/lxd/unix.socket")]
        );
        let defaults = only(None, None);
        assert_eq!(defaults[1], PathBuf::from("/var/lib/lxd/unix.socket"));
        assert_eq!(defaults.len(), 4);
    }

    #[test]
    fn error_envelope_becomes_api_error() {
        let body = br#"{"type":"error","error":"Instance not found","error_code":404,"status":"","status_code":0,"operation":"","metadata":null}"#;
        let err = decode::<Server>(404, "/1.0/instances/x", body).unwrap_err();
        assert!(err.is_not_found(), "{err}");
        assert!(err.to_string().contains("Instance not found"));
    }

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn recorded_errors_are_distinguishable() {
        let err = decode::<Server>(404, "/1.0/instances/x", &fixture("error_not_found.json"))
            .unwrap_err();
        assert!(err.is_not_found());
        let err = decode::<Server>(
            412,
            "/1.0/instances/x",
            &fixture("error_etag_mismatch.json"),
        )
        .unwrap_err();
        assert!(err.is_precondition_failed());
        assert!(err.message().unwrap().starts_with("ETag doesn't match"));
    }

    #[test]
    fn recorded_server_decodes() {
        let s = decode::<Server>(200, "/1.0", &fixture("server.json")).unwrap();
        assert_eq!(s.environment.server_version, "5.0.2");
    }

    #[test]
    fn error_type_wins_over_http_200() {
        let body = br#"{"type":"error","error":"boom","error_code":500,"metadata":null}"#;
        let err = decode::<Server>(200, "/1.0", body).unwrap_err();
        assert_eq!(err.status(), Some(500));
        assert_eq!(err.message(), Some("boom"));
    }

    #[test]
    fn decode_error_names_field_path() {
        let body = br#"{"type":"sync","status":"Success","status_code":200,"metadata":{"api_version":"1.0","auth":"trusted","environment":{"server_version":5}}}"#;
        let err = decode::<Server>(200, "/1.0", body).unwrap_err();
        assert!(
            err.to_string().contains("environment.server_version"),
            "{err}"
        );
    }

    #[test]
    fn non_json_error_body_is_kept() {
        let err = api_error(502, &Method::GET, "/1.0", b"bad gateway\n");
        assert_eq!(err.message(), Some("bad gateway"));
        let err = api_error(404, &Method::GET, "/1.0", b"");
        assert_eq!(err.message(), Some("Not Found"));
    }
}
