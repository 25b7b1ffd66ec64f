//! Image bundles: a bundle too large to travel inline (or `ecs: {bundle: image}`) is baked
//! into an image built `FROM` the platform image on the local Docker engine (bollard), pushed
//! to `ecs.registry`, and referenced by digest in the task definition.
//!
//! - **Naming (pure).** [`Registry::parse`] reads `host[:port][/namespace]`; the repository
//!   is `<namespace>/`[`REPOSITORY`] and the tag is a hash of the Dockerfile, the base image's
//!   ID and the bundle ([`BundleImage::new`]). The same content gives the same tag.
//! - **Publishing.** [`publish`] asks the registry (through the engine's distribution API)
//!   whether the tag exists: if so its digest is used as is (no build, no push, so an
//!   unchanged rerun registers no task definition either). Otherwise it builds with no
//!   network, pushes, reads the digest back from the registry, and removes its local build.
//! - **ECR.** A registry host `<account>.dkr.ecr.<region>.amazonaws.com` gets its repository
//!   created when missing and its credentials from `GetAuthorizationToken` ([`ecr`]). Any
//!   other registry (the Registry HTTP API V2) is used without credentials.

use std::collections::HashMap;

use base64::Engine;
use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::query_parameters::{BuildImageOptions, PushImageOptions, RemoveImageOptions};
use futures::StreamExt;
use kitchen_driver::transport::TarBuilder;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The repository, under the registry's namespace, that holds every bundle image.
pub const REPOSITORY: &str = "kitchen-ecs-bundles";
/// The label naming the project (its path) on every image ecs-runner builds.
pub const PROJECT_LABEL: &str = "kitchen.ecs.project";
/// The label carrying the bundle image's tag (its content hash).
pub const BUNDLE_LABEL: &str = "kitchen.ecs.bundle";

/// An ECR registry: its account and Region, read from its host name.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EcrRegistry {
    /// The 12-digit account ID.
    pub account: String,
    /// The Region.
    pub region: String,
}

/// Where bundle images go: the `ecs.registry` setting, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Registry {
    /// `host[:port]`.
    pub host: String,
    /// The path under the host (may be empty).
    pub namespace: String,
    /// Set for an ECR host.
    pub ecr: Option<EcrRegistry>,
}

impl Registry {
    /// Parses `host[:port][/namespace]` (`127.0.0.1:5055/team`,
    /// `123456789012.dkr.ecr.eu-west-1.amazonaws.com`).
    ///
    /// # Errors
    /// [`Error::Settings`] for a URL scheme, an empty value, or a first component that is not
    /// a registry host (Docker would read it as a Docker Hub namespace).
    pub fn parse(instance: &str, value: &str) -> Result<Registry> {
        let bad = |why: &str| {
            Error::settings(
                instance,
                format!(
                    "`ecs.registry: {value}` {why}: write `host[:port][/namespace]`, e.g. \
                     `127.0.0.1:5055/kitchen` or `123456789012.dkr.ecr.eu-west-1.amazonaws.com`"
                ),
            )
        };
        if value.contains("://") {
            return Err(bad("has a URL scheme"));
        }
        let value = value.trim_end_matches('/');
        let (host, namespace) = value.split_once('/').unwrap_or((value, ""));
        if host.is_empty() {
            return Err(bad("has no host"));
        }
        if !(host.contains('.') || host.contains(':') || host == "localhost") {
            return Err(bad("does not start with a registry host"));
        }
        if namespace
            .chars()
            .any(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/".contains(c)))
        {
            return Err(bad(
                "has a namespace with characters other than a-z 0-9 . _ - /",
            ));
        }
        Ok(Registry {
            host: host.to_owned(),
            namespace: namespace.to_owned(),
            ecr: ecr_host(host),
        })
    }

    /// The repository path, without the host (`team/kitchen-ecs-bundles`).
    pub fn repository(&self) -> String {
        if self.namespace.is_empty() {
            REPOSITORY.to_owned()
        } else {
            format!("{}/{REPOSITORY}", self.namespace)
        }
    }

    /// `host/repository`.
    pub fn repository_ref(&self) -> String {
        format!("{}/{}", self.host, self.repository())
    }
}

/// `<account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]`.
fn ecr_host(host: &str) -> Option<EcrRegistry> {
    let re =
        regex::Regex::new(r"^(\d{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")
            .ok()?;
    let c = re.captures(host)?;
    Some(EcrRegistry {
        account: c[1].to_owned(),
        region: c[2].to_owned(),
    })
}

/// One image bundle to publish: the context and the reference it will have.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BundleImage {
    /// The registry.
    pub registry: Registry,
    /// The platform image it is built `FROM`.
    pub base: String,
    /// The content tag (`b-` and 32 hex digits).
    pub tag: String,
    /// The build context: a tar with the Dockerfile and the bundle.
    pub context: Vec<u8>,
}

