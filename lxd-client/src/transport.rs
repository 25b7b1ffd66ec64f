//! Connections to the daemon and pure request building.
//!
//! [`Endpoint`] says where the daemon listens. It opens raw byte streams ([`Stream`]) that
//! serve both the pooled HTTP/1.1 client (through [`Connector`]) and the websockets of exec and
//! events, which need a connection of their own.
//!
//! The pool's unix-socket connections are opened at their first write ([`DeferredUnix`]):
//! LXD 5.0.2 reads the first 8 bytes of each unix connection inside its accept loop, so a
//! connection that is open but silent stops the daemon from accepting any other client,
//! `lxd callhook` included, until it writes or closes.
//!
//! [`Endpoint::Https`] does the TCP connect and TLS handshake (`crate::tls`), and answers
//! `https://host:port` from [`Endpoint::base_url`] and `wss://host:port` from
//! [`Endpoint::ws_base_url`]. Request building, pooling, websockets and every API handle go
//! through these three methods; a new connector only extends them.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::UnixStream;

use crate::error::BoxError;

/// The request body type used on the wire.
pub(crate) type Body = UnsyncBoxBody<Bytes, BoxError>;

/// Where an LXD daemon listens.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Endpoint {
    /// A local unix socket, e.g. `/var/lib/lxd/unix.socket`.
    Unix(PathBuf),
    /// An HTTPS remote with a pinned server certificate (see [`crate::HttpsEndpoint`]).
    Https(crate::tls::HttpsEndpoint),
}

impl From<crate::tls::HttpsEndpoint> for Endpoint {
    fn from(endpoint: crate::tls::HttpsEndpoint) -> Self {
        Endpoint::Https(endpoint)
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(path) => write!(f, "unix:{}", path.display()),
            Endpoint::Https(https) => f.write_str(https.base_url()),
        }
    }
}

impl Endpoint {
    /// The scheme and authority HTTP requests are sent to (the Host header is ignored on the
    /// unix socket).
    pub(crate) fn base_url(&self) -> &str {
        match self {
            Endpoint::Unix(_) => "http://lxd",
            Endpoint::Https(https) => https.base_url(),
        }
    }

    /// The scheme and authority of websocket URLs.
    pub(crate) fn ws_base_url(&self) -> &str {
        match self {
            Endpoint::Unix(_) => "ws://lxd",
            Endpoint::Https(https) => https.ws_base_url(),
        }
    }

    /// Opens a new raw connection.
    pub(crate) async fn connect(&self) -> io::Result<Stream> {
        match self {
            Endpoint::Unix(path) => Ok(Stream::Unix(UnixStream::connect(path).await?)),
            Endpoint::Https(https) => Ok(Stream::Tls(Box::new(https.connect().await?))),
        }
    }
}

/// A raw connection to the daemon.
#[derive(Debug)]
pub(crate) enum Stream {
    /// A unix-socket connection.
    Unix(UnixStream),
    /// A pooled unix-socket connection that connects at its first write.
    DeferredUnix(DeferredUnix),
    /// A TLS connection over TCP.
    Tls(Box<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Stream::DeferredUnix(s) => s.poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Stream::DeferredUnix(s) => s.poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
            Stream::DeferredUnix(s) => s.poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Stream::DeferredUnix(s) => s.poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::DeferredUnix(s) => s.poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Unix(s) => s.is_write_vectored(),
            Stream::DeferredUnix(_) => true,
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

/// The connector the pooled hyper client uses: every URI goes to the one endpoint.
#[derive(Debug, Clone)]
pub(crate) struct Connector {
    endpoint: Arc<Endpoint>,
}

impl Connector {
    pub(crate) fn new(endpoint: Arc<Endpoint>) -> Self {
        Connector { endpoint }
    }
}

impl tower_service::Service<http::Uri> for Connector {
    type Response = TokioIo<Stream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<TokioIo<Stream>>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: http::Uri) -> Self::Future {
        let endpoint = Arc::clone(&self.endpoint);
        Box::pin(async move {
            match endpoint.as_ref() {
                // hyper's pool races a new connection against a busy one becoming idle, and
                // keeps the loser unused: on the unix socket it must not be open yet.
                Endpoint::Unix(path) => {
                    DeferredUnix::check(path)?;
                    Ok(TokioIo::new(Stream::DeferredUnix(DeferredUnix::new(
                        path.clone(),
                    ))))
                }
                Endpoint::Https(_) => endpoint.connect().await.map(TokioIo::new),
            }
        })
    }
}

/// A unix-socket connection that calls `connect(2)` when the first bytes are written.
///
/// LXD 5.0.2's unix listener peeks at 8 bytes of every connection before it accepts the next
/// one (to detect STARTTLS), so a silent open connection stalls every other client of the
/// daemon, including the `lxd callhook` that LXC runs when a container stops; the stop
/// operation then fails after 30 s with "Instance "stop" operation timed out". An HTTP client
/// always writes first, so deferring the connect changes nothing else.
#[derive(Debug)]
pub(crate) struct DeferredUnix {
    state: DeferredState,
    /// The reader that polled before the socket existed; woken once it does.
    read_waker: Option<std::task::Waker>,
}

enum DeferredState {
    NotConnected(PathBuf),
    Connecting(Pin<Box<dyn Future<Output = io::Result<UnixStream>> + Send>>),
    Open(UnixStream),
    Failed,
}

impl std::fmt::Debug for DeferredState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeferredState::NotConnected(path) => write!(f, "NotConnected({})", path.display()),
            DeferredState::Connecting(_) => f.write_str("Connecting"),
            DeferredState::Open(s) => write!(f, "Open({s:?})"),
            DeferredState::Failed => f.write_str("Failed"),
        }
    }
}

