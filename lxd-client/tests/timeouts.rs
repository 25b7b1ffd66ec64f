//! The client's time limits against real listeners on loopback that accept a connection and
//! never answer: a TLS handshake, a request and a websocket upgrade each end in an error
//! within their limit instead of hanging.

use std::time::Duration;

use lxd_client::{Client, ClientIdentity, ServerPin, Timeouts};

const SHORT: Duration = Duration::from_millis(300);

/// Accepts every connection on a TCP listener at 127.0.0.1 and holds it open, silent.
async fn silent_tcp() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    port
}

/// Accepts every connection on a unix socket and holds it open, silent.
fn silent_unix(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let path = dir.path().join("silent.socket");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    path
}

#[test]
fn defaults_are_the_documented_ones() {
    let t = Timeouts::default();
    assert_eq!(t.connect_limit(), Duration::from_secs(10));
    assert_eq!(t.tls_handshake_limit(), Duration::from_secs(10));
    assert_eq!(t.request_limit(), Duration::from_secs(60));
    let client = Client::with_socket("/nonexistent/lxd.socket");
    assert_eq!(client.timeouts(), t);
    let shorter = client.with_timeouts(t.request(SHORT));
    assert_eq!(shorter.timeouts().request_limit(), SHORT);
}

#[tokio::test]
async fn a_tls_handshake_never_answered_ends_in_a_connect_error() {
    let port = silent_tcp().await;
    let pin = ServerPin::Certificate(
        ClientIdentity::generate("any")
            .unwrap()
            .certificate()
            .clone(),
    );
    let client = Client::https(&format!("https://127.0.0.1:{port}"), pin, None)
        .unwrap()
        .with_timeouts(Timeouts::default().tls_handshake(SHORT));
    let err = client.server().await.unwrap_err();
    assert!(err.is_daemon_unreachable(), "{err:?}");
    let text = format!("{err} {:?}", err);
    assert!(text.contains("TLS handshake"), "{text}");
    assert!(text.contains("timed out"), "{text}");
}

#[tokio::test]
async fn a_request_never_answered_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let client =
        Client::with_socket(silent_unix(&dir)).with_timeouts(Timeouts::default().request(SHORT));
    let err = client.server().await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(err.to_string().contains("GET /1.0"), "{err}");
}

#[tokio::test]
async fn a_websocket_upgrade_never_answered_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let client =
        Client::with_socket(silent_unix(&dir)).with_timeouts(Timeouts::default().request(SHORT));
    let err = client.events().subscribe().await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
}

/// A TCP listener on 127.0.0.1 whose accept queue is full: it listens with a backlog of 0
/// (one queued connection on Linux), never accepts, and holds connections that fill the queue.
/// Linux then drops every further SYN, so a new connect hangs until its caller gives up.
/// Returns the port and the listener with its held connections (keep them alive).
fn full_accept_queue() -> (u16, tokio::net::TcpListener, Vec<std::net::TcpStream>) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    // Fill the queue: connect until one connect does not complete (its SYN was dropped).
    let mut held = Vec::new();
    for _ in 0..8 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(s) => held.push(s),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                return (addr.port(), listener, held);
            }
            Err(e) => panic!("filling the accept queue of {addr}: {e}"),
        }
    }
    panic!(
        "the accept queue of {addr} never filled ({} connections queued)",
        held.len()
    );
}

#[tokio::test]
async fn a_connect_never_answered_ends_in_a_connect_error_naming_the_address() {
    let (port, _listener, _held) = full_accept_queue();
    let pin = ServerPin::Certificate(
        ClientIdentity::generate("any")
            .unwrap()
            .certificate()
            .clone(),
    );
    let url = format!("https://127.0.0.1:{port}");
    // Only the connect limit is short: a hang anywhere else would outlive the test's deadline
    // (the handshake and request limits stay at their 10 s and 60 s).
    let client = Client::https(&url, pin, None)
        .unwrap()
        .with_timeouts(Timeouts::default().connect(SHORT));
    let err = tokio::time::timeout(Duration::from_secs(8), client.server())
        .await
        .expect("the connect limit (300 ms) ends the call, not the test's deadline")
        .unwrap_err();
    assert!(err.is_daemon_unreachable(), "{err:?}");
    // The message itself says where and what: the address, the connect, the time-out.
    let text = err.to_string();
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(text.contains("connect"), "{text}");
    assert!(text.contains("timed out"), "{text}");
    assert!(!text.contains("TLS handshake"), "{text}");
}
