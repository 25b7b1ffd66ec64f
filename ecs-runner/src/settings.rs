//! The `ecs:` settings of an instance (pure: unit-tested).
//!
//! kitchen.yml may carry a top-level `ecs:` mapping; a platform's and a suite's own `ecs:`
//! mappings are deep-merged over it, suite over platform, and command-line flags
//! ([`Overrides`]) win over all. `image` defaults to the platform's Docker `driver.image`.

use std::collections::BTreeMap;

use kitchen_driver::config::InstanceConfig;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Where a task runs on ECS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[non_exhaustive]
pub enum LaunchType {
    /// Fargate: `awsvpc` networking, subnets required.
    #[default]
    #[serde(rename = "FARGATE")]
    Fargate,
    /// Container instances of the cluster: `bridge` networking.
    #[serde(rename = "EC2")]
    Ec2,
}

impl LaunchType {
    /// The API's spelling (`FARGATE`, `EC2`).
    pub fn as_str(self) -> &'static str {
        match self {
            LaunchType::Fargate => "FARGATE",
            LaunchType::Ec2 => "EC2",
        }
    }
}

/// How the bundle reaches the task (`ecs.bundle`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum BundleDelivery {
    /// Inline when the task definition stays under ECS's 64 KiB, else an image (which needs
    /// `registry`).
    #[default]
    Auto,
    /// Always inline (an error when it does not fit).
    Inline,
    /// Always an image built `FROM` the platform image and pushed to `registry`.
    Image,
}

/// One item of `capacity_provider_strategy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CapacityProviderItem {
    /// The capacity provider's name.
    pub capacity_provider: String,
    /// Relative weight.
    #[serde(default)]
    pub weight: Option<i32>,
    /// Tasks placed on this provider first.
    #[serde(default)]
    pub base: Option<i32>,
}

/// The merged `ecs:` settings of one instance, with defaults applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct EcsSettings {
    /// The cluster (ECS's own default: `default`).
    #[serde(default = "default_cluster")]
    pub cluster: String,
    /// The AWS Region; unset means the standard chain (`AWS_REGION`, profile).
    #[serde(default)]
    pub region: Option<String>,
    /// `FARGATE` (default) or `EC2`; ignored when a capacity provider strategy is given.
    #[serde(default)]
    pub launch_type: LaunchType,
    /// A capacity provider strategy instead of a launch type.
    #[serde(default)]
    pub capacity_provider_strategy: Vec<CapacityProviderItem>,
    /// Fargate platform version (`LATEST` when unset).
    #[serde(default)]
    pub platform_version: Option<String>,
    /// Subnets for `awsvpc` (Fargate needs at least one).
    #[serde(default)]
    pub subnets: Vec<String>,
    /// Security groups for `awsvpc`.
    #[serde(default)]
    pub security_groups: Vec<String>,
    /// Whether a Fargate task gets a public IP (needed to pull public images without NAT).
    #[serde(default)]
    pub assign_public_ip: bool,
    /// The role ECS uses to pull images and write logs (Fargate with awslogs needs it).
    #[serde(default)]
    pub execution_role_arn: Option<String>,
    /// The role the task's own code runs with.
    #[serde(default)]
    pub task_role_arn: Option<String>,
    /// CPU units for the task (1024 = one vCPU).
    #[serde(default = "default_cpu")]
    pub cpu: u32,
    /// Memory for the task and its container, in MiB.
    #[serde(default = "default_memory")]
    pub memory: u32,
    /// The image the suite runs in.
    #[serde(default)]
    pub image: Option<String>,
    /// The CloudWatch Logs group of the awslogs driver.
    #[serde(default = "default_log_group")]
    pub log_group: String,
    /// The awslogs stream prefix (streams are `<prefix>/<container>/<task id>`).
    #[serde(default = "default_log_stream_prefix")]
    pub log_stream_prefix: String,
    /// A registry for image bundles (bundles too large to travel inline):
    /// `host[:port][/namespace]`, an ECR host or any Registry HTTP API V2 server.
    #[serde(default)]
    pub registry: Option<String>,
    /// How the bundle reaches the task: `auto` (default), `inline` or `image`.
    #[serde(default)]
    pub bundle: BundleDelivery,
    /// Extra tags on task definitions and tasks.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

