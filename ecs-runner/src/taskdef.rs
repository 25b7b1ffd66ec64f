//! The task definition of an instance, in the shape of the ECS API's JSON (pure: unit-tested).
//!
//! One family per project and instance (`kitchen-<project hash>-<instance>`), one essential
//! container named [`CONTAINER_NAME`] with container-level memory (moto answers 500 without),
//! the awslogs driver, and the bundle ([`Delivery`]): inline, a gzipped tar, base64 in the
//! environment, that a `/bin/sh` one-liner unpacks at `/` before running the entrypoint; or
//! already in an image bundle ([`crate::image`]), whose entrypoint runs directly. The same value
//! serves `ecs-runner render`, RegisterTaskDefinition and `--local`.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::bundle::{Bundle, ENTRYPOINT_PATH};
use crate::error::{Error, Result};
use crate::settings::{EcsSettings, LaunchType};

/// The name of the one container of every task.
pub const CONTAINER_NAME: &str = "kitchen";
/// ECS's ceiling for a task definition's JSON.
pub const TASK_DEFINITION_LIMIT: usize = 64 * 1024;
/// ECS's ceiling for a RunTask `overrides` value, in characters.
pub const OVERRIDES_LIMIT: usize = 8192;
/// The environment variable carrying the bundle.
pub const BUNDLE_VAR: &str = "KITCHEN_BUNDLE";

/// A name/value pair (`environment`, tags).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct KeyValue {
    /// The name (`key` for tags is spelled `name` here and mapped by the AWS layer).
    pub name: String,
    /// The value.
    pub value: String,
}

/// `dependsOn` of a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ContainerDependency {
    /// The container depended on.
    pub container_name: String,
    /// `START`, `COMPLETE`, `SUCCESS` or `HEALTHY`.
    pub condition: String,
}

/// `logConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct LogConfiguration {
    /// `awslogs`.
    pub log_driver: String,
    /// `awslogs-group`, `awslogs-region`, `awslogs-stream-prefix`, `awslogs-create-group`.
    pub options: BTreeMap<String, String>,
}

/// One container definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ContainerDefinition {
    /// The container's name.
    pub name: String,
    /// The image.
    pub image: String,
    /// Whether the task stops when this container does.
    pub essential: bool,
    /// Replaces the image's entrypoint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entry_point: Vec<String>,
    /// Replaces the image's command.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Environment variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environment: Vec<KeyValue>,
    /// The working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_directory: Option<String>,
    /// CPU units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<i32>,
    /// Hard memory limit, MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<i32>,
    /// Start order conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<ContainerDependency>,
    /// The log driver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_configuration: Option<LogConfiguration>,
}

/// A task definition, as RegisterTaskDefinition takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct TaskDefinition {
    /// The family.
    pub family: String,
    /// `awsvpc` (Fargate) or `bridge` (EC2).
    pub network_mode: String,
    /// `FARGATE` or `EC2`.
    pub requires_compatibilities: Vec<String>,
    /// Task CPU units, as a string.
    pub cpu: String,
    /// Task memory, MiB, as a string.
    pub memory: String,
    /// The execution role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_role_arn: Option<String>,
    /// The task role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_role_arn: Option<String>,
    /// The containers.
    pub container_definitions: Vec<ContainerDefinition>,
    /// Tags (`key`/`value` in the API).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}

/// A resource tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Tag {
    /// The key.
    pub key: String,
    /// The value.
    pub value: String,
}

impl Tag {
    /// A tag.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// Tag keys ecs-runner sets on what it creates.
pub mod tag_keys {
    /// The project path.
    pub const PROJECT: &str = "kitchen:project";
    /// The instance.
    pub const INSTANCE: &str = "kitchen:instance";
    /// The run (on tasks).
    pub const RUN: &str = "kitchen:run";
}

/// The family prefix of every task definition of the project at `kitchen_root`.
pub fn family_prefix(kitchen_root: &Path) -> String {
    format!(
        "kitchen-{}-",
        kitchen_driver::driver::naming::project_hash(kitchen_root)
    )
}

/// The family of an instance: letters, digits, `-` and `_`, at most 255 characters.
pub fn family(kitchen_root: &Path, instance: &str) -> String {
    let mut f = family_prefix(kitchen_root);
    f.extend(instance.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
            c
        } else {
            '-'
        }
    }));
    f.truncate(255);
    f
}

