//! Storage pools and volumes.

use crate::client::Client;
use crate::error::Result;
use crate::models::{StoragePool, StorageVolume, name_from_url};
use crate::request::{RequestSpec, seg};

/// `/1.0/storage-pools`.
///
/// ```no_run
/// # async fn demo(client: lxd_client::Client) -> lxd_client::Result<()> {
/// let pool = client.storage_pools().get("default").await?;
/// let volumes = client.storage_pools().volumes("default").await?;
/// println!("{} ({}) holds {} volumes", pool.name, pool.driver, volumes.len());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct StoragePools {
    client: Client,
}

fn path(name: &str) -> String {
    format!("/1.0/storage-pools/{}", seg(name))
}

impl StoragePools {
    pub(crate) fn new(client: Client) -> Self {
        StoragePools { client }
    }

    /// Pool names.
    ///
    /// # Errors
    /// API or decode errors.
    pub async fn names(&self) -> Result<Vec<String>> {
        let urls: Vec<String> = self
            .client
            .sync(RequestSpec::get("/1.0/storage-pools"))
            .await?;
        Ok(urls.iter().map(|u| name_from_url(u)).collect())
    }

    /// All pools.
    ///
    /// # Errors
    /// API or decode errors.
    pub async fn list(&self) -> Result<Vec<StoragePool>> {
        self.client
            .sync(RequestSpec::get("/1.0/storage-pools").query("recursion", "1"))
            .await
    }

    /// One pool.
    ///
    /// # Errors
    /// [`crate::Error::is_not_found`]; API errors.
    pub async fn get(&self, name: &str) -> Result<StoragePool> {
        self.client.sync(RequestSpec::get(path(name))).await
    }

    /// All volumes of a pool (instances, snapshots, images, custom).
    ///
    /// # Errors
    /// API or decode errors.
    pub async fn volumes(&self, pool: &str) -> Result<Vec<StorageVolume>> {
        self.client
            .sync(RequestSpec::get(format!("{}/volumes", path(pool))).query("recursion", "1"))
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
                path(pool),
                seg(volume_type),
                seg(name)
            )))
            .await
    }
}
