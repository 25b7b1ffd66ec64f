use serde::{Deserialize, Serialize};

use super::{Config, Devices};

/// A profile (`GET /1.0/profiles/{name}`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Profile {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Configuration.
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub config: Config,
    /// Devices.
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub devices: Devices,
    /// URLs of instances and other objects using it.
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub used_by: Vec<String>,
}

/// `POST /1.0/profiles` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ProfilePost {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Configuration.
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub config: Config,
    /// Devices.
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub devices: Devices,
}
