use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// An image (`GET /1.0/images/{fingerprint}`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Image {
    /// SHA-256 fingerprint.
    pub fingerprint: String,
    /// Aliases pointing at it.
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub aliases: Vec<ImageAlias>,
    /// Architecture.
    pub architecture: String,
    /// Properties (`os`, `release`, `description`, ...).
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub properties: HashMap<String, String>,
    /// Whether it is public.
    pub public: bool,
    /// Whether it auto-updates.
    pub auto_update: bool,
    /// Whether it was cached from a remote.
    pub cached: bool,
    /// Original file name.
    pub filename: String,
    /// Size in bytes.
    pub size: i64,
    /// `container` or `virtual-machine`.
    #[serde(rename = "type")]
    pub image_type: String,
    /// Profiles applied to instances made from it.
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub profiles: Vec<String>,
    /// Creation time.
    pub created_at: String,
    /// Expiry time.
    pub expires_at: String,
    /// Last use time.
    pub last_used_at: String,
    /// Upload time.
    pub uploaded_at: String,
    /// Where it was copied from.
    pub update_source: Option<ImageSource>,
}

/// The remote an image was copied from.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ImageSource {
    /// Alias on the remote.
    pub alias: String,
    /// Remote certificate.
    pub certificate: String,
    /// `simplestreams` or `lxd`.
    pub protocol: String,
    /// Remote URL.
    pub server: String,
}

/// An alias as embedded in an [`Image`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ImageAlias {
    /// Alias name.
    pub name: String,
    /// Description.
    pub description: String,
}

/// An alias object (`GET /1.0/images/aliases/{name}`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ImageAliasTarget {
    /// Alias name.
    pub name: String,
    /// Target fingerprint.
    pub target: String,
    /// Description.
    pub description: String,
    /// `container` or `virtual-machine`.
    #[serde(rename = "type")]
    pub image_type: String,
}

/// `POST /1.0/images/aliases` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ImageAliasPost {
    /// Alias name.
    pub name: String,
    /// Target fingerprint.
    pub target: String,
    /// Description.
    pub description: String,
}

/// `PUT /1.0/images/{fingerprint}` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ImagePut {
    /// Auto-update flag.
    pub auto_update: bool,
    /// Properties.
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub properties: HashMap<String, String>,
    /// Public flag.
    pub public: bool,
    /// Profiles.
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub profiles: Vec<String>,
}