/// The Dockerfile of a bundle image. `ADD` of a local tar unpacks it (the bundle is already
/// the gzipped tar a task would unpack at `/`); no instruction reaches the network.
pub fn dockerfile(base: &str) -> String {
    format!("FROM {base}\nADD bundle.tar.gz /\n")
}

impl BundleImage {
    /// The image of `archive` (a gzipped bundle) on top of `base`, whose engine-local image ID
    /// is `base_id` (so a rebuilt platform image gives a new tag).
    ///
    /// # Errors
    /// [`Error::Io`] if the context cannot be packed.
    pub fn new(registry: Registry, base: &str, base_id: &str, archive: &[u8]) -> Result<Self> {
        let dockerfile = dockerfile(base);
        let mut h = Sha256::new();
        for part in [dockerfile.as_bytes(), base_id.as_bytes(), archive] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        let tag: String = h
            .finalize()
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect();
        let wrap = |e: kitchen_driver::Error| {
            Error::io(
                "packing the image context",
                "",
                std::io::Error::other(e.to_string()),
            )
        };
        let mut tar = TarBuilder::new();
        tar.add_bytes("Dockerfile", dockerfile.as_bytes(), 0o644)
            .map_err(wrap)?;
        tar.add_bytes("bundle.tar.gz", archive, 0o644)
            .map_err(wrap)?;
        Ok(Self {
            registry,
            base: base.to_owned(),
            tag: format!("b-{tag}"),
            context: tar.finish().map_err(wrap)?,
        })
    }

    /// `host/repository:tag`.
    pub fn tagged(&self) -> String {
        format!("{}:{}", self.registry.repository_ref(), self.tag)
    }

    /// `host/repository@digest`.
    pub fn by_digest(&self, digest: &str) -> String {
        format!("{}@{digest}", self.registry.repository_ref())
    }
}

/// What [`publish`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Published {
    /// `host/repository@sha256:...`.
    pub reference: String,
    /// False when the registry already had the tag (nothing was built or pushed).
    pub built: bool,
}

