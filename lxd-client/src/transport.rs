//! Connections to the daemon and pure request building.
//!
//! [`Endpoint`] says where the daemon listens. It opens raw byte streams ([`Stream`]) that
//! serve both the pooled HTTP/1.1 client (through [`Connector`]) and the websockets of exec and
//! events, which need a connection of their own.
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
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
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
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Unix(s) => s.is_write_vectored(),
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
        Box::pin(async move { endpoint.connect().await.map(TokioIo::new) })
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
