//! The generated inventory: the instance is `localhost`, with its runtime's connection plugin
//! (pure: unit-tested).

use serde_json::{Value, json};

use crate::transport::Target;

/// The name of the instance in the generated inventory. kitchen-ansible runs Ansible inside the
/// instance, so test playbooks say `hosts: localhost`, `connection: local`, `delegate_to:
/// localhost` or `local_action` and mean the instance. Naming the instance `localhost` here
/// makes all of these reach it: an inventory host named `localhost` also stands for Ansible's
/// implicit `127.0.0.1` and `::1`, so Ansible never creates its own local host, which would be
/// the user's machine.
pub const INVENTORY_HOST: &str = "localhost";

/// The connection variables that point Ansible at the instance through its runtime's
/// connection plugin (pure: unit-tested). They are both the inventory host's variables and the
/// last `-e` of the command line: extra vars outrank every other variable, so a play's
/// `connection: local`, `vars: {ansible_connection: local}` or a delegation to another host
/// still reaches the instance and never runs on the host.
///
/// # Errors
/// A message when the runtime has no Ansible connection plugin known here.
pub fn connection_vars(
    target: &Target,
) -> std::result::Result<serde_json::Map<String, Value>, String> {
    let mut vars = serde_json::Map::new();
    match target {
        Target::Docker { container_id, .. } => {
            vars.insert(
                "ansible_connection".into(),
                "community.docker.docker".into(),
            );
            vars.insert("ansible_host".into(), container_id.clone().into());
        }
        Target::Lxd { name, project } => {
            vars.insert("ansible_connection".into(), "community.general.lxd".into());
            vars.insert("ansible_host".into(), name.clone().into());
            if !project.is_empty() && project != "default" {
                vars.insert("ansible_lxd_project".into(), project.clone().into());
            }
        }
        #[allow(unreachable_patterns)]
        other => {
            return Err(format!(
                "ansible_playbook cannot reach this kind of instance ({other:?})"
            ));
        }
    }
    Ok(vars)
}

/// The generated inventory: one host, [`INVENTORY_HOST`], which is the instance, with the
/// connection for its runtime, in `all` and in the `hosts` group when one is configured
/// (pure: unit-tested).
///
/// # Errors
/// A message when the runtime has no Ansible connection plugin known here.
pub fn inventory(target: &Target, group: Option<&str>) -> std::result::Result<Value, String> {
    let mut host = connection_vars(target)?;
    host.insert("ansible_python_interpreter".into(), "auto_silent".into());
    let mut all = json!({"hosts": {INVENTORY_HOST: Value::Object(host)}});
    if let Some(g) = group.filter(|g| !g.is_empty() && *g != "all") {
        all["children"] = json!({g: {"hosts": {INVENTORY_HOST: {}}}});
    }
    Ok(json!({ "all": all }))
}
