//! Profiles.

use http::Method;

use crate::client::Client;
use crate::error::Result;
use crate::models::{Profile, ProfilePost, name_from_url};
use crate::request::{RequestSpec, seg};

/// `/1.0/profiles`.
///
/// ```no_run
/// # async fn demo(client: lxd_client::Client) -> lxd_client::Result<()> {
/// let default = client.profiles().get("default").await?;
/// println!("{:?}", default.devices.get("root"));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Profiles {
    client: Client,
}

fn path(name: &str) -> String {
    format!("/1.0/profiles/{}", seg(name))
}

impl Profiles {
    pub(crate) fn new(client: Client) -> Self {
        Profiles { client }
    }

    /// Profile names.
    ///
    /// # Errors
    /// API or decode errors.
    pub async fn names(&self) -> Result<Vec<String>> {
        let urls: Vec<String> = self.client.sync(RequestSpec::get("/1.0/profiles")).await?;
        Ok(urls.iter().map(|u| name_from_url(u)).collect())
    }

    /// All profiles.
    ///
    /// # Errors
    /// API or decode errors.
    pub async fn list(&self) -> Result<Vec<Profile>> {
        self.client
            .sync(RequestSpec::get("/1.0/profiles").query("recursion", "1"))
            .await
    }

    /// One profile.
    ///
    /// # Errors
    /// [`crate::Error::is_not_found`]; API errors.
    pub async fn get(&self, name: &str) -> Result<Profile> {
        self.client.sync(RequestSpec::get(path(name))).await
    }

    /// Creates a profile.
    ///
    /// # Errors
    /// API errors (409 when it exists).
    pub async fn create(&self, profile: &ProfilePost) -> Result<()> {
        self.client
            .send_collect(RequestSpec::new(Method::POST, "/1.0/profiles").json(profile))
            .await?;
        Ok(())
    }

    /// Replaces a profile's config, devices and description.
    ///
    /// # Errors
    /// API errors.
    pub async fn update(&self, name: &str, profile: &ProfilePost) -> Result<()> {
        self.client
            .send_collect(RequestSpec::new(Method::PUT, path(name)).json(profile))
            .await?;
        Ok(())
    }

    /// Deletes a profile (it must be unused).
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
