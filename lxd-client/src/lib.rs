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
//!
//! A tour: launch a container, run a command, copy a file, clean up.
//!
//! ```no_run
//! # async fn demo() -> lxd_client::Result<()> {
//! use lxd_client::{Client, FileOptions};
//! let client = Client::connect_local().await?;
//! let instances = client.instances();
//! instances.create("c1").image_alias("kitchen/busybox").launch(None).await?;
//!
//! let out = instances.exec("c1", ["sh", "-c", "echo hi; exit 3"]).output().await?;
//! assert_eq!((out.stdout.as_slice(), out.status.code), (&b"hi\n"[..], 3));
//!
//! let files = instances.files("c1");
//! files.push("/root/hello", "hello\n", FileOptions::default().mode(0o600)).await?;
//! let (info, data) = files.read("/root/hello").await?;
//!
//! // Failures are values you can tell apart.
//! match instances.start("c1").await?.wait(None).await {
//!     Err(e) if e.is_operation_failure() => {} // "The instance is already running"
//!     other => panic!("{other:?}"),
//! }
//! instances.stop("c1", true).await?.wait(None).await?;
//! instances.delete("c1").await?.wait(None).await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! - [`Client`] holds a pool of keep-alive connections to one daemon and the project; it hands
//!   out typed handles: [`Client::instances`] ([`Instances`], with [`ExecBuilder`], [`Files`]
//!   and [`Snapshots`] below it), [`Client::images`], [`Client::operations`],
//!   [`Client::profiles`], [`Client::networks`], [`Client::storage_pools`],
//!   [`Client::events`].
//! - Calls that start background work return an [`OperationHandle`]; call
//!   [`OperationHandle::wait`]. It follows the operation from the moment it is created, so
//!   LXD's 5-second clean-up of finished operations cannot lose the result, and a failed
//!   operation is always an error carrying the server's text.
//! - One [`Error`] type with predicates: [`Error::is_not_found`],
//!   [`Error::is_precondition_failed`] (stale ETag), [`Error::is_operation_failure`],
//!   [`Error::is_timeout`], [`Error::is_daemon_unreachable`].
//! - [`models`] holds the API objects; they tolerate unknown fields.
//!
//! # Transports
//!
//! The local unix socket ([`Endpoint::Unix`]) and HTTPS remotes ([`Endpoint::Https`]: a TLS
//! client certificate, [`ClientIdentity`], and a pinned server certificate, [`ServerPin`];
//! exec and events run over the same TLS as `wss`). [`Client::from_remote`] opens a remote of
//! the `lxc` CLI's own configuration by name ([`LxcConfig`]); [`Client::certificates`]
//! manages the trust store and trust tokens. Everything above the transport is
//! connector-agnostic.
//!
//! On the unix socket the pool opens a connection only when it has a request to write: LXD
//! 5.0.2 stops accepting every other client, LXC's own hooks included, while one unix
//! connection is open and silent, which made stops time out after 30 s with pooling clients.
//!
//! ```no_run
//! # async fn demo() -> lxd_client::Result<()> {
//! let client = lxd_client::Client::from_remote("lab").await?; // as `lxc list lab:`
//! let names = client.instances().names().await?;
//! # Ok(())
//! # }
//! ```

mod body;
mod certificates;
mod client;
mod collection;
mod error;
mod events;
mod exec;
mod files;
mod images;
mod instances;
pub mod models;
mod operations;
mod remotes;
mod request;
mod tls;
mod transport;

pub use body::{ByteStream, UploadBody};
pub use certificates::{Certificates, TrustToken};
pub use client::{Client, ETag, candidate_sockets};
pub use collection::{Collection, Networks, Profiles, Resource, StoragePools};
pub use error::{BoxError, Error, Result};
pub use events::{EventStream, Events};
pub use exec::{ExecBuilder, ExecOutput, ExecProcess, ExecStdin, ExitStatus, OutputStream};
pub use files::{FileContent, FileInfo, FileOptions, FileType, Files, WriteMode};
pub use images::{ImageExport, Images, ImportOptions};
pub use instances::{CreateBuilder, Instances, Snapshots};
pub use operations::{OperationHandle, Operations};
pub use remotes::{LxcConfig, Remote, lxc_config_dir};
pub use tls::{
    ClientIdentity, DEFAULT_PORT, Fingerprint, HttpsEndpoint, ServerPin, TlsCertificate,
    fetch_server_certificate,
};
pub use transport::Endpoint;

/// Re-exported so [`Client::query`] can be called without a direct `http` dependency.
pub use http::Method;

#[cfg(test)]
mod tests {
    use super::*;

    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}

    #[test]
    fn handles_can_cross_tasks() {
        send_sync::<Client>();
        send_sync::<OperationHandle>();
        send_sync::<Instances>();
        send_sync::<Files>();
        send_sync::<Error>();
        send::<ExecProcess>();
        send::<ExecStdin>();
        send::<OutputStream>();
        send::<EventStream>();
        send::<ByteStream>();
        send::<UploadBody>();
    }
}
