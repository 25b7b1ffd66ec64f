//! `kitchen-driver list`: test-kitchen's table, `--bare` and `--json` (lib/kitchen/command/list.rb).

use std::io::Write;

use serde::Serialize;

use super::ListArgs;
use crate::action::Action;
use crate::config::{InstanceConfig, Project};
use crate::state::{StateFile, keys, value_text};

/// One row of `list`: the JSON object test-kitchen's `list --json` prints.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ListRow {
    /// Instance name.
    pub instance: String,
    /// Driver class name (`Lxd`, `Docker`, `Vagrant`...).
    pub driver: String,
    /// Provisioner class name (`Shell`, `AnsiblePlaybook`...).
    pub provisioner: String,
    /// Verifier class name (`Busser`, `Inspec`...).
    pub verifier: String,
    /// Transport class name (`Ssh`, `Winrm`...).
    pub transport: String,
    /// `last_action` from the state file, if any.
    pub last_action: Option<String>,
    /// `last_error` from the state file, if any.
    pub last_error: Option<String>,
    /// Published ports the driver recorded (`container port/proto` -> host port), shown in
    /// `--json` only, so the table stays test-kitchen's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forwarded_ports: Option<serde_json::Value>,
}

/// Thor's `camel_case`, which test-kitchen uses to find a plugin's class from its name:
/// `ansible_playbook` -> `AnsiblePlaybook`; a name with capitals and no `_` is kept.
pub fn camel_case(name: &str) -> String {
    if !name.contains('_') && name.chars().any(|c| c.is_ascii_uppercase()) {
        return name.to_owned();
    }
    name.split('_')
        .map(|part| {
            let mut c = part.chars();
            match c.next() {
                Some(f) => f
                    .to_uppercase()
                    .chain(c.flat_map(char::to_lowercase))
                    .collect(),
                None => String::new(),
            }
        })
        .collect()
}

/// The `Last Action` column for a state file's `last_action` (test-kitchen's
/// `format_last_action`): the action's [`Action::label`], `<Not Created>` without one, and
/// `<Unknown>` for anything that is not a completed action.
fn last_action_label(last_action: Option<&str>) -> &'static str {
    match last_action.map(str::parse::<Action>) {
        None => Action::Destroy.label(),
        Some(Ok(action)) if action != Action::Destroy => action.label(),
        Some(_) => "<Unknown>",
    }
}

/// The rows for `instances` of `project`, reading each state file.
///
/// # Errors
/// [`crate::Error::StateFile`] for a state file that is not a YAML mapping,
/// [`crate::Error::Io`] for one that cannot be read.
pub fn list_rows(project: &Project, instances: &[&InstanceConfig]) -> crate::Result<Vec<ListRow>> {
    instances
        .iter()
        .map(|i| {
            let state = StateFile::new(&project.kitchen_root, &i.name).load()?;
            Ok(ListRow {
                instance: i.name.clone(),
                driver: camel_case(i.driver_name()),
                provisioner: camel_case(i.provisioner_name()),
                verifier: camel_case(i.verifier_name()),
                transport: camel_case(i.transport_name()),
                last_action: state.get(keys::LAST_ACTION).and_then(value_text),
                last_error: state.get(keys::LAST_ERROR).and_then(value_text),
                forwarded_ports: state.get(keys::FORWARDED_PORTS).cloned(),
            })
        })
        .collect()
}

/// Thor's `print_table`: columns left-aligned, padded to the widest cell plus two spaces,
/// the last column unpadded.
pub fn render_table(rows: &[ListRow]) -> String {
    let mut table: Vec<[String; 7]> = vec![
        [
            "Instance",
            "Driver",
            "Provisioner",
            "Verifier",
            "Transport",
            "Last Action",
            "Last Error",
        ]
        .map(String::from),
    ];
    for r in rows {
        table.push([
            r.instance.clone(),
            r.driver.clone(),
            r.provisioner.clone(),
            r.verifier.clone(),
            r.transport.clone(),
            last_action_label(r.last_action.as_deref()).to_owned(),
            r.last_error.clone().unwrap_or_else(|| "<None>".to_owned()),
        ]);
    }
    let mut widths = [0usize; 7];
    for row in &table {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &table {
        for (i, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if i < 6 {
                let pad = widths[i] + 2 - cell.chars().count();
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
    out
}

pub(super) fn run(
    project: &Project,
    selected: &[String],
    args: &ListArgs,
    out: &mut impl Write,
) -> crate::Result<()> {
    let instances: Vec<&InstanceConfig> = selected
        .iter()
        .filter_map(|n| project.instance(n))
        .collect();
    if args.bare {
        let mut s = String::with_capacity(instances.len() * 32);
        for i in &instances {
            s.push_str(&i.name);
            s.push('\n');
        }
        return out.write_all(s.as_bytes()).map_err(super::output_error);
    }
    let rows = list_rows(project, &instances)?;
    if args.json {
        let mut s = serde_json::to_string_pretty(&rows).map_err(std::io::Error::other);
        if let Ok(s) = &mut s {
            s.push('\n');
        }
        return s
            .and_then(|s| out.write_all(s.as_bytes()))
            .map_err(super::output_error);
    }
    out.write_all(render_table(&rows).as_bytes())
        .map_err(super::output_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camel_case_as_thor() {
        assert_eq!(camel_case("ansible_playbook"), "AnsiblePlaybook");
        assert_eq!(camel_case("lxd"), "Lxd");
        assert_eq!(camel_case("ssh"), "Ssh");
        assert_eq!(camel_case("chef_infra"), "ChefInfra");
        assert_eq!(camel_case("LXD"), "LXD");
        assert_eq!(camel_case("LXD_api"), "LxdApi");
        assert_eq!(camel_case(""), "");
    }

    #[test]
    fn labels() {
        assert_eq!(last_action_label(None), "<Not Created>");
        assert_eq!(last_action_label(Some("setup")), "Set Up");
        assert_eq!(last_action_label(Some("destroy")), "<Unknown>");
        assert_eq!(last_action_label(Some("frobnicate")), "<Unknown>");
    }
}
