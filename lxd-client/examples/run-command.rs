//! Launch a throw-away busybox container, run a command in it and print what it wrote.
//!
//! `cargo run -p lxd-client --example run-command -- sh -c 'uname -a; exit 3'`

use lxd_client::Client;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let command: Vec<String> = std::env::args().skip(1).collect();
    let command = if command.is_empty() {
        vec!["uname".into(), "-a".into()]
    } else {
        command
    };
    let client = Client::connect_local().await?;
    let name = format!("kdtest-{}-example", std::process::id());
    let instances = client.instances();
    let instance = instances
        .create(&name)
        .image_alias("kitchen/busybox")
        .launch_guarded()
        .await?;
    let result = instances.exec(&name, command).output().await;
    instance.delete().await?;
    let out = result?;
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    println!("exit code: {}", out.status.code);
    Ok(())
}
