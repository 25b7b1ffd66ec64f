use serde::{Deserialize, Serialize};

use super::Config;

/// `GET /1.0`: the server and its environment.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Server {
    /// API extensions the server supports.
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub api_extensions: Vec<String>,
    /// API version, such as `1.0`.
    pub api_version: String,
    /// API status (`stable`).
    pub api_status: String,
    /// `trusted` or `untrusted`.
    pub auth: String,
    /// Authentication methods offered (`tls`, `candid`, ...).
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub auth_methods: Vec<String>,
    /// Server configuration.
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub config: Config,
    /// Environment details (present when trusted).
    pub environment: ServerEnvironment,
    /// Whether the server is public.
    pub public: bool,
}

impl Server {
    /// True when the server lists the API extension `name`.
    pub fn has_extension(&self, name: &str) -> bool {
        self.api_extensions.iter().any(|e| e == name)
    }
}

/// The `environment` part of [`Server`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ServerEnvironment {
    /// Network addresses the server listens on.
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub addresses: Vec<String>,
    /// Supported architectures.
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub architectures: Vec<String>,
    /// The server's certificate (PEM).
    pub certificate: Option<String>,
    /// The server certificate's SHA-256 fingerprint.
    pub certificate_fingerprint: Option<String>,
    /// Driver names (`lxc | qemu`).
    pub driver: Option<String>,
    /// Driver versions.
    pub driver_version: Option<String>,
    /// Kernel name (`Linux`).
    pub kernel: Option<String>,
    /// Kernel architecture.
    pub kernel_architecture: Option<String>,
    /// Kernel version.
    pub kernel_version: Option<String>,
    /// OS name.
    pub os_name: Option<String>,
    /// OS version.
    pub os_version: Option<String>,
    /// Project the request was made in.
    pub project: Option<String>,
    /// Server name (cluster member name).
    pub server_name: Option<String>,
    /// Whether the server is clustered.
    pub server_clustered: Option<bool>,
    /// The server's version, such as `5.0.2`.
    pub server_version: String,
    /// Storage driver names.
    pub storage: Option<String>,
    /// Storage driver versions.
    pub storage_version: Option<String>,
}