fn docker_err(what: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> Error {
    let what = what.into();
    move |e| Error::docker(what, e)
}

/// The registry's digest of `reference`, or `None` when it does not have it.
async fn registry_digest(
    docker: &Docker,
    reference: &str,
    credentials: Option<DockerCredentials>,
) -> Option<String> {
    docker
        .inspect_registry_image(reference, credentials)
        .await
        .ok()
        .and_then(|d| d.descriptor.digest)
}

/// Publishes `image` (see the module docs) and returns its digest reference.
///
/// # Errors
/// [`Error::Docker`] when the build or the push fails (the message carries the engine's);
/// [`Error::Aws`] for ECR.
pub async fn publish(
    docker: &Docker,
    image: &BundleImage,
    project: &str,
    credentials: Option<DockerCredentials>,
) -> Result<Published> {
    let tagged = image.tagged();
    if let Some(digest) = registry_digest(docker, &tagged, credentials.clone()).await {
        return Ok(Published {
            reference: image.by_digest(&digest),
            built: false,
        });
    }
    let labels: HashMap<String, String> = [
        (PROJECT_LABEL.to_owned(), project.to_owned()),
        (BUNDLE_LABEL.to_owned(), image.tag.clone()),
    ]
    .into();
    let opts = BuildImageOptions {
        dockerfile: "Dockerfile".into(),
        t: Some(tagged.clone()),
        rm: true,
        forcerm: true,
        networkmode: Some("none".into()),
        labels: Some(labels),
        ..Default::default()
    };
    let mut build = docker.build_image(
        opts,
        None,
        Some(bollard::body_full(image.context.clone().into())),
    );
    let mut last = String::new();
    while let Some(item) = build.next().await {
        let info = item.map_err(docker_err(format!("building {tagged}")))?;
        if let Some(s) = info.stream {
            last = s.trim().to_owned();
        }
        if let Some(detail) = info.error_detail {
            return Err(Error::Image {
                image: tagged,
                message: format!(
                    "building FROM {} failed: {} ({last}); the platform image must be on the \
                     local Docker engine (builds have no network)",
                    image.base,
                    detail.message.unwrap_or_default()
                ),
            });
        }
    }
    let pushed = push(docker, image, credentials.clone()).await;
    // The local build is not needed once pushed (tasks pull it by digest), nor after a failure.
    let _ = docker
        .remove_image(&tagged, None::<RemoveImageOptions>, None)
        .await;
    pushed?;
    let digest = registry_digest(docker, &tagged, credentials)
        .await
        .ok_or_else(|| Error::Image {
            image: tagged.clone(),
            message: "pushed, but the registry does not report its digest".into(),
        })?;
    Ok(Published {
        reference: image.by_digest(&digest),
        built: true,
    })
}

async fn push(
    docker: &Docker,
    image: &BundleImage,
    credentials: Option<DockerCredentials>,
) -> Result<()> {
    let repo = image.registry.repository_ref();
    let mut stream = docker.push_image(
        &repo,
        Some(PushImageOptions {
            tag: Some(image.tag.clone()),
            ..Default::default()
        }),
        credentials,
    );
    while let Some(item) = stream.next().await {
        let info = item.map_err(docker_err(format!("pushing {}", image.tagged())))?;
        if let Some(detail) = info.error_detail {
            return Err(Error::Image {
                image: image.tagged(),
                message: format!(
                    "the push failed: {}; check that `ecs.registry` ({}) is reachable and \
                     accepts pushes",
                    detail.message.unwrap_or_default(),
                    image.registry.host
                ),
            });
        }
    }
    Ok(())
}

/// An instance's bundle waiting to become an image (set by [`crate::run::prepare`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PendingImage {
    /// Where it goes.
    pub registry: Registry,
    /// The platform image it is built `FROM`.
    pub base: String,
    /// The gzipped bundle.
    pub archive: Vec<u8>,
}

/// The tag of [`placeholder`] references.
pub const UNPUBLISHED: &str = ":unpublished";

/// The placeholder image of a definition whose bundle image is not published yet.
pub fn placeholder(registry: &Registry) -> String {
    format!("{}{UNPUBLISHED}", registry.repository_ref())
}

