//! Typed models of LXD API objects.
//!
//! Every model tolerates unknown fields (servers add fields with each API extension) and
//! defaults fields that older servers lack, so a response from LXD 4.0 or 6.x decodes as well as
//! one from 5.0. Request bodies (`*Post`, `*Put`) implement [`Default`]; fill the fields you
//! need.

mod certificate;
mod event;
mod image;
mod instance;
mod network;
mod operation;
mod profile;
mod server;
mod storage;

pub use certificate::{Certificate, CertificatesPost};
pub use event::{Event, EventType};
pub use image::{Image, ImageAlias, ImageAliasPost, ImageAliasTarget, ImagePut, ImageSource};
pub use instance::{
    Instance, InstancePost, InstancePut, InstanceSource, InstanceState, InstanceStatePut,
    InstanceType, MemoryState, NetworkState, ProcessesCpu, Snapshot, SnapshotPost,
};
pub use network::{Network, NetworkPost, NetworkPut};
pub use operation::{Operation, StatusCode};
pub use profile::{Profile, ProfilePost};
pub use server::{Server, ServerEnvironment};
pub use storage::{StoragePool, StoragePoolPost, StoragePoolPut, StorageVolume};

/// Decodes `null` as the type's default: LXD (Go) sends an empty list or map as `null`
/// (`used_by: null` on a pool nothing uses), which serde's `default` alone does not accept.
pub(crate) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + serde::Deserialize<'de>,
{
    use serde::Deserialize;
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Devices as LXD models them: device name to its key/value configuration.
pub type Devices = std::collections::HashMap<String, std::collections::HashMap<String, String>>;

/// Configuration key/value pairs (`limits.memory`, `security.nesting`, `user.*`, ...).
pub type Config = std::collections::HashMap<String, String>;

/// The last path segment of an LXD URL, e.g. `c1` from `/1.0/instances/c1?project=p`,
/// percent-decoded.
pub fn name_from_url(url: &str) -> String {
    let path = url.split('?').next().unwrap_or(url);
    let last = path.rsplit('/').next().unwrap_or(path);
    percent_encoding::percent_decode_str(last)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_urls() {
        assert_eq!(name_from_url("/1.0/instances/c1"), "c1");
        assert_eq!(name_from_url("/1.0/instances/c1?project=p"), "c1");
        assert_eq!(
            name_from_url("/1.0/images/aliases/kitchen%2Fbusybox"),
            "kitchen/busybox"
        );
    }
}
