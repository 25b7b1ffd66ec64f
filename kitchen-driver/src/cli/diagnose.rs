//! `kitchen-driver diagnose`: the merged configuration of each selected instance, and its
//! state file (as test-kitchen's `state_file`), which holds what the driver recorded, such as
//! a Docker container's published ports.

use serde::Serialize;

use crate::config::{InstanceConfig, PluginConfig, Project};
use crate::state::{State, StateFile};

#[derive(Serialize)]
struct Diagnose<'a> {
    kitchen_driver_version: &'a str,
    kitchen_root: String,
    test_base_path: String,
    files: Vec<String>,
    instances: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize)]
struct InstanceDiag<'a> {
    suite: &'a str,
    platform: &'a str,
    state_file: State,
    driver: &'a PluginConfig,
    provisioner: &'a PluginConfig,
    verifier: &'a PluginConfig,
    transport: &'a PluginConfig,
    lifecycle: &'a PluginConfig,
}

/// The `diagnose` document for the instances named in `selected`: YAML (a `---` document, as
/// test-kitchen prints) or pretty JSON.
///
/// # Errors
/// [`crate::Error::StateFile`] for a state file that is not a YAML mapping,
/// [`crate::Error::Io`] for one that cannot be read.
pub fn render_diagnose(
    project: &Project,
    selected: &[String],
    json: bool,
) -> crate::Result<String> {
    let host_env: Vec<(String, String)> = std::env::vars().collect();
    let instances = selected
        .iter()
        .filter_map(|n| project.instance(n))
        .map(|i: &InstanceConfig| {
            crate::events::redact::register_instance(i, &host_env);
            let d = InstanceDiag {
                suite: &i.suite,
                platform: &i.platform,
                state_file: StateFile::new(&project.kitchen_root, &i.name).load()?,
                driver: &i.driver,
                provisioner: &i.provisioner,
                verifier: &i.verifier,
                transport: &i.transport,
                lifecycle: &i.lifecycle,
            };
            // Secret values (an `extra_vars` password, a proxy's credentials) show as `***`.
            let value = serde_json::to_value(d).unwrap_or(serde_json::Value::Null);
            Ok((i.name.clone(), crate::events::redact::redact_serde(value)))
        })
        .collect::<crate::Result<_>>()?;
    let doc = Diagnose {
        kitchen_driver_version: crate::VERSION,
        kitchen_root: project.kitchen_root.display().to_string(),
        test_base_path: project.test_base_path.display().to_string(),
        files: project
            .files
            .iter()
            .map(|f| f.display().to_string())
            .collect(),
        instances,
    };
    Ok(if json {
        let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
        s.push('\n');
        s
    } else {
        let body = serde_saphyr::to_string(&doc).unwrap_or_default();
        format!("---\n{body}")
    })
}
