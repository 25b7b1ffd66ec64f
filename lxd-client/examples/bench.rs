//! The Rust side of `scripts/bench-lxd`: times lxd-client on the operations the peers
//! (pylxd, the `lxc` CLI) are timed on, and runs the large transfers whose peak memory the
//! script measures.
//!
//! ```text
//! bench timings TARGET PAYLOAD RUNS      JSON samples per operation (seconds)
//! bench push TARGET LOCAL REMOTE         stream LOCAL into TARGET at REMOTE
//! bench exec-stream TARGET BYTES         stream BYTES of command output, counting them
//! bench concurrent-exec TARGET N         N execs at once; prints how many were correct
//! ```

use std::future::Future;
use std::path::Path;
use std::time::Instant;

use futures::StreamExt;
use lxd_client::{Client, FileOptions, UploadBody};

async fn timed<F, Fut>(runs: usize, mut op: F) -> anyhow::Result<Vec<f64>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    op().await?; // warm-up: the pooled connection, as the peers get theirs
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        op().await?;
        samples.push(start.elapsed().as_secs_f64());
    }
    Ok(samples)
}

async fn timings(client: &Client, target: &str, payload: &Path, runs: usize) -> anyhow::Result<()> {
    let payload = bytes::Bytes::from(std::fs::read(payload)?);
    let instances = client.instances();
    let server_info = timed(runs, || async {
        client.server().await?;
        Ok(())
    })
    .await?;
    let list = timed(runs, || async {
        instances.list().await?;
        Ok(())
    })
    .await?;
    let exec = timed(runs, || async {
        let out = instances.exec(target, ["echo", "hi"]).output().await?;
        anyhow::ensure!(
            out.status.success() && out.stdout == b"hi\n",
            "bad exec: {out:?}"
        );
        Ok(())
    })
    .await?;
    let files = instances.files(target);
    let push = timed(runs.div_ceil(3).max(5), || async {
        files
            .push("/tmp/bench-rust", payload.clone(), FileOptions::default())
            .await?;
        Ok(())
    })
    .await?;
    let out = serde_json::json!({"lxd-client": {
        "server_info": server_info,
        "list_recursion_1": list,
        "exec_echo_hi": exec,
        "push_10mib": push,
    }});
    println!("{out}");
    Ok(())
}

async fn exec_stream(client: &Client, target: &str, bytes: u64) -> anyhow::Result<()> {
    let command = format!("head -c {bytes} /dev/zero");
    let mut process = client
        .instances()
        .exec(target, ["sh", "-c", command.as_str()])
        .spawn()
        .await?;
    let mut stdout = process
        .take_stdout()
        .ok_or_else(|| anyhow::anyhow!("no stdout stream"))?;
    let mut seen = 0u64;
    while let Some(chunk) = stdout.next().await {
        seen += chunk?.len() as u64;
    }
    let status = process.wait().await?;
    anyhow::ensure!(
        status.success() && seen == bytes,
        "streamed {seen} of {bytes} bytes, {status:?}"
    );
    Ok(())
}

async fn concurrent_exec(client: &Client, target: &str, n: usize) -> anyhow::Result<()> {
    let runs = (0..n).map(|i| {
        let instances = client.instances();
        async move {
            let script = format!("echo {i}; echo err{i} >&2; exit {}", i % 7);
            let started = Instant::now();
            let out = instances
                .exec(target, ["sh", "-c", script.as_str()])
                .output()
                .await
                .map_err(|e| anyhow::anyhow!("after {:?}: {e}", started.elapsed()))?;
            anyhow::Ok(
                out.stdout == format!("{i}\n").into_bytes()
                    && out.stderr == format!("err{i}\n").into_bytes()
                    && i64::from(out.status.code) == (i % 7) as i64,
            )
        }
    });
    let results = futures::future::join_all(runs).await;
    let correct = results.iter().filter(|r| matches!(r, Ok(true))).count();
    for (i, failed) in results
        .iter()
        .enumerate()
        .filter(|(_, r)| !matches!(r, Ok(true)))
    {
        eprintln!("exec {i}: {failed:?}");
    }
    println!("{correct}/{n} correct (stdout, stderr and exit code each)");
    anyhow::ensure!(
        correct == n,
        "{} of {n} execs were wrong or failed",
        n - correct
    );
    Ok(())
}

// One thread, as a CLI or a test harness runs: sequential requests then cost no cross-thread
// wake-ups (about 0.15 ms less per `GET /1.0` here than the multi-threaded runtime).
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let client = Client::connect_local().await?;
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["timings", target, payload, runs] => {
            timings(&client, target, Path::new(payload), runs.parse()?).await
        }
        ["push", target, local, remote] => {
            let body = UploadBody::path(Path::new(local)).await?;
            client
                .instances()
                .files(target)
                .push(remote, body, FileOptions::default())
                .await?;
            Ok(())
        }
        ["exec-stream", target, bytes] => exec_stream(&client, target, bytes.parse()?).await,
        ["concurrent-exec", target, n] => concurrent_exec(&client, target, n.parse()?).await,
        _ => anyhow::bail!("usage: see the header of lxd-client/examples/bench.rs"),
    }
}
