//! A first program: launch a container, run a command, push a file, take a snapshot, clean up
//! (also when a step fails). The README prints it beside its pylxd equivalent.
//!
//! `cargo run -p lxd-client --example first_program -- [NAME]`

use lxd_client::{Client, FileOptions};

#[tokio::main]
async fn main() -> lxd_client::Result<()> {
    let instances = Client::connect_local().await?.instances();
    let name = std::env::args().nth(1).unwrap_or("first-program".into());

    // Deleted when dropped, so also when a step below fails.
    let c = instances.create(&name).image_alias("kitchen/busybox");
    let c = c.launch_guarded().await?;

    let out = c.exec(["uname", "-a"]).output().await?;
    println!("{}exit code {}", out.stdout_text(), out.status.code);

    let config = format!("greeting=hello from {name}\n");
    let mode = FileOptions::default().mode(0o600);
    c.files().push("/root/app.conf", config, mode).await?;

    c.snapshots().create("configured").await?.wait().await?;
    c.delete().await
}