/// The error of a deferred connect, so callers can still tell "daemon unreachable" apart
/// from a failure in the middle of a request.
#[derive(Debug, thiserror::Error)]
#[error("connecting to {path}: {source}")]
pub(crate) struct DeferredConnectError {
    path: String,
    #[source]
    source: io::Error,
}

/// Whether `error` (or anything in its source chain) is a deferred connect failure.
pub(crate) fn is_deferred_connect_error(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        // io::Error::source() skips the custom error it wraps, so look inside by hand.
        let wrapped = e
            .downcast_ref::<io::Error>()
            .and_then(|io| io.get_ref())
            .is_some_and(|inner| inner.is::<DeferredConnectError>());
        if wrapped || e.is::<DeferredConnectError>() {
            return true;
        }
        current = e.source();
    }
    false
}

impl DeferredUnix {
    pub(crate) fn new(path: PathBuf) -> Self {
        DeferredUnix {
            state: DeferredState::NotConnected(path),
            read_waker: None,
        }
    }

    /// Fails early, as an eager connect would, when nothing is at `path`: a missing socket is
    /// the common "daemon not installed or not started" case.
    fn check(path: &std::path::Path) -> io::Result<()> {
        std::fs::metadata(path)
            .map(|_| ())
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
    }

    /// Whether the socket has been connected yet.
    #[cfg(test)]
    pub(crate) fn is_open(&self) -> bool {
        matches!(self.state, DeferredState::Open(_))
    }

