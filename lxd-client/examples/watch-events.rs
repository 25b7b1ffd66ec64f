//! Print lifecycle events (instance started, stopped, created, ...) as they happen.
//!
//! `cargo run -p lxd-client --example watch-events`

use futures::StreamExt;
use lxd_client::Client;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let client = Client::connect_local().await?;
    let mut events = client.events().types(["lifecycle"]).subscribe().await?;
    while let Some(event) = events.next().await {
        let event = event?;
        let source = event.metadata["source"].as_str().unwrap_or("");
        println!(
            "{} {} {source}",
            event.timestamp,
            event.lifecycle_action().unwrap_or("?")
        );
    }
    Ok(())
}
