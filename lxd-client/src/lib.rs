//! An async, typed client for the LXD REST API.
//!
//! Connect to the local daemon over its unix socket and ask it about itself:
//!
//! ```no_run
//! # async fn demo() -> lxd_client::Result<()> {
//! let client = lxd_client::Client::connect_local().await?;
//! let server = client.server().await?;
//! println!("LXD {}", server.environment.server_version);
//! # Ok(())
//! # }
//! ```

mod client;
mod error;
pub mod models;

pub use client::Client;
pub use error::{Error, Result};
