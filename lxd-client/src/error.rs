//! The one error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong talking to LXD.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No LXD socket was found at any of the known locations.
    #[error(
        "no LXD unix socket found (looked at {searched:?}); start the daemon (`scripts/setup-host` does) or set LXD_SOCKET"
    )]
    SocketNotFound {
        /// The paths that were tried, in order.
        searched: Vec<PathBuf>,
    },
    /// Connecting to the socket failed (daemon not running, no permission, ...).
    #[error("cannot connect to LXD at {path}: {source}")]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP exchange failed below the LXD protocol.
    #[error("HTTP transport error on {method} {path}: {source}")]
    Transport {
        /// Request method.
        method: String,
        /// Request path.
        path: String,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// LXD answered with an error envelope.
    #[error("LXD error {status} on {method} {path}: {message}")]
    Api {
        /// HTTP status code.
        status: u16,
        /// Request method.
        method: String,
        /// Request path.
        path: String,
        /// LXD's error message.
        message: String,
    },
    /// A response could not be decoded into the expected type.
    #[error("cannot decode LXD response to {path} at `{field}`: {source}")]
    Decode {
        /// Request path.
        path: String,
        /// The JSON path of the field that failed.
        field: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    /// True when LXD said the resource does not exist (HTTP 404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Api { status: 404, .. })
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
