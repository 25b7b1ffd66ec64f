//! A first program: launch a container, run a command, push a file, take a snapshot, clean up
//! (also when a step fails). The README prints it beside its pylxd equivalent.
//!
//! `cargo run -p lxd-client --example first_program -- [NAME]`

use lxd_client::{Client, FileOptions};

#[tokio::main]
async fn main() -> lxd_client::Result<()> {
    let client = Client::connect_local().await?;
    let instances = client.instances();
    let name = std::env::args().nth(1).unwrap_or("first-program".into());

    // Deleted when dropped, so also when a step below fails.
    let c = instances
        .create(&name)
        .image_alias("kitchen/busybox")
        .launch_guarded()
        .await?;

    let out = instances.exec(&name, ["uname", "-a"]).output().await?;
    print!("{}", String::from_utf8_lossy(&out.stdout));
    println!("exit code {}", out.status.code);

    let config = format!("greeting=hello from {name}\n");
    let options = FileOptions::default().mode(0o600);
    instances
        .files(&name)
        .push("/root/app.conf", &config, options)
        .await?;

    instances
        .snapshots(&name)
        .create("configured")
        .await?
        .wait()
        .await?;

    c.delete().await
}
