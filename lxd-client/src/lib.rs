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
//! // Deleted when `c1` is dropped (an early `?` included), or now with `c1.delete()`.
//! let c1 = instances.create("c1").image_alias("kitchen/busybox").launch_guarded().await?;
//!
//! let out = instances.exec("c1", ["sh", "-c", "echo hi; exit 3"]).output().await?;
//! assert_eq!((out.stdout.as_slice(), out.status.code), (&b"hi\n"[..], 3));
//!
//! let files = instances.files("c1");
//! let greeting = format!("hello from {}\n", c1.name());
//! files.push("/root/hello", &greeting, FileOptions::default().mode(0o600)).await?;
//! let (info, data) = files.read("/root/hello").await?;
//!
//! // Failures are values you can tell apart.
//! match instances.start("c1").await?.wait().await {
//!     Err(e) if e.is_operation_failure() => {} // "The instance is already running"
//!     other => panic!("{other:?}"),
//! }
//! instances.snapshots("c1").create("configured").await?.wait().await?;
//! c1.delete().await?; // stops it (it runs) and deletes it
//! # Ok(())
//! # }
//! ```
//!
//! An [`OperationHandle`] must be used: a state change whose end nobody waits for races the
//! next call, so leaving out `.wait()` is a warning (an error under `deny(unused_must_use)`):
//!
//! ```compile_fail
//! #![deny(unused_must_use)]
//! async fn demo(instances: lxd_client::Instances) -> lxd_client::Result<()> {
//!     instances.start("c1").await?; // error: unused `OperationHandle` that must be used
//!     Ok(())
//! }
//! ```
//!
//! ```
//! #![deny(unused_must_use)]
//! async fn demo(instances: lxd_client::Instances) -> lxd_client::Result<()> {
//!     instances.start("c1").await?.wait().await?;
//!     Ok(())
//! }
//! ```
//!
//! # Layout
//!
//! - [`Client`] holds a pool of keep-alive connections to one daemon and the project; every
//!   constructor is in `client.rs`. It hands out typed handles: [`Client::instances`]
//!   ([`Instances`], with [`ExecBuilder`], [`Files`] and [`Snapshots`] below it),
//!   [`Client::images`], [`Client::operations`], [`Client::events`],
//!   [`Client::certificates`], and the plain CRUD collections [`Client::profiles`],
//!   [`Client::networks`], [`Client::storage_pools`] (one generic [`Collection`]).
//! - Requests are built as pure values (`request.rs`) and sent over a connection
//!   (`transport.rs`).
//! - Calls that start background work return an [`OperationHandle`] (`#[must_use]`); call
//!   [`OperationHandle::wait`] (at most [`OperationHandle::DEFAULT_TIMEOUT`]) or
//!   [`OperationHandle::wait_for`]. It follows the operation from the moment it is created,
//!   so LXD's 5-second clean-up of finished operations cannot lose the result, and a failed
//!   operation is always an error carrying the server's text. Options are builders that
//!   you `.await`: `instances.stop("c1").force()`, `snapshots.create("s0").stateful()`.
//! - Cleanup: [`Instances::delete_force`] (as `lxc delete --force`) and [`InstanceGuard`]
//!   (deletes the instance when dropped; its docs say how, as Rust has no async drop).
//! - One [`Error`] type with predicates: [`Error::is_not_found`],
//!   [`Error::is_already_exists`] (a taken name, whether the server says 409 or fails the
//!   operation), [`Error::is_conflict`], [`Error::is_precondition_failed`] (stale ETag),
//!   [`Error::is_forbidden`], [`Error::is_operation_failure`], [`Error::is_cancelled`],
//!   [`Error::is_timeout`], [`Error::is_daemon_unreachable`],
//!   [`Error::is_certificate_mismatch`]. Errors about files inside an instance name the file
//!   ([`Error::File`]).
//! - Uploads take what you have: `&str`, `&String`, `&[u8]`, `Vec<u8>`, `Bytes`, a `&Path`
//!   (streamed from disk), a `tokio::fs::File` or any stream ([`UploadBody`]).
//! - [`Client::events`] streams events, optionally about one instance; [`models::Event`]
//!   tells the instance and project it concerns.
//! - [`prelude`] brings `StreamExt` (for `.next()` on exec output and events) and the common
//!   types into scope without a `futures` dependency.
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
mod guard;
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
pub use guard::InstanceGuard;
pub use images::{ImageExport, Images, ImportOptions};
pub use instances::{CreateBuilder, Instances, SnapshotCreate, Snapshots, StateChange};
pub use operations::{OperationHandle, Operations};
pub use remotes::{LxcConfig, Remote, lxc_config_dir};
pub use tls::{
    ClientIdentity, DEFAULT_PORT, Fingerprint, HttpsEndpoint, ServerPin, TlsCertificate,
    fetch_server_certificate,
};
pub use transport::{Endpoint, Timeouts};

/// Re-exported so [`Client::query`] can be called without a direct `http` dependency.
pub use http::Method;

/// What a program using this crate usually needs, in one import:
/// `use lxd_client::prelude::*;`.
///
/// It brings [`futures::StreamExt`] and [`futures::TryStreamExt`] (so `.next()` works on
/// exec output, events and downloads without depending on `futures` yourself) and the
/// common types.
pub mod prelude {
    pub use crate::{Client, Error, FileOptions, InstanceGuard, OperationHandle, Result};
    pub use futures::{StreamExt, TryStreamExt};
}

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