/// Publishes the bundle image of every prepared instance that has one (each distinct image
/// once) and puts its digest reference into the instance's task definition. Returns, per
/// instance, what was published.
///
/// # Errors
/// [`Error::Docker`] when the engine cannot be reached; [`Error::Image`] when the platform
/// image is not on the engine, or a build or push fails; [`Error::Aws`] for ECR.
pub async fn publish_all(
    kitchen_root: &std::path::Path,
    prepared: &mut [crate::run::Prepared],
) -> Result<Vec<(String, Published)>> {
    if prepared.iter().all(|p| p.bundle_image.is_none()) {
        return Ok(Vec::new());
    }
    let docker = Docker::connect_with_defaults().map_err(docker_err("connecting"))?;
    let project = kitchen_root.to_string_lossy().into_owned();
    let mut done: HashMap<String, Published> = HashMap::new();
    let mut credentials: HashMap<String, Option<DockerCredentials>> = HashMap::new();
    let mut out = Vec::new();
    for p in prepared.iter_mut() {
        let Some(pending) = &p.bundle_image else {
            continue;
        };
        let base_id = docker
            .inspect_image(&pending.base)
            .await
            .ok()
            .and_then(|i| i.id)
            .ok_or_else(|| Error::Image {
                image: pending.base.clone(),
                message: format!(
                    "instance {}: the platform image is not on the local Docker engine; bundle \
                     images are built FROM it there: pull or build it first",
                    p.instance
                ),
            })?;
        let image = BundleImage::new(
            pending.registry.clone(),
            &pending.base,
            &base_id,
            &pending.archive,
        )?;
        let published = match done.get(&image.tagged()) {
            Some(d) => d.clone(),
            None => {
                let host = &image.registry.host;
                if !credentials.contains_key(host) {
                    let c = match &image.registry.ecr {
                        Some(e) => {
                            let client = ecr::client(e).await;
                            ecr::ensure_repository(&client, &image.registry).await?;
                            Some(ecr::credentials(&client, &image.registry).await?)
                        }
                        None => None,
                    };
                    credentials.insert(host.clone(), c);
                }
                let d = publish(&docker, &image, &project, credentials[host].clone()).await?;
                done.insert(image.tagged(), d.clone());
                d
            }
        };
        for c in &mut p.task_definition.container_definitions {
            c.image = published.reference.clone();
        }
        out.push((p.instance.clone(), published));
    }
    Ok(out)
}

/// Amazon ECR: repositories and credentials.
pub mod ecr {
    use super::*;

    /// Decodes a `GetAuthorizationToken` token (base64 of `user:password`).
    ///
    /// # Errors
    /// [`Error::Aws`] if it is not base64 of `user:password`.
    pub fn decode_token(token: &str) -> Result<(String, String)> {
        let bad = |why: &str| Error::Aws {
            operation: "GetAuthorizationToken",
            message: format!("the authorization token is not base64 of `user:password`: {why}"),
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(token.trim())
            .map_err(|e| bad(&e.to_string()))?;
        let text = String::from_utf8(bytes).map_err(|e| bad(&e.to_string()))?;
        let (user, password) = text.split_once(':').ok_or_else(|| bad("no `:`"))?;
        Ok((user.to_owned(), password.to_owned()))
    }

    /// The credentials Docker needs to push to and pull from `registry`'s account.
    ///
    /// # Errors
    /// [`Error::Aws`] when the call fails or answers no token.
    pub async fn credentials(
        client: &aws_sdk_ecr::Client,
        registry: &Registry,
    ) -> Result<DockerCredentials> {
        // One token serves every registry the caller may use (registryIds is deprecated).
        let out = client
            .get_authorization_token()
            .send()
            .await
            .map_err(|e| Error::Aws {
                operation: "GetAuthorizationToken",
                message: aws_sdk_ecr::error::DisplayErrorContext(e).to_string(),
            })?;
        let data = out
            .authorization_data()
            .first()
            .and_then(|d| d.authorization_token().map(|t| (t, d.proxy_endpoint())))
            .ok_or_else(|| Error::Aws {
                operation: "GetAuthorizationToken",
                message: "the answer has no authorization token".into(),
            })?;
        let (username, password) = decode_token(data.0)?;
        Ok(DockerCredentials {
            username: Some(username),
            password: Some(password),
            serveraddress: Some(
                data.1
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("https://{}", registry.host)),
            ),
            ..Default::default()
        })
    }