fn default_cluster() -> String {
    "default".into()
}
fn default_cpu() -> u32 {
    256
}
fn default_memory() -> u32 {
    512
}
fn default_log_group() -> String {
    "/kitchen-rs/ecs-runner".into()
}
fn default_log_stream_prefix() -> String {
    "kitchen".into()
}

/// Command-line flags that override every `ecs:` mapping.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Overrides {
    /// `--cluster NAME`.
    pub cluster: Option<String>,
}

impl Overrides {
    /// Overrides with `--cluster`.
    pub fn with_cluster(mut self, cluster: Option<String>) -> Self {
        self.cluster = cluster;
        self
    }
}

/// Resolves the settings of `instance` from the merged kitchen.yml `document` (see
/// [`kitchen_driver::config::load_with_document`]).
///
/// # Errors
/// [`Error::Settings`] naming the key when a mapping is not a mapping, a key is unknown or of
/// the wrong type, or no image can be found.
pub fn resolve(
    document: &Map<String, Value>,
    instance: &InstanceConfig,
    overrides: &Overrides,
) -> Result<EcsSettings> {
    let name = &instance.name;
    let mut merged = Map::new();
    let layers = [
        ("ecs", document.get("ecs")),
        (
            "platforms[].ecs",
            entry(document, "platforms", &instance.platform).and_then(|p| p.get("ecs")),
        ),
        (
            "suites[].ecs",
            entry(document, "suites", &instance.suite).and_then(|s| s.get("ecs")),
        ),
    ];
    for (at, layer) in layers {
        match layer {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => deep_merge(&mut merged, m),
            Some(other) => {
                return Err(Error::settings(
                    name,
                    format!("`{at}` must be a mapping, not {other}"),
                ));
            }
        }
    }
    if let Some(cluster) = &overrides.cluster {
        merged.insert("cluster".into(), Value::String(cluster.clone()));
    }
    let mut settings: EcsSettings = serde_path_to_error::deserialize(Value::Object(merged))
        .map_err(|e| Error::settings(name, format!("key `ecs.{}`: {}", e.path(), e.inner())))?;
    if settings.image.is_none() && instance.driver_name() == "docker" {
        settings.image = instance
            .driver
            .get("image")
            .and_then(Value::as_str)
            .map(str::to_owned);
    }
    if settings.memory == 0 || settings.cpu == 0 {
        return Err(Error::settings(name, "`cpu` and `memory` must be positive"));
    }
    Ok(settings)
}

impl EcsSettings {
    /// The image, or an error that says where to set it.
    ///
    /// # Errors
    /// [`Error::Settings`] when neither `ecs.image` nor a Docker `driver.image` is set.
    pub fn image_for(&self, instance: &str) -> Result<&str> {
        self.image.as_deref().ok_or_else(|| {
            Error::settings(
                instance,
                "no image: set `ecs: {image: ...}` (top level, platform or suite), or use a \
                 platform whose `driver` is `docker` with an `image`",
            )
        })
    }
}

/// The `platforms` or `suites` entry named `name`.
fn entry<'a>(document: &'a Map<String, Value>, list: &str, name: &str) -> Option<&'a Value> {
    document
        .get(list)?
        .as_array()?
        .iter()
        .find(|e| e.get("name").and_then(Value::as_str) == Some(name))
}

