//! Copy a local directory into a running instance and back, keeping modes.
//!
//! `cargo run -p lxd-client --example copy-tree -- INSTANCE LOCAL_DIR /remote/dir`

use std::path::Path;

use anyhow::Context;
use lxd_client::{Client, FileOptions};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (instance, local, remote) = (
        args.next().context("INSTANCE")?,
        args.next().context("LOCAL_DIR")?,
        args.next().context("REMOTE_DIR")?,
    );
    let files = Client::connect_local().await?.instances().files(&instance);
    let pushed = files
        .push_dir(Path::new(&local), &remote, FileOptions::default())
        .await?;
    println!("pushed {pushed} entries to {instance}{remote}");
    let back = std::env::temp_dir().join(format!("copy-tree-{}", std::process::id()));
    let pulled = files.pull_dir(&remote, &back).await?;
    println!("pulled {pulled} entries back into {}", back.display());
    Ok(())
}
