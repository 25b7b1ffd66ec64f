use serde::{Deserialize, Serialize};

use super::Config;

/// A network (`GET /1.0/networks/{name}`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Network {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// `bridge`, `macvlan`, `loopback`, `physical`, ...
    #[serde(rename = "type")]
    pub network_type: String,
    /// Whether LXD manages it.
    pub managed: bool,
    /// `Created`, `Pending`, ... (managed networks).
    pub status: String,
    /// Configuration.
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub config: Config,
    /// URLs of objects using it (can be `null`).
    pub used_by: Option<Vec<String>>,
    /// Cluster members it exists on (can be `null`).
    pub locations: Option<Vec<String>>,
}

/// `POST /1.0/networks` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct NetworkPost {
    /// Name (at most 15 characters: it becomes an interface name).
    pub name: String,
    /// Description.
    pub description: String,
    /// Type (`bridge`, `macvlan`, ...); empty for the server default (`bridge`).
    #[serde(rename = "type", skip_serializing_if = "String::is_empty")]
    pub network_type: String,
    /// Configuration (`ipv4.address`, `ipv6.address`, `parent`, ...).
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub config: Config,
}

/// `PUT /1.0/networks/{name}` body: the writable fields.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct NetworkPut {
    /// Description.
    pub description: String,
    /// Configuration.
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub config: Config,
}
