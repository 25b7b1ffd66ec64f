use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{Config, Devices, StatusCode};

/// Container or virtual machine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum InstanceType {
    /// A system container (the default).
    #[default]
    #[serde(rename = "container")]
    Container,
    /// A virtual machine.
    #[serde(rename = "virtual-machine")]
    VirtualMachine,
    /// A type this client does not know.
    #[serde(other)]
    Other,
}

/// An instance (`GET /1.0/instances/{name}`, or an element of `?recursion=1|2`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Instance {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// `Running`, `Stopped`, `Frozen`, ...
    pub status: String,
    /// Status code (103 running, 102 stopped, 110 frozen).
    pub status_code: StatusCode,
    /// Container or VM.
    #[serde(rename = "type")]
    pub instance_type: InstanceType,
    /// Architecture name.
    pub architecture: String,
    /// Local configuration.
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub config: Config,
    /// Local devices.
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub devices: Devices,
    /// Configuration with profiles applied.
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub expanded_config: Config,
    /// Devices with profiles applied.
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub expanded_devices: Devices,
    /// Whether the instance is deleted when it stops.
    pub ephemeral: bool,
    /// Whether it has stateful snapshots.
    pub stateful: bool,
    /// Applied profiles, in order.
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub profiles: Vec<String>,
    /// Creation time.
    pub created_at: String,
    /// Last start time.
    pub last_used_at: String,
    /// Cluster member.
    pub location: String,
    /// Project (newer servers).
    pub project: Option<String>,
    /// Runtime state (only with `recursion=2`).
    pub state: Option<InstanceState>,
    /// Snapshots (only with `recursion=2`).
    pub snapshots: Option<Vec<Snapshot>>,
}

impl Instance {
    /// True when the instance runs (status code 103).
    pub fn is_running(&self) -> bool {
        self.status_code == StatusCode::RUNNING
    }

    /// The writable part of this instance, to modify and send with
    /// [`crate::Instances::update`].
    pub fn to_put(&self) -> InstancePut {
        InstancePut {
            architecture: Some(self.architecture.clone()),
            config: self.config.clone(),
            devices: self.devices.clone(),
            ephemeral: self.ephemeral,
            profiles: self.profiles.clone(),
            stateful: self.stateful,
            description: self.description.clone(),
            restore: None,
        }
    }
}

/// `PUT /1.0/instances/{name}` (replace) and `PATCH` (merge) body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct InstancePut {
    /// Architecture.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// Configuration.
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub config: Config,
    /// Devices.
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub devices: Devices,
    /// Ephemeral flag.
    pub ephemeral: bool,
    /// Profiles.
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub profiles: Vec<String>,
    /// Stateful flag.
    pub stateful: bool,
    /// Description.
    pub description: String,
    /// Snapshot to restore (restore goes through this body).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore: Option<String>,
}

/// Where a new instance comes from.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct InstanceSource {
    /// `image`, `none`, `copy`, `migration`.
    #[serde(rename = "type")]
    pub source_type: String,
    /// Local image alias.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// Image fingerprint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Remote server URL (for `mode: pull` from a simplestreams or LXD remote).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// `simplestreams` or `lxd`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// `pull` for remote images.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
}

/// `POST /1.0/instances` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct InstancePost {
    /// Name.
    pub name: String,
    /// Container or VM.
    #[serde(rename = "type")]
    pub instance_type: InstanceType,
    /// Source.
    pub source: InstanceSource,
    /// Profiles; `None` lets the server apply `default`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profiles: Option<Vec<String>>,
    /// Configuration.
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub config: Config,
    /// Devices.
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub devices: Devices,
    /// Ephemeral flag.
    pub ephemeral: bool,
    /// Description.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Instance size (`c2-m4` style, VMs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_type_name: Option<String>,
    /// Start after creation (`lxc launch`; extension `instance_create_start`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub start: bool,
}

/// `PUT /1.0/instances/{name}/state` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct InstanceStatePut {
    /// `start`, `stop`, `restart`, `freeze`, `unfreeze`.
    pub action: String,
    /// Seconds to wait for a clean stop before giving up (`-1` for the server default).
    pub timeout: i64,
    /// Kill instead of a clean shutdown.
    pub force: bool,
    /// Save or restore the runtime state (CRIU).
    pub stateful: bool,
}

/// Runtime state (`GET /1.0/instances/{name}/state`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct InstanceState {
    /// `Running`, `Stopped`, ...
    pub status: String,
    /// Status code.
    pub status_code: StatusCode,
    /// PID of the init process on the host (0 when stopped).
    pub pid: i64,
    /// Number of processes.
    pub processes: i64,
    /// CPU usage.
    pub cpu: Option<ProcessesCpu>,
    /// Memory usage.
    pub memory: Option<MemoryState>,
    /// Disk usage by device (raw JSON; shape varies by driver).
    pub disk: Option<serde_json::Value>,
    /// Network interfaces by name.
    pub network: Option<HashMap<String, NetworkState>>,
}

impl InstanceState {
    /// True when the instance runs (status code 103).
    pub fn is_running(&self) -> bool {
        self.status_code == StatusCode::RUNNING
    }
}

/// CPU usage of an instance.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ProcessesCpu {
    /// CPU time used in nanoseconds.
    pub usage: i64,
}

/// Memory usage of an instance, in bytes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct MemoryState {
    /// Current usage.
    pub usage: i64,
    /// Peak usage.
    pub usage_peak: i64,
    /// Swap usage.
    pub swap_usage: i64,
    /// Peak swap usage.
    pub swap_usage_peak: i64,
}

/// One network interface of an instance.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct NetworkState {
    /// Addresses (raw JSON objects with `family`, `address`, `netmask`, `scope`).
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub addresses: Vec<serde_json::Value>,
    /// Hardware address.
    pub hwaddr: String,
    /// Host-side interface name.
    pub host_name: String,
    /// MTU.
    pub mtu: i64,
    /// `up` or `down`.
    pub state: String,
    /// `broadcast`, `loopback`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// Counters (bytes and packets).
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub counters: HashMap<String, i64>,
}

/// An instance snapshot.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Snapshot {
    /// Snapshot name (without the instance prefix).
    pub name: String,
    /// Creation time.
    pub created_at: String,
    /// Expiry time.
    pub expires_at: String,
    /// Whether it includes runtime state.
    pub stateful: bool,
    /// Architecture.
    pub architecture: String,
    /// Configuration at snapshot time.
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub config: Config,
    /// Devices at snapshot time.
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub devices: Devices,
    /// Profiles at snapshot time.
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub profiles: Vec<String>,
    /// Size in bytes (`-1` when unknown).
    pub size: i64,
}

/// `POST /1.0/instances/{name}/snapshots` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct SnapshotPost {
    /// Snapshot name.
    pub name: String,
    /// Include runtime state.
    pub stateful: bool,
}