    /// Creates `registry`'s bundle repository unless it exists; returns whether it created it.
    ///
    /// # Errors
    /// [`Error::Aws`] when a call fails other than for a repository that does not exist.
    pub async fn ensure_repository(
        client: &aws_sdk_ecr::Client,
        registry: &Registry,
    ) -> Result<bool> {
        let name = registry.repository();
        let mut describe = client.describe_repositories().repository_names(&name);
        if let Some(e) = &registry.ecr {
            describe = describe.registry_id(&e.account);
        }
        match describe.send().await {
            Ok(_) => return Ok(false),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_repository_not_found_exception()) => {}
            Err(e) => {
                return Err(Error::Aws {
                    operation: "DescribeRepositories",
                    message: aws_sdk_ecr::error::DisplayErrorContext(e).to_string(),
                });
            }
        }
        let mut create = client.create_repository().repository_name(&name).tags(
            aws_sdk_ecr::types::Tag::builder()
                .key("kitchen:purpose")
                .value("ecs-runner bundle images")
                .build()
                .map_err(|e| Error::Aws {
                    operation: "CreateRepository",
                    message: e.to_string(),
                })?,
        );
        if let Some(e) = &registry.ecr {
            create = create.registry_id(&e.account);
        }
        create.send().await.map_err(|e| Error::Aws {
            operation: "CreateRepository",
            message: aws_sdk_ecr::error::DisplayErrorContext(e).to_string(),
        })?;
        Ok(true)
    }

    /// An ECR client for `registry`'s Region, from the standard chain.
    pub async fn client(registry: &EcrRegistry) -> aws_sdk_ecr::Client {
        let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(registry.region.clone()))
            .load()
            .await;
        aws_sdk_ecr::Client::new(&conf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_parse_host_namespace_and_ecr() {
        let r = Registry::parse("i", "127.0.0.1:5055/team/x/").unwrap();
        assert_eq!(
            (r.host.as_str(), r.namespace.as_str()),
            ("127.0.0.1:5055", "team/x")
        );
        assert_eq!(
            r.repository_ref(),
            "127.0.0.1:5055/team/x/kitchen-ecs-bundles"
        );
        assert_eq!(r.ecr, None);
        let r = Registry::parse("i", "123456789012.dkr.ecr.eu-west-1.amazonaws.com").unwrap();
        assert_eq!(
            r.ecr,
            Some(EcrRegistry {
                account: "123456789012".into(),
                region: "eu-west-1".into()
            })
        );
        assert_eq!(r.repository(), REPOSITORY);
        for bad in ["http://r:5000", "team/x", "", "r.io/Team"] {
            let e = Registry::parse("web", bad).unwrap_err().to_string();
            assert!(
                e.contains("instance web") && e.contains("host[:port]"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn the_tag_follows_the_content_base_and_bundle() {
        let r = Registry::parse("i", "localhost:5000").unwrap();
        let a = BundleImage::new(r.clone(), "debian:12", "sha256:1", b"bundle").unwrap();
        let same = BundleImage::new(r.clone(), "debian:12", "sha256:1", b"bundle").unwrap();
        assert_eq!(a, same);
        assert!(a.tag.starts_with("b-") && a.tag.len() == 34, "{}", a.tag);
        for other in [
            BundleImage::new(r.clone(), "debian:12", "sha256:2", b"bundle").unwrap(),
            BundleImage::new(r.clone(), "debian:13", "sha256:1", b"bundle").unwrap(),
            BundleImage::new(r.clone(), "debian:12", "sha256:1", b"bundle2").unwrap(),
        ] {
            assert_ne!(a.tag, other.tag);
        }
        assert_eq!(
            a.by_digest("sha256:ab"),
            "localhost:5000/kitchen-ecs-bundles@sha256:ab"
        );
        assert_eq!(dockerfile("x:1"), "FROM x:1\nADD bundle.tar.gz /\n");
    }

    #[test]
    fn ecr_tokens_decode_to_user_and_password() {
        let t = base64::engine::general_purpose::STANDARD.encode("AWS:pa:ss");
        assert_eq!(
            ecr::decode_token(&t).unwrap(),
            ("AWS".to_owned(), "pa:ss".to_owned())
        );
        assert!(ecr::decode_token("%%%").is_err());
        let t = base64::engine::general_purpose::STANDARD.encode("nocolon");
        assert!(
            ecr::decode_token(&t)
                .unwrap_err()
                .to_string()
                .contains("no `:`")
        );
    }
}
