//! Typed models of LXD API objects. Unknown fields are ignored; fields older servers lack are
//! `Option`.

use serde::{Deserialize, Serialize};

/// `GET /1.0`: the server and its environment.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Server {
    /// API extensions the server supports.
    #[serde(default)]
    pub api_extensions: Vec<String>,
    /// API version, such as `1.0`.
    pub api_version: String,
    /// Whether this client is trusted.
    pub auth: String,
    /// Environment details.
    pub environment: ServerEnvironment,
}

/// The `environment` part of [`Server`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ServerEnvironment {
    /// The server's version, such as `5.0.2`.
    pub server_version: String,
    /// The kernel version of the host.
    #[serde(default)]
    pub kernel_version: Option<String>,
    /// Storage driver names.
    #[serde(default)]
    pub storage: Option<String>,
}
