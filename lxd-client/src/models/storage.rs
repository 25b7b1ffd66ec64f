use serde::{Deserialize, Serialize};

use super::Config;

/// A storage pool (`GET /1.0/storage-pools/{name}`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct StoragePool {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Driver (`dir`, `zfs`, `btrfs`, `lvm`, `ceph`).
    pub driver: String,
    /// `Created`, `Pending`, ...
    pub status: String,
    /// Configuration (`source`, `size`, ...).
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub config: Config,
    /// URLs of objects using it.
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub used_by: Vec<String>,
    /// Cluster members.
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub locations: Vec<String>,
}

/// A storage volume (`GET /1.0/storage-pools/{pool}/volumes/{type}/{name}`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct StorageVolume {
    /// Name (`instance` or `instance/snapshot` for instance volumes).
    pub name: String,
    /// Description.
    pub description: String,
    /// `container`, `virtual-machine`, `image` or `custom`.
    #[serde(rename = "type")]
    pub volume_type: String,
    /// `filesystem` or `block`.
    pub content_type: String,
    /// Configuration.
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub config: Config,
    /// URLs of objects using it.
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub used_by: Vec<String>,
    /// Cluster member.
    pub location: String,
    /// Project.
    pub project: Option<String>,
    /// Creation time.
    pub created_at: String,
}

/// `POST /1.0/storage-pools` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct StoragePoolPost {
    /// Name.
    pub name: String,
    /// Driver (`dir`, `zfs`, `btrfs`, `lvm`, `ceph`).
    pub driver: String,
    /// Description.
    pub description: String,
    /// Configuration (`source`, `size`, ...).
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub config: Config,
}

/// `PUT /1.0/storage-pools/{name}` body: the writable fields.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct StoragePoolPut {
    /// Description.
    pub description: String,
    /// Configuration.
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub config: Config,
}
