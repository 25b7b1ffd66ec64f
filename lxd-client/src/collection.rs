//! One handle for the top-level collections whose API is plain CRUD: profiles, networks and
//! storage pools (and any other a caller describes with [`Resource`]), as kube-rs's `Api<K>`.
//!
//! Each is `GET /1.0/<kind>` for names, `?recursion=1` for objects, `GET/PUT/DELETE
//! /1.0/<kind>/<name>` and `POST /1.0/<kind>`, all synchronous. Anything particular to one
//! kind is an `impl Collection<ThatKind>` block beside its model (storage volumes below).

use std::marker::PhantomData;

use http::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::client::Client;
use crate::error::Result;
use crate::models::{
    Network, NetworkPost, NetworkPut, Profile, ProfilePost, StoragePool, StoragePoolPost,
    StoragePoolPut, StorageVolume, name_from_url,
};
use crate::request::{RequestSpec, seg};

/// An LXD object that lives in a plain CRUD collection below `/1.0`.
///
/// Implement it to get a typed [`Collection`] for a collection this crate has no handle for:
///
/// ```no_run
/// # async fn demo(client: lxd_client::Client) -> lxd_client::Result<()> {
/// #[derive(serde::Deserialize)]
/// struct Project { name: String }
/// impl lxd_client::Resource for Project {
///     const PATH: &'static str = "/1.0/projects";
///     type Post = serde_json::Value;
///     type Put = serde_json::Value;
/// }
/// let projects = lxd_client::Collection::<Project>::new(client);
/// for p in projects.list().await? {
///     println!("{}", p.name);
/// }
/// # Ok(())
/// # }
/// ```
pub trait Resource: DeserializeOwned {
    /// The collection's path, e.g. `/1.0/profiles`.
    const PATH: &'static str;
    /// The body of `POST PATH` (create).
    type Post: Serialize;
    /// The body of `PUT PATH/{name}` (replace).
    type Put: Serialize;
}

impl Resource for Profile {
    const PATH: &'static str = "/1.0/profiles";
    type Post = ProfilePost;
    type Put = ProfilePost;
}

impl Resource for Network {
    const PATH: &'static str = "/1.0/networks";
    type Post = NetworkPost;
    type Put = NetworkPut;
}

impl Resource for StoragePool {
    const PATH: &'static str = "/1.0/storage-pools";
    type Post = StoragePoolPost;
    type Put = StoragePoolPut;
}

/// `/1.0/profiles`.
///
/// ```no_run
/// # async fn demo(client: lxd_client::Client) -> lxd_client::Result<()> {
/// let default = client.profiles().get("default").await?;
/// println!("{:?}", default.devices.get("root"));
/// # Ok(())
/// # }
/// ```
pub type Profiles = Collection<Profile>;

/// `/1.0/networks`.
///
/// ```no_run
/// # async fn demo(client: lxd_client::Client) -> lxd_client::Result<()> {
/// for net in client.networks().list().await? {
///     println!("{} {} managed={}", net.name, net.network_type, net.managed);
/// }
/// # Ok(())
/// # }
/// ```
pub type Networks = Collection<Network>;

/// `/1.0/storage-pools`, with the volumes of each pool.
///
/// ```no_run
/// # async fn demo(client: lxd_client::Client) -> lxd_client::Result<()> {
/// let pool = client.storage_pools().get("default").await?;
/// let volumes = client.storage_pools().volumes("default").await?;
/// println!("{} ({}) holds {} volumes", pool.name, pool.driver, volumes.len());
/// # Ok(())
/// # }
/// ```
pub type StoragePools = Collection<StoragePool>;

/// A typed handle on the collection of `K`, scoped to the client's project.
pub struct Collection<K> {
    client: Client,
    kind: PhantomData<fn() -> K>,
}

impl<K> Clone for Collection<K> {
    fn clone(&self) -> Self {
        Collection {
            client: self.client.clone(),
            kind: PhantomData,
        }
    }
}