/// Deep merge, `over` winning: mappings merge key by key, anything else is replaced.
fn deep_merge(base: &mut Map<String, Value>, over: &Map<String, Value>) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(Value::Object(b)), Value::Object(o)) => deep_merge(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kitchen_driver::config::{self, LoadOptions};

    fn project(yaml: &str) -> (Map<String, Value>, Vec<InstanceConfig>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("kitchen.yml"), yaml).unwrap();
        let opts = LoadOptions::new(dir.path().into(), Default::default());
        let (p, doc) = config::load_with_document(&opts).unwrap();
        (doc, p.instances)
    }

    const YAML: &str = r#"
driver: {name: docker}
ecs:
  cluster: ci
  cpu: 512
  tags: {team: infra, cost: low}
platforms:
  - name: debian
    driver: {image: "debian:12"}
    ecs: {memory: 1024, tags: {cost: high}}
  - name: alpine
    driver: {name: lxd, image: alpine}
suites:
  - name: web
    ecs: {cpu: 1024, launch_type: EC2}
  - name: db
"#;

    #[test]
    fn suite_wins_over_platform_over_top_level_and_maps_merge_deeply() {
        let (doc, instances) = project(YAML);
        let web_debian = instances.iter().find(|i| i.name == "web-debian").unwrap();
        let s = resolve(&doc, web_debian, &Overrides::default()).unwrap();
        assert_eq!(s.cluster, "ci");
        assert_eq!(s.cpu, 1024);
        assert_eq!(s.memory, 1024);
        assert_eq!(s.launch_type, LaunchType::Ec2);
        assert_eq!(s.tags["team"], "infra");
        assert_eq!(s.tags["cost"], "high");
        assert_eq!(s.image.as_deref(), Some("debian:12"));
        let db_debian = instances.iter().find(|i| i.name == "db-debian").unwrap();
        let s = resolve(&doc, db_debian, &Overrides::default()).unwrap();
        assert_eq!((s.cpu, s.launch_type), (512, LaunchType::Fargate));
    }

    #[test]
    fn the_cluster_flag_wins() {
        let (doc, instances) = project(YAML);
        let o = Overrides::default().with_cluster(Some("other".into()));
        assert_eq!(resolve(&doc, &instances[0], &o).unwrap().cluster, "other");
    }

    #[test]
    fn image_defaults_to_the_docker_driver_image_only() {
        let (doc, instances) = project(YAML);
        let web_alpine = instances.iter().find(|i| i.name == "web-alpine").unwrap();
        let s = resolve(&doc, web_alpine, &Overrides::default()).unwrap();
        assert_eq!(s.image, None);
        let e = s.image_for("web-alpine").unwrap_err().to_string();
        assert!(e.contains("web-alpine") && e.contains("ecs: {image"), "{e}");
    }

    #[test]
    fn unknown_and_mistyped_keys_name_the_key() {
        let (doc, instances) =
            project("ecs: {clustr: x}\nplatforms: [{name: p}]\nsuites: [{name: s}]\n");
        let e = resolve(&doc, &instances[0], &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("s-p") && e.contains("clustr"), "{e}");
        let (doc, instances) =
            project("ecs: {cpu: lots}\nplatforms: [{name: p}]\nsuites: [{name: s}]\n");
        let e = resolve(&doc, &instances[0], &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("ecs.cpu"), "{e}");
        let (doc, instances) = project("ecs: [1]\nplatforms: [{name: p}]\nsuites: [{name: s}]\n");
        let e = resolve(&doc, &instances[0], &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("must be a mapping"), "{e}");
    }

    #[test]
    fn defaults_apply_without_any_ecs_mapping() {
        let (doc, instances) = project(
            "driver: {name: docker, image: busybox}\nplatforms: [{name: p}]\nsuites: [{name: s}]\n",
        );
        let s = resolve(&doc, &instances[0], &Overrides::default()).unwrap();
        assert_eq!((s.cluster.as_str(), s.cpu, s.memory), ("default", 256, 512));
        assert_eq!(s.image.as_deref(), Some("busybox"));
    }
}
