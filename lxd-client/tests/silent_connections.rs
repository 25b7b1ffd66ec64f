//! LXD 5.0.2 peeks at the first 8 bytes of each unix-socket connection inside its accept loop,
//! so one connection that is open but silent stops the daemon from accepting anyone else. The
//! client's pool must never hold such a connection (see `transport::DeferredUnix`); before it
//! did, a stop right after a start waited for `lxd callhook` and failed after 30 s.

mod common;

use std::time::Duration;

use common::*;
use lxd_client::{Client, Endpoint};

fn socket(client: &Client) -> std::path::PathBuf {
    match client.endpoint() {
        Endpoint::Unix(path) => path.clone(),
        other => panic!("the local client uses the unix socket, not {other}"),
    }
}

/// The trap itself, on the real daemon: while a silent connection is open nobody gets an
/// answer; once it closes, everyone does.
#[tokio::test]
async fn a_silent_connection_stalls_the_daemon_until_it_closes() {
    let client = client().await;
    let version = client.server().await.unwrap().environment.server_version;
    let path = socket(&client);
    let silent = std::os::unix::net::UnixStream::connect(&path).unwrap();
    let other = Client::with_socket(&path);
    let stalled = tokio::time::timeout(Duration::from_secs(3), other.server()).await;
    if version.starts_with("5.0.") {
        assert!(
            stalled.is_err(),
            "LXD {version} answered while a silent connection was open: the trap this client \
             works around is gone"
        );
    }
    drop(silent);
    let answered = tokio::time::timeout(Duration::from_secs(60), other.server()).await;
    assert!(
        matches!(answered, Ok(Ok(_))),
        "the daemon answers once the silent connection closes: {answered:?}"
    );
}

/// What the trap broke: force-stopping right after a restore and a start. Each round failed
/// with a 30 s stop timeout about one time in three when pooled connections were opened
/// eagerly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_right_after_restore_and_start_completes() {
    let client = client().await;
    let guard = running_busybox(&client, "quickstop").await;
    let instances = client.instances();
    let snapshots = instances.snapshots(&guard.name);
    snapshots
        .create("s0")
        .await
        .unwrap()
        .wait_for(OP_TIMEOUT)
        .await
        .unwrap();
    for round in 0..5 {
        snapshots
            .restore("s0")
            .await
            .unwrap()
            .wait_for(OP_TIMEOUT)
            .await
            .unwrap_or_else(|e| panic!("round {round}: restore: {e}"));
        for step in ["stop", "start", "stop", "start"] {
            // A fresh client and a read right before the change, as `lxc-lite delete --force`
            // does: the change starts while the read's connection is going back to the pool,
            // so the pool opens a second connection that it then keeps unused.
            let fresh = Client::with_socket(socket(&client));
            let instances = fresh.instances();
            instances.get(&guard.name).await.unwrap();
            let op = if step == "stop" {
                instances.stop(&guard.name).force().await
            } else {
                instances.start(&guard.name).await
            };
            op.unwrap()
                .wait_for(OP_TIMEOUT)
                .await
                .unwrap_or_else(|e| panic!("round {round}: {step}: {e}"));
        }
    }
}
