//! Networks.

use http::Method;

use crate::client::Client;
use crate::error::Result;
use crate::models::{Network, NetworkPost, name_from_url};
use crate::request::{RequestSpec, seg};

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
#[derive(Debug, Clone)]
pub struct Networks {
    client: Client,
}

fn path(name: &str) -> String {
    format!("/1.0/networks/{}", seg(name))
}

impl Networks {
    pub(crate) fn new(client: Client) -> Self {
        Networks { client }
    }

    /// Network names.
    ///
    /// # Errors
    /// API or decode errors.
    pub async fn names(&self) -> Result<Vec<String>> {
        let urls: Vec<String> = self.client.sync(RequestSpec::get("/1.0/networks")).await?;
        Ok(urls.iter().map(|u| name_from_url(u)).collect())
    }

    /// All networks (managed and host interfaces).
    ///
    /// # Errors
    /// API or decode errors.
    pub async fn list(&self) -> Result<Vec<Network>> {
        self.client
            .sync(RequestSpec::get("/1.0/networks").query("recursion", "1"))
            .await
    }

    /// One network.
    ///
    /// # Errors
    /// [`crate::Error::is_not_found`]; API errors.
    pub async fn get(&self, name: &str) -> Result<Network> {
        self.client.sync(RequestSpec::get(path(name))).await
    }

    /// Creates a managed network.
    ///
    /// # Errors
    /// API errors.
    pub async fn create(&self, network: &NetworkPost) -> Result<()> {
        self.client
            .send_collect(RequestSpec::new(Method::POST, "/1.0/networks").json(network))
            .await?;
        Ok(())
    }

    /// Deletes a managed network.
    ///
    /// # Errors
    /// API errors.
    pub async fn delete(&self, name: &str) -> Result<()> {
        self.client
            .send_collect(RequestSpec::new(Method::DELETE, path(name)))
            .await?;
        Ok(())
    }
}