impl<K: Resource> std::fmt::Debug for Collection<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collection")
            .field("path", &K::PATH)
            .field("client", &self.client)
            .finish()
    }
}

/// The path of one object of `K` (pure; unit-tested).
fn item_path<K: Resource>(name: &str) -> String {
    format!("{}/{}", K::PATH, seg(name))
}

impl<K: Resource> Collection<K> {
    /// The collection of `K` on `client` (the typed shorthands are [`Client::profiles`],
    /// [`Client::networks`] and [`Client::storage_pools`]).
    pub fn new(client: Client) -> Self {
        Collection {
            client,
            kind: PhantomData,
        }
    }

    /// The names of all objects.
    ///
    /// # Errors
    /// API or decode errors.
    pub async fn names(&self) -> Result<Vec<String>> {
        let urls: Vec<String> = self.client.sync(RequestSpec::get(K::PATH)).await?;
        Ok(urls.iter().map(|u| name_from_url(u)).collect())
    }

    /// All objects (`recursion=1`).
    ///
    /// # Errors
    /// API or decode errors.
    pub async fn list(&self) -> Result<Vec<K>> {
        self.client
            .sync(RequestSpec::get(K::PATH).query("recursion", "1"))
            .await
    }

    /// One object.
    ///
    /// # Errors
    /// [`crate::Error::is_not_found`]; API errors.
    pub async fn get(&self, name: &str) -> Result<K> {
        self.client
            .sync(RequestSpec::get(item_path::<K>(name)))
            .await
    }

    /// Creates an object.
    ///
    /// # Errors
    /// [`crate::Error::is_already_exists`] when the name is taken; API errors.
    pub async fn create(&self, body: &K::Post) -> Result<()> {
        self.client
            .send_collect(RequestSpec::new(Method::POST, K::PATH).json(body))
            .await?;
        Ok(())
    }

    /// Replaces an object's writable fields (`PUT`).
    ///
    /// # Errors
    /// [`crate::Error::is_not_found`]; API errors.
    pub async fn update(&self, name: &str, body: &K::Put) -> Result<()> {
        self.client
            .send_collect(RequestSpec::new(Method::PUT, item_path::<K>(name)).json(body))
            .await?;
        Ok(())
    }

    /// Deletes an object (LXD refuses while it is in use).
    ///
    /// # Errors
    /// [`crate::Error::is_not_found`]; API errors.
    pub async fn delete(&self, name: &str) -> Result<()> {
        self.client
            .send_collect(RequestSpec::new(Method::DELETE, item_path::<K>(name)))
            .await?;
        Ok(())
    }
}

impl Collection<StoragePool> {
    /// All volumes of a pool (instances, snapshots, images, custom).
    ///
    /// # Errors
    /// API or decode errors.
    pub async fn volumes(&self, pool: &str) -> Result<Vec<StorageVolume>> {
        self.client
            .sync(
                RequestSpec::get(format!("{}/volumes", item_path::<StoragePool>(pool)))
                    .query("recursion", "1"),
            )
            .await
    }

    /// One volume, by type (`container`, `virtual-machine`, `image`, `custom`) and name.
    ///
    /// # Errors
    /// [`crate::Error::is_not_found`]; API errors.
    pub async fn volume(&self, pool: &str, volume_type: &str, name: &str) -> Result<StorageVolume> {
        self.client
            .sync(RequestSpec::get(format!(
                "{}/volumes/{}/{}",
                item_path::<StoragePool>(pool),
                seg(volume_type),
                seg(name)
            )))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_paths_escape_names() {
        assert_eq!(item_path::<Profile>("a b"), "/1.0/profiles/a%20b");
        assert_eq!(item_path::<Network>("br0"), "/1.0/networks/br0");
        assert_eq!(
            item_path::<StoragePool>("default"),
            "/1.0/storage-pools/default"
        );
    }
}