    /// Drives the connect started by the first write; Ready(Ok) means the state is `Open`.
    fn poll_connect(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let next = match &mut self.state {
                DeferredState::Open(_) => return Poll::Ready(Ok(())),
                DeferredState::Failed => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::NotConnected,
                        "the connection to the daemon failed to open",
                    )));
                }
                DeferredState::NotConnected(path) => {
                    let path = std::mem::take(path);
                    DeferredState::Connecting(Box::pin(async move {
                        UnixStream::connect(&path).await.map_err(|source| {
                            io::Error::new(
                                source.kind(),
                                DeferredConnectError {
                                    path: path.display().to_string(),
                                    source,
                                },
                            )
                        })
                    }))
                }
                DeferredState::Connecting(fut) => match fut.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Err(e)) => {
                        self.state = DeferredState::Failed;
                        return Poll::Ready(Err(e));
                    }
                    Poll::Ready(Ok(stream)) => {
                        if let Some(waker) = self.read_waker.take() {
                            waker.wake();
                        }
                        DeferredState::Open(stream)
                    }
                },
            };
            self.state = next;
        }
    }

    /// The open socket, connecting first if needed.
    fn poll_open(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<&mut UnixStream>> {
        match self.poll_connect(cx) {
            Poll::Ready(Ok(())) => match &mut self.state {
                DeferredState::Open(stream) => Poll::Ready(Ok(stream)),
                _ => unreachable!("poll_connect returned Ready(Ok) only when open"),
            },
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match &mut self.state {
            DeferredState::Open(stream) => Pin::new(stream).poll_read(cx, buf),
            // Nothing can arrive before the request is written; wait for the connect.
            DeferredState::NotConnected(_) | DeferredState::Connecting(_) => {
                self.read_waker = Some(cx.waker().clone());
                Poll::Pending
            }
            DeferredState::Failed => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.poll_open(cx) {
            Poll::Ready(Ok(stream)) => Pin::new(stream).poll_write(cx, buf),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.poll_open(cx) {
            Poll::Ready(Ok(stream)) => Pin::new(stream).poll_write_vectored(cx, bufs),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.state {
            DeferredState::Open(stream) => Pin::new(stream).poll_flush(cx),
            _ => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.state {
            DeferredState::Open(stream) => Pin::new(stream).poll_shutdown(cx),
            _ => Poll::Ready(Ok(())),
        }
    }
}

/// Characters escaped in one path segment (an instance name, an alias such as
/// `kitchen/busybox`, a fingerprint).
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'&')
    .add(b'+');

/// Characters escaped in a query value.
const QUERY: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'&')
    .add(b'+')
    .add(b'=')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// Escapes one path segment.
pub(crate) fn seg(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// A request body before it is put on the wire.
pub(crate) enum RequestBody {
    /// No body.
    Empty,
    /// A JSON document.
    Json(Vec<u8>),
    /// Raw bytes with a content type.
    Bytes(Bytes, &'static str),
    /// A streamed body with a content type (and the length, when known).
    Stream(Body, String),
}

impl std::fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestBody::Empty => f.write_str("Empty"),
            RequestBody::Json(j) => write!(f, "Json({})", String::from_utf8_lossy(j)),
            RequestBody::Bytes(b, t) => write!(f, "Bytes({} bytes, {t})", b.len()),
            RequestBody::Stream(_, t) => write!(f, "Stream({t})"),
        }
    }
}

/// Everything needed to send one request, independent of the connection. Building it is
/// pure; [`RequestSpec::into_http`] makes the `http::Request`.
#[derive(Debug)]
pub(crate) struct RequestSpec {
    pub method: Method,
    /// Path below the server root, e.g. `/1.0/instances/c1`; may carry its own query string
    /// (as operation and log URLs from the server do).
    pub path: String,
    pub query: Vec<(&'static str, String)>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: RequestBody,
}

impl RequestSpec {
    /// A request without query, headers or body.
    pub(crate) fn new(method: Method, path: impl Into<String>) -> Self {
        RequestSpec {
            method,
            path: path.into(),
            query: Vec::new(),
            headers: Vec::new(),
            body: RequestBody::Empty,
        }
    }

    /// `GET path`.
    pub(crate) fn get(path: impl Into<String>) -> Self {
        Self::new(Method::GET, path)
    }

    /// Adds a query parameter.
    pub(crate) fn query(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.query.push((key, value.into()));
        self
    }

    /// Adds a header.
    pub(crate) fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Sets a JSON body.
    pub(crate) fn json<T: serde::Serialize + ?Sized>(mut self, body: &T) -> Self {
        // Serializing our own model types into a Vec cannot fail: they have string keys and
        // no non-serializable values.
        self.body = RequestBody::Json(serde_json::to_vec(body).unwrap_or_default());
        self
    }

    /// Sets a body.
    pub(crate) fn body(mut self, body: RequestBody) -> Self {
        self.body = body;
        self
    }

    /// The path and query string, with `project` added when set and not already present.
    pub(crate) fn path_and_query(&self, project: Option<&str>) -> String {
        let mut out = self.path.clone();
        let mut has_query = out.contains('?');
        let mut push = |out: &mut String, k: &str, v: &str| {
            out.push(if has_query { '&' } else { '?' });
            has_query = true;
            out.push_str(k);
            out.push('=');
            out.extend(utf8_percent_encode(v, QUERY).map(|s| s.to_string()));
        };
        for (k, v) in &self.query {
            push(&mut out, k, v);
        }
        if let Some(project) = project {
            let already = self.query.iter().any(|(k, _)| *k == "project")
                || self.path.contains("?project=")
                || self.path.contains("&project=");
            if !already {
                push(&mut out, "project", project);
            }
        }
        out
    }

    /// Builds the `http::Request` for `base` (e.g. `http://lxd`).
    pub(crate) fn into_http(
        self,
        base: &str,
        project: Option<&str>,
    ) -> Result<http::Request<Body>, http::Error> {
        let uri = format!("{base}{}", self.path_and_query(project));
        let mut builder = http::Request::builder().method(self.method).uri(uri);
        for (name, value) in self.headers {
            builder = builder.header(name, value);
        }
        let empty = || {
            http_body_util::Empty::new()
                .map_err(|never| match never {})
                .boxed_unsync()
        };
        let body = match self.body {
            RequestBody::Empty => empty(),
            RequestBody::Json(bytes) => {
                builder = builder.header(http::header::CONTENT_TYPE, "application/json");
                http_body_util::Full::new(Bytes::from(bytes))
                    .map_err(|never| match never {})
                    .boxed_unsync()
            }
            RequestBody::Bytes(bytes, content_type) => {
                builder = builder.header(http::header::CONTENT_TYPE, content_type);
                http_body_util::Full::new(bytes)
                    .map_err(|never| match never {})
                    .boxed_unsync()
            }
            RequestBody::Stream(body, content_type) => {
                builder = builder.header(http::header::CONTENT_TYPE, content_type);
                body
            }
        };
        builder.body(body)
    }
}

/// Turns a stream of byte chunks into a request body.
pub(crate) fn stream_body<S>(stream: S) -> Body
where
    S: futures::Stream<Item = io::Result<Bytes>> + Send + 'static,
{
    use futures::TryStreamExt;
    let frames = stream
        .map_ok(hyper::body::Frame::data)
        .map_err(|e| Box::new(e) as BoxError);
    http_body_util::StreamBody::new(frames).boxed_unsync()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tower_service::Service;

    async fn pooled_connection(path: &std::path::Path) -> io::Result<Stream> {
        let mut connector = Connector::new(Arc::new(Endpoint::Unix(path.to_path_buf())));
        connector
            .call(http::Uri::from_static("http://lxd/"))
            .await
            .map(TokioIo::into_inner)
    }

    #[tokio::test]
    async fn pooled_unix_connection_opens_at_its_first_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.socket");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let mut conn = pooled_connection(&path).await.unwrap();
        // A reader polling the idle connection must not open it either.
        let mut byte = [0u8; 1];
        let idle_read =
            tokio::time::timeout(std::time::Duration::from_millis(50), conn.read(&mut byte)).await;
        assert!(
            idle_read.is_err(),
            "an unopened connection has nothing to read"
        );
        let Stream::DeferredUnix(deferred) = &conn else {
            panic!("pooled unix connections are deferred: {conn:?}");
        };
        assert!(!deferred.is_open());
        assert!(
            futures::poll!(Box::pin(listener.accept())).is_pending(),
            "nothing may connect before the first write"
        );
        conn.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        let mut got = [0u8; 5];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"GET /");
        server.write_all(b"pong").await.unwrap();
        let mut reply = [0u8; 4];
        conn.read_exact(&mut reply).await.unwrap();
        assert_eq!(&reply, b"pong");
    }

    #[tokio::test]
    async fn pooled_unix_connect_failures_are_recognisable() {
        let dir = tempfile::tempdir().unwrap();
        // No socket file: the connector fails at once, as an eager connect would.
        let err = pooled_connection(&dir.path().join("none.socket"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        // A socket file nobody listens on: the first write fails, marked as a connect failure.
        let path = dir.path().join("dead.socket");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let mut conn = pooled_connection(&path).await.unwrap();
        let err = conn.write_all(b"GET").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        assert!(is_deferred_connect_error(&err), "{err:?}");
        let other = io::Error::new(io::ErrorKind::ConnectionRefused, "elsewhere");
        assert!(!is_deferred_connect_error(&other));
    }

    #[test]
    fn segment_escapes_slash_in_alias() {
        assert_eq!(seg("kitchen/busybox"), "kitchen%2Fbusybox");
        assert_eq!(seg("c1"), "c1");
    }

    #[test]
    fn query_values_are_escaped_and_project_added() {
        let spec = RequestSpec::get("/1.0/instances/c1/files").query("path", "/etc/a b&c=d");
        assert_eq!(
            spec.path_and_query(Some("p 1")),
            "/1.0/instances/c1/files?path=/etc/a%20b%26c%3Dd&project=p%201"
        );
    }

    #[test]
    fn project_is_not_doubled_and_server_query_kept() {
        let spec = RequestSpec::get("/1.0/operations/abc/websocket?secret=s3");
        assert_eq!(
            spec.path_and_query(Some("p")),
            "/1.0/operations/abc/websocket?secret=s3&project=p"
        );
        let spec = RequestSpec::get("/1.0/instances?project=q");
        assert_eq!(spec.path_and_query(Some("p")), "/1.0/instances?project=q");
        let spec = RequestSpec::get("/1.0").query("project", "x");
        assert_eq!(spec.path_and_query(Some("p")), "/1.0?project=x");
        assert_eq!(RequestSpec::get("/1.0").path_and_query(None), "/1.0");
    }

    #[test]
    fn json_body_sets_content_type_and_uri() {
        let req = RequestSpec::new(Method::POST, "/1.0/instances")
            .json(&serde_json::json!({"name": "c1"}))
            .into_http("http://lxd", Some("default"))
            .unwrap();
        assert_eq!(req.method(), Method::POST);
        assert_eq!(
            req.uri().to_string(),
            "http://lxd/1.0/instances?project=default"
        );
        assert_eq!(
            req.headers()[http::header::CONTENT_TYPE],
            "application/json"
        );
    }

    #[test]
    fn raw_body_keeps_given_content_type() {
        let req = RequestSpec::new(Method::POST, "/1.0/instances/c1/files")
            .body(RequestBody::Bytes(
                Bytes::from_static(b"x"),
                "application/octet-stream",
            ))
            .header(
                HeaderName::from_static("x-lxd-mode"),
                HeaderValue::from_static("0644"),
            )
            .into_http("http://lxd", None)
            .unwrap();
        assert_eq!(
            req.headers()[http::header::CONTENT_TYPE],
            "application/octet-stream"
        );
        assert_eq!(req.headers()["x-lxd-mode"], "0644");
    }
}
