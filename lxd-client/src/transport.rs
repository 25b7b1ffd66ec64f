//! Connections to the daemon (what a request is sent over; what it says is built in
//! `crate::request`).
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
//! [`Endpoint::ws_base_url`]. Sending requests, pooling, websockets and every API handle go
//! through these three methods; a new connector only extends them.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::UnixStream;

/// How long the client waits for the daemon, per connection and per request
/// ([`crate::Client::with_timeouts`]). Each limit ends in an error instead of a hang: a
/// connect or handshake that passes its limit is an [`crate::Error::Connect`], a request
/// an [`crate::Error::Timeout`].
///
/// ```
/// use std::time::Duration;
/// let t = lxd_client::Timeouts::default()
///     .connect(Duration::from_secs(3))
///     .request(Duration::from_secs(120));
/// assert_eq!(t.tls_handshake_limit(), lxd_client::Timeouts::DEFAULT_TLS_HANDSHAKE);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    connect: std::time::Duration,
    tls_handshake: std::time::Duration,
    request: std::time::Duration,
}

impl Timeouts {
    /// Default connect limit (TCP connect or unix-socket connect): 10 s.
    pub const DEFAULT_CONNECT: std::time::Duration = std::time::Duration::from_secs(10);
    /// Default TLS handshake limit (HTTPS remotes): 10 s.
    pub const DEFAULT_TLS_HANDSHAKE: std::time::Duration = std::time::Duration::from_secs(10);
    /// Default request limit: 60 s from sending a request to its whole answer (headers and
    /// body), or to a websocket's upgrade. A long poll (an operation's `/wait`) gets its poll
    /// time on top. Requests whose body is a stream (file pushes, image uploads) are limited
    /// by their connect only, since their length is the caller's.
    pub const DEFAULT_REQUEST: std::time::Duration = std::time::Duration::from_secs(60);

    /// Sets the connect limit.
    #[must_use]
    pub fn connect(mut self, limit: std::time::Duration) -> Self {
        self.connect = limit;
        self
    }

    /// Sets the TLS handshake limit.
    #[must_use]
    pub fn tls_handshake(mut self, limit: std::time::Duration) -> Self {
        self.tls_handshake = limit;
        self
    }

    /// Sets the request limit.
    #[must_use]
    pub fn request(mut self, limit: std::time::Duration) -> Self {
        self.request = limit;
        self
    }

    /// The connect limit.
    pub fn connect_limit(&self) -> std::time::Duration {
        self.connect
    }

    /// The TLS handshake limit.
    pub fn tls_handshake_limit(&self) -> std::time::Duration {
        self.tls_handshake
    }

    /// The request limit.
    pub fn request_limit(&self) -> std::time::Duration {
        self.request
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Self::DEFAULT_CONNECT,
            tls_handshake: Self::DEFAULT_TLS_HANDSHAKE,
            request: Self::DEFAULT_REQUEST,
        }
    }
}

/// `fut` within `limit`, or an `io::ErrorKind::TimedOut` error saying `what` timed out.
pub(crate) async fn within<T>(
    limit: std::time::Duration,
    what: &str,
    fut: impl Future<Output = io::Result<T>>,
) -> io::Result<T> {
    tokio::time::timeout(limit, fut).await.unwrap_or_else(|_| {
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{what} timed out after {limit:?}"),
        ))
    })
}

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

    /// Opens a new raw connection, each phase within its limit of `timeouts`.
    pub(crate) async fn connect(&self, timeouts: &Timeouts) -> io::Result<Stream> {
        match self {
            Endpoint::Unix(path) => Ok(Stream::Unix(
                within(
                    timeouts.connect,
                    "connecting to the unix socket",
                    UnixStream::connect(path),
                )
                .await?,
            )),
            Endpoint::Https(https) => Ok(Stream::Tls(Box::new(https.connect(timeouts).await?))),
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
    timeouts: Timeouts,
}

impl Connector {
    pub(crate) fn new(endpoint: Arc<Endpoint>, timeouts: Timeouts) -> Self {
        Connector { endpoint, timeouts }
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
        let timeouts = self.timeouts;
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
                Endpoint::Https(_) => endpoint.connect(&timeouts).await.map(TokioIo::new),
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tower_service::Service;

    async fn pooled_connection(path: &std::path::Path) -> io::Result<Stream> {
        let mut connector = Connector::new(
            Arc::new(Endpoint::Unix(path.to_path_buf())),
            Timeouts::default(),
        );
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
}
