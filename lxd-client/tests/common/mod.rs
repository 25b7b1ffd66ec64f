//! Helpers shared by the integration tests: a client, unique names and drop guards that
//! delete what a test created even when it panics.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use lxd_client::Client;

/// The busybox image every test instance is made from (built by `scripts/setup-host`).
pub const BUSYBOX: &str = "kitchen/busybox";

/// How long any one operation in a test may take.
pub const OP_TIMEOUT: Duration = Duration::from_secs(120);

/// `kdtest-<pid>-<n>-<label>`: unique to this process and call.
pub fn unique_name(label: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("kdtest-{}-{n}-{label}", std::process::id())
}

/// A client for the local daemon; fails the test when there is none.
pub async fn client() -> Client {
    Client::connect_local()
        .await
        .expect("the LXD daemon must be running (scripts/setup-host)")
}

/// Runs `f` on a fresh runtime in a fresh thread (usable from `Drop` inside a runtime).
fn block_on_side<F>(f: F)
where
    F: FnOnce(Client) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
        + Send
        + 'static,
{
    let handle = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for cleanup");
        rt.block_on(async move {
            let client = Client::connect_local().await.expect("LXD socket");
            f(client).await;
        });
    });
    let _ = handle.join();
}

/// Deletes instance `name` (force-stopping it first) when dropped.
pub struct InstanceGuard {
    pub name: String,
}

impl Drop for InstanceGuard {
    fn drop(&mut self) {
        let name = self.name.clone();
        block_on_side(move |client| {
            Box::pin(async move {
                let instances = client.instances();
                // A loaded daemon can refuse a step (e.g. "operation timed out" on the
                // instance lock): retry a few times before giving up.
                for _ in 0..5 {
                    if let Ok(op) = instances.stop(&name).force().await {
                        let _ = op.wait_for(OP_TIMEOUT).await;
                    }
                    match instances.delete(&name).await {
                        Ok(op) => {
                            if op.wait_for(OP_TIMEOUT).await.is_ok() {
                                return;
                            }
                        }
                        Err(e) if e.is_not_found() => return,
                        Err(_) => {}
                    }
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            })
        });
    }
}

/// Deletes image `fingerprint` when dropped.
pub struct ImageGuard {
    pub fingerprint: String,
}

impl Drop for ImageGuard {
    fn drop(&mut self) {
        let fp = self.fingerprint.clone();
        block_on_side(move |client| {
            Box::pin(async move {
                if let Ok(op) = client.images().delete(&fp).await {
                    let _ = op.wait_for(OP_TIMEOUT).await;
                }
            })
        });
    }
}

/// Deletes profile `name` when dropped.
pub struct ProfileGuard {
    pub name: String,
}

impl Drop for ProfileGuard {
    fn drop(&mut self) {
        let name = self.name.clone();
        block_on_side(move |client| {
            Box::pin(async move {
                let _ = client.profiles().delete(&name).await;
            })
        });
    }
}

/// Deletes network `name` when dropped.
pub struct NetworkGuard {
    pub name: String,
}

impl Drop for NetworkGuard {
    fn drop(&mut self) {
        let name = self.name.clone();
        block_on_side(move |client| {
            Box::pin(async move {
                let _ = client.networks().delete(&name).await;
            })
        });
    }
}

/// Creates a busybox container called `kdtest-...-<label>` (stopped) and its guard.
pub async fn busybox(client: &Client, label: &str) -> InstanceGuard {
    let name = unique_name(label);
    let guard = InstanceGuard { name: name.clone() };
    client
        .instances()
        .create(&name)
        .image_alias(BUSYBOX)
        .send()
        .await
        .expect("create request")
        .wait_for(OP_TIMEOUT)
        .await
        .expect("create operation");
    guard
}

/// Creates and starts a busybox container.
pub async fn running_busybox(client: &Client, label: &str) -> InstanceGuard {
    let guard = busybox(client, label).await;
    client
        .instances()
        .start(&guard.name)
        .await
        .expect("start request")
        .wait_for(OP_TIMEOUT)
        .await
        .expect("start operation");
    guard
}

/// Runs `cat` in instance `name` through `client` and checks that each line written to its
/// stdin comes back on stdout before the next is written (output is not buffered until the
/// end), that stdout ends after stdin's EOF, and that `cat` exits 0.
pub async fn cat_echoes_each_line_as_it_arrives(client: &Client, name: &str) {
    use futures::StreamExt;
    let mut p = client
        .instances()
        .exec(name, ["cat"])
        .spawn()
        .await
        .unwrap();
    let mut stdin = p.take_stdin().unwrap();
    let mut stdout = p.take_stdout().unwrap();
    for line in ["one\n", "two\n"] {
        stdin.write(line).await.unwrap();
        let mut got = Vec::new();
        while got.len() < line.len() {
            got.extend_from_slice(&stdout.next().await.unwrap().unwrap());
        }
        assert_eq!(got, line.as_bytes());
    }
    stdin.close();
    assert!(stdout.next().await.is_none(), "stdout ends after stdin EOF");
    assert!(p.wait_for(OP_TIMEOUT).await.unwrap().success());
}