/// The shell line that unpacks the bundle and runs the entrypoint (busybox and coreutils
/// `base64 -d`, any `tar` with `-z`).
pub fn boot_script() -> String {
    format!(
        "printf %s \"${BUNDLE_VAR}\" | base64 -d | tar -xzf - -C / && unset {BUNDLE_VAR} && exec sh {ENTRYPOINT_PATH}"
    )
}

/// How the rendered definition carries the bundle.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Delivery<'a> {
    /// Base64 in [`BUNDLE_VAR`], unpacked by [`boot_script`] in the platform image.
    Inline(&'a Bundle),
    /// Baked into this image (a digest reference once published, see [`crate::image`]): the
    /// entrypoint is already in place.
    Image(&'a str),
}

/// Renders the task definition of `instance` with the bundle inline.
///
/// # Errors
/// [`Error::Settings`] without an image; [`Error::Unsupported`] when the bundle makes the
/// task definition larger than ECS's 64 KiB.
pub fn render(
    kitchen_root: &Path,
    instance: &str,
    settings: &EcsSettings,
    bundle: &Bundle,
) -> Result<TaskDefinition> {
    let td = render_with(kitchen_root, instance, settings, Delivery::Inline(bundle))?;
    check_inline_size(instance, &td)?;
    Ok(td)
}

/// Whether an inline definition fits ECS's 64 KiB.
///
/// # Errors
/// [`Error::Unsupported`], naming the size and what to do, when it does not.
pub fn check_inline_size(instance: &str, td: &TaskDefinition) -> Result<()> {
    let size = td.json().len();
    if size > TASK_DEFINITION_LIMIT {
        return Err(Error::unsupported(
            instance,
            format!(
                "the bundle makes the task definition {size} bytes, over ECS's {TASK_DEFINITION_LIMIT}: \
                 set `ecs: {{registry: HOST[:PORT][/NAMESPACE]}}` so it travels as an image, or trim \
                 the provisioner's data or the tests"
            ),
        ));
    }
    Ok(())
}

/// Renders the task definition of `instance`, delivering the bundle as `delivery` says (no
/// size check: see [`check_inline_size`]).
///
/// # Errors
/// [`Error::Settings`] without an image.
pub fn render_with(
    kitchen_root: &Path,
    instance: &str,
    settings: &EcsSettings,
    delivery: Delivery<'_>,
) -> Result<TaskDefinition> {
    let base_image = settings.image_for(instance)?.to_owned();
    let (image, entry_point, command, environment) = match delivery {
        Delivery::Inline(bundle) => (
            base_image,
            vec!["/bin/sh".into(), "-c".into()],
            vec![boot_script()],
            vec![KeyValue {
                name: BUNDLE_VAR.into(),
                value: base64::engine::general_purpose::STANDARD.encode(&bundle.archive),
            }],
        ),
        Delivery::Image(reference) => (
            reference.to_owned(),
            vec!["/bin/sh".into(), ENTRYPOINT_PATH.into()],
            Vec::new(),
            Vec::new(),
        ),
    };
    let mut log_options = BTreeMap::new();
    log_options.insert("awslogs-group".to_owned(), settings.log_group.clone());
    log_options.insert(
        "awslogs-stream-prefix".to_owned(),
        settings.log_stream_prefix.clone(),
    );
    log_options.insert("awslogs-create-group".to_owned(), "true".to_owned());
    if let Some(r) = &settings.region {
        log_options.insert("awslogs-region".to_owned(), r.clone());
    }
    let mut tags = vec![
        Tag::new(
            tag_keys::PROJECT,
            truncate(&kitchen_root.to_string_lossy(), 256),
        ),
        Tag::new(tag_keys::INSTANCE, instance),
    ];
    tags.extend(settings.tags.iter().map(|(k, v)| Tag::new(k, v)));
    let memory = i32::try_from(settings.memory).unwrap_or(i32::MAX);
    let td = TaskDefinition {
        family: family(kitchen_root, instance),
        network_mode: match settings.launch_type {
            LaunchType::Fargate => "awsvpc",
            LaunchType::Ec2 => "bridge",
        }
        .into(),
        requires_compatibilities: vec![settings.launch_type.as_str().into()],
        cpu: settings.cpu.to_string(),
        memory: settings.memory.to_string(),
        execution_role_arn: settings.execution_role_arn.clone(),
        task_role_arn: settings.task_role_arn.clone(),
        container_definitions: vec![ContainerDefinition {
            name: CONTAINER_NAME.into(),
            image,
            essential: true,
            entry_point,
            command,
            environment,
            working_directory: Some("/".into()),
            cpu: None,
            memory: Some(memory),
            depends_on: Vec::new(),
            log_configuration: Some(LogConfiguration {
                log_driver: "awslogs".into(),
                options: log_options,
            }),
        }],
        tags,
    };
    Ok(td)
}

impl TaskDefinition {
    /// The JSON ECS would receive (pretty-printed for `render`).
    pub fn json(&self) -> String {
        // Serializing plain strings, numbers and maps cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The essential containers' names.
    pub fn essential_containers(&self) -> Vec<&str> {
        self.container_definitions
            .iter()
            .filter(|c| c.essential)
            .map(|c| c.name.as_str())
            .collect()
    }
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(launch: &str) -> EcsSettings {
        serde_json::from_value(serde_json::json!({"image": "debian:12", "launch_type": launch, "region": "eu-west-1", "tags": {"team": "qa"}})).unwrap()
    }

    fn bundle(n: usize) -> Bundle {
        // Incompressible-looking bytes, as a large bundle would be after gzip.
        let archive = (0..n)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        Bundle {
            archive,
            entrypoint: String::new(),
        }
    }

    #[test]
    fn a_fargate_definition_has_awsvpc_awslogs_and_container_memory() {
        let td = render(
            Path::new("/p"),
            "web-debian",
            &settings("FARGATE"),
            &bundle(10),
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&td.json()).unwrap();
        assert_eq!(
            v["family"],
            format!("{}web-debian", family_prefix(Path::new("/p")))
        );
        assert_eq!(v["networkMode"], "awsvpc");
        assert_eq!(v["requiresCompatibilities"][0], "FARGATE");
        assert_eq!(
            (v["cpu"].as_str(), v["memory"].as_str()),
            (Some("256"), Some("512"))
        );
        let c = &v["containerDefinitions"][0];
        assert_eq!(c["memory"], 512);
        assert_eq!(c["essential"], true);
        assert_eq!(c["logConfiguration"]["logDriver"], "awslogs");
        assert_eq!(
            c["logConfiguration"]["options"]["awslogs-region"],
            "eu-west-1"
        );
        assert_eq!(c["entryPoint"][1], "-c");
        assert_eq!(c["environment"][0]["name"], BUNDLE_VAR);
        assert!(
            v["tags"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["key"] == "team")
        );
    }

    #[test]
    fn ec2_uses_bridge() {
        let td = render(Path::new("/p"), "a", &settings("EC2"), &bundle(10)).unwrap();
        assert_eq!(td.network_mode, "bridge");
    }

    #[test]
    fn a_bundle_past_64_kib_is_refused_before_any_task() {
        // base64 grows 4/3: 48 KiB of archive is 64 KiB of text.
        assert!(render(Path::new("/p"), "a", &settings("EC2"), &bundle(40 * 1024)).is_ok());
        let e = render(Path::new("/p"), "a", &settings("EC2"), &bundle(48 * 1024))
            .unwrap_err()
            .to_string();
        assert!(e.contains("over ECS's 65536"), "{e}");
    }

    #[test]
    fn families_are_valid_names() {
        assert_eq!(
            family(Path::new("/p"), "a.b c").rsplit_once('-').unwrap().1,
            "c"
        );
        assert!(family(Path::new("/p"), &"x".repeat(300)).len() == 255);
    }
}
