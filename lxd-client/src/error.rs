//! The one error type of this crate.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::models::{Operation, StatusCode};

/// A boxed error from a lower layer (hyper, the operating system, TLS).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `a, b or c`, for the socket paths searched.
fn paths(searched: &[PathBuf]) -> String {
    let all: Vec<String> = searched.iter().map(|p| p.display().to_string()).collect();
    match all.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => "(no path)".into(),
    }
}

/// An error and its causes, `: `-separated, each said once (hyper's `client error (Connect)`
/// alone hides that a connect timed out or was refused).
fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// Everything that can go wrong talking to LXD.
///
/// Use the predicates rather than matching variants when you only need to tell the common
/// cases apart; they look through the wrappers ([`Error::File`], [`Error::OperationWait`]):
///
/// | predicate | true when |
/// |---|---|
/// | [`Error::is_not_found`] | the resource does not exist (404) |
/// | [`Error::is_already_exists`] | the name is taken, however the server said so |
/// | [`Error::is_conflict`] | 409, or the name is taken |
/// | [`Error::is_precondition_failed`] | an `If-Match` ETag was stale (412) |
/// | [`Error::is_forbidden`] | the client is not trusted or not allowed (403) |
/// | [`Error::is_operation_failure`] | a background operation failed or was cancelled |
/// | [`Error::is_cancelled`] | a background operation was cancelled |
/// | [`Error::is_timeout`] | a wait ran out of time |
/// | [`Error::is_daemon_unreachable`] | no socket, nothing listening |
/// | [`Error::is_certificate_mismatch`] | an HTTPS server presented another certificate |
///
/// [`Error::status`], [`Error::message`] and [`Error::operation`] give the details.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No LXD socket was found at any of the known locations.
    #[error(
        "the LXD daemon is not running: no unix socket at {}; start it (`scripts/setup-host` does), or point LXD_DIR or LXD_SOCKET at a running daemon",
        paths(.searched)
    )]
    SocketNotFound {
        /// The paths that were tried, in order.
        searched: Vec<PathBuf>,
    },
    /// Connecting to the daemon failed (not running, nothing listening, no permission).
    #[error(
        "cannot connect to the LXD daemon at {endpoint}: {}; is the daemon running? (start it, e.g. with `scripts/setup-host`, or point LXD_DIR, LXD_SOCKET or the remote at a running one)",
        causes(.source.as_ref())
    )]
    Connect {
        /// The endpoint (socket path or URL).
        endpoint: String,
        /// What the operating system said.
        #[source]
        source: BoxError,
    },
    /// The HTTPS server presented a certificate other than the pinned one; nothing was sent.
    #[error(
        "refusing to talk to {endpoint}: it presented a certificate with fingerprint {found}, but {expected} is pinned; if the server's certificate was changed on purpose, fetch and confirm the new one (`lxc remote remove` and `lxc remote add`, or `fetch_server_certificate`)"
    )]
    CertificateMismatch {
        /// The endpoint URL.
        endpoint: String,
        /// The pinned SHA-256 fingerprint.
        expected: String,
        /// The fingerprint of the certificate the server presented.
        found: String,
    },
    /// A certificate or key could not be read, generated or used.
    #[error("{what}: {source}")]
    Certificate {
        /// What was being done, e.g. `cannot read a PEM certificate`.
        what: String,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
    /// The `lxc` client configuration (`config.yml`) is unusable or lacks what was asked for.
    #[error("lxc configuration {path}: {message}")]
    Config {
        /// The configuration file or directory.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
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
        source: BoxError,
    },
    /// LXD answered with an error envelope (or a non-success HTTP status).
    #[error("LXD error {status} on {method} {path}: {message}")]
    Api {
        /// HTTP status code (LXD's `error_code`).
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
    /// The response had a shape this client did not expect (an operation where a sync result
    /// was expected, a missing header, ...).
    #[error("unexpected LXD response to {method} {path}: {detail}")]
    UnexpectedResponse {
        /// Request method.
        method: String,
        /// Request path.
        path: String,
        /// What was wrong.
        detail: String,
    },
    /// A background operation ended in failure or was cancelled.
    #[error("LXD operation {id} ({description}) ended with {status_code}: {message}")]
    OperationFailed {
        /// Operation id.
        id: String,
        /// The operation's description, e.g. `Starting instance`.
        description: String,
        /// Final status code (400 failure, 401 cancelled).
        status_code: StatusCode,
        /// The server's `err` text.
        message: String,
        /// The final operation object, with its metadata.
        operation: Box<Operation>,
    },
    /// Waiting for something took longer than allowed.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was being waited for.
        what: String,
        /// The limit that passed.
        after: Duration,
    },
    /// Following an operation in the background failed; `source` says why.
    #[error("waiting for LXD operation {id} failed: {source}")]
    OperationWait {
        /// Operation id.
        id: String,
        /// The error the background waiter hit.
        #[source]
        source: Arc<Error>,
    },
    /// A websocket (exec stream, events) failed.
    #[error("websocket error on {what}: {source}")]
    Websocket {
        /// Which websocket.
        what: String,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
    /// A file operation inside an instance failed; names the file, `source` says why.
    #[error("{action} {path} in instance {instance}: {source}")]
    File {
        /// What was being done, e.g. `cannot pull`.
        action: String,
        /// The instance.
        instance: String,
        /// The path inside the instance.
        path: String,
        /// The underlying error (an API error such as 404 `Not Found`).
        #[source]
        source: Box<Error>,
    },
    /// Local file-system IO failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done, e.g. `cannot open`.
        what: String,
        /// The local path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// An argument was rejected before anything was sent.
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

impl Error {
    fn inner(&self) -> &Error {
        match self {
            Error::OperationWait { source, .. } => source.inner(),
            Error::File { source, .. } => source.inner(),
            other => other,
        }
    }

    /// The HTTP status LXD answered with, if this is an API error.
    pub fn status(&self) -> Option<u16> {
        match self.inner() {
            Error::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True when LXD said the resource does not exist (HTTP 404).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// True when an `If-Match` ETag was stale (HTTP 412).
    pub fn is_precondition_failed(&self) -> bool {
        self.status() == Some(412)
    }

    /// True when LXD reported a conflict: HTTP 409, or a name already taken however the
    /// server reported it (see [`Error::is_already_exists`]).
    pub fn is_conflict(&self) -> bool {
        self.status() == Some(409) || self.is_already_exists()
    }

    /// True when a create failed because the name is taken.
    ///
    /// Servers say so in different ways: HTTP 409; LXD 5.0.2 accepts an instance create and
    /// fails the operation with 400 `This "instances" entry already exists`, and answers a
    /// duplicate profile with HTTP 500 `... The profile already exists`. All of them count.
    pub fn is_already_exists(&self) -> bool {
        self.status() == Some(409)
            || matches!(self.inner(), Error::Api { message, .. } | Error::OperationFailed { message, .. }
                if message.contains("already exists"))
    }

    /// True when LXD refused the request because the client is not trusted or not allowed
    /// (HTTP 403, e.g. an HTTPS client whose certificate is not in the trust store).
    pub fn is_forbidden(&self) -> bool {
        self.status() == Some(403)
    }

    /// True when an HTTPS server presented a certificate other than the pinned one.
    pub fn is_certificate_mismatch(&self) -> bool {
        matches!(self.inner(), Error::CertificateMismatch { .. })
    }

    /// True when a background operation failed or was cancelled.
    pub fn is_operation_failure(&self) -> bool {
        matches!(self.inner(), Error::OperationFailed { .. })
    }

    /// True when a background operation was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self.inner(), Error::OperationFailed { status_code, .. } if *status_code == StatusCode::CANCELLED)
    }

    /// True when a wait timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self.inner(), Error::Timeout { .. })
    }

    /// True when the daemon could not be reached at all (no socket, nothing listening).
    pub fn is_daemon_unreachable(&self) -> bool {
        matches!(
            self.inner(),
            Error::Connect { .. } | Error::SocketNotFound { .. }
        )
    }

    /// The server's message: the error envelope's `error` or a failed operation's `err`.
    pub fn message(&self) -> Option<&str> {
        match self.inner() {
            Error::Api { message, .. } | Error::OperationFailed { message, .. } => Some(message),
            _ => None,
        }
    }

    /// The final operation object of a failed operation.
    pub fn operation(&self) -> Option<&Operation> {
        match self.inner() {
            Error::OperationFailed { operation, .. } => Some(operation),
            _ => None,
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, message: &str) -> Error {
        Error::Api {
            status,
            method: "POST".into(),
            path: "/1.0/profiles".into(),
            message: message.into(),
        }
    }

    fn failed_operation(err: &str) -> Error {
        let op: Operation = serde_json::from_value(serde_json::json!({
            "id": "x", "description": "Creating instance", "status": "Failure",
            "status_code": 400, "err": err,
        }))
        .unwrap();
        crate::operations::check_success(op).unwrap_err()
    }

    #[test]
    fn a_taken_name_is_recognised_however_the_server_says_it() {
        // 409 from servers that check before accepting the request.
        assert!(api(409, "Instance \"c1\" already exists").is_already_exists());
        // LXD 5.0.2: the create operation fails with 400 ...
        let in_operation = failed_operation(
            "Failed creating instance record: Add instance info to the database: This \"instances\" entry already exists",
        );
        assert!(in_operation.is_already_exists() && in_operation.is_conflict());
        assert_eq!(in_operation.status(), None);
        // ... and a duplicate profile is HTTP 500.
        let profile = api(
            500,
            "Error inserting \"default\" into database: The profile already exists",
        );
        assert!(profile.is_already_exists() && profile.is_conflict());
        // Other failures are not.
        assert!(!failed_operation("The instance is already running").is_already_exists());
        assert!(!api(404, "Not Found").is_conflict());
    }

    #[test]
    fn wrappers_keep_the_predicates_and_name_the_file() {
        let err = Error::File {
            action: "cannot pull".into(),
            instance: "c1".into(),
            path: "/etc/missing".into(),
            source: Box::new(api(404, "Not Found")),
        };
        assert!(err.is_not_found());
        assert_eq!(err.message(), Some("Not Found"));
        assert!(
            err.to_string()
                .starts_with("cannot pull /etc/missing in instance c1: LXD error 404"),
            "{err}"
        );
        let waited = Error::OperationWait {
            id: "x".into(),
            source: Arc::new(failed_operation("Cancelled")),
        };
        assert!(waited.is_operation_failure());
    }
}
