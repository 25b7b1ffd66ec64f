use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// An LXD status code (`status_code` in operations and instances).
///
/// 100-199 mean "still going", 200 success, 400 failure, 401 cancelled. A code this crate
/// has no constant for is kept as it came; match on the constants:
///
/// ```
/// use lxd_client::models::StatusCode;
/// let described = |code: StatusCode| match code {
///     StatusCode::RUNNING => "running",
///     StatusCode::STOPPED => "stopped",
///     other if other.is_final() => "ended",
///     _ => "busy",
/// };
/// assert_eq!(described(StatusCode(103)), "running");
/// assert_eq!(described(StatusCode(499)), "ended");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StatusCode(pub u16);

impl StatusCode {
    /// 100: Operation created.
    pub const CREATED: StatusCode = StatusCode(100);
    /// 101: Started.
    pub const STARTED: StatusCode = StatusCode(101);
    /// 102: Stopped.
    pub const STOPPED: StatusCode = StatusCode(102);
    /// 103: Running.
    pub const RUNNING: StatusCode = StatusCode(103);
    /// 104: Cancelling.
    pub const CANCELLING: StatusCode = StatusCode(104);
    /// 105: Pending.
    pub const PENDING: StatusCode = StatusCode(105);
    /// 106: Starting.
    pub const STARTING: StatusCode = StatusCode(106);
    /// 107: Stopping.
    pub const STOPPING: StatusCode = StatusCode(107);
    /// 108: Aborting.
    pub const ABORTING: StatusCode = StatusCode(108);
    /// 109: Freezing.
    pub const FREEZING: StatusCode = StatusCode(109);
    /// 110: Frozen.
    pub const FROZEN: StatusCode = StatusCode(110);
    /// 111: Thawed.
    pub const THAWED: StatusCode = StatusCode(111);
    /// 112: Error.
    pub const ERROR: StatusCode = StatusCode(112);
    /// 113: Ready.
    pub const READY: StatusCode = StatusCode(113);
    /// 200: Success.
    pub const SUCCESS: StatusCode = StatusCode(200);
    /// 400: Failure.
    pub const FAILURE: StatusCode = StatusCode(400);
    /// 401: Cancelled.
    pub const CANCELLED: StatusCode = StatusCode(401);

    /// True once an operation has ended (success, failure or cancelled): code >= 200.
    pub fn is_final(self) -> bool {
        self.0 >= 200
    }

    /// True for 200.
    pub fn is_success(self) -> bool {
        self.0 == 200
    }
}

impl std::fmt::Display for StatusCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self.0 {
            100 => "Operation created",
            101 => "Started",
            102 => "Stopped",
            103 => "Running",
            104 => "Cancelling",
            105 => "Pending",
            106 => "Starting",
            107 => "Stopping",
            108 => "Aborting",
            109 => "Freezing",
            110 => "Frozen",
            111 => "Thawed",
            112 => "Error",
            113 => "Ready",
            200 => "Success",
            400 => "Failure",
            401 => "Cancelled",
            _ => "Unknown",
        };
        write!(f, "{} ({name})", self.0)
    }
}

/// A background operation (`/1.0/operations/{id}`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Operation {
    /// UUID.
    pub id: String,
    /// `task`, `websocket` or `token`.
    pub class: String,
    /// What it does, e.g. `Starting instance`.
    pub description: String,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Last update time (RFC 3339).
    pub updated_at: String,
    /// Status text; use [`Operation::status_code`] to decide.
    pub status: String,
    /// Status code.
    pub status_code: StatusCode,
    /// Affected resources by kind (`instances`, `containers`, `images`) as URLs.
    pub resources: Option<HashMap<String, Vec<String>>>,
    /// Operation-specific metadata (exec: `fds`, `return`, `output`; image upload:
    /// `fingerprint`, `size`). Can be `null`.
    pub metadata: Option<serde_json::Value>,
    /// Whether `DELETE` can cancel it.
    pub may_cancel: bool,
    /// The error text when it failed.
    pub err: String,
    /// Cluster member it runs on.
    pub location: String,
}

impl Operation {
    /// A string field of `metadata`, e.g. `fingerprint` after an image upload.
    pub fn metadata_str(&self, key: &str) -> Option<&str> {
        self.metadata.as_ref()?.get(key)?.as_str()
    }
}
