//! Keys that a plugin block carries but kitchen-driver does not use: each one is named to the
//! user, with why, once per run, instead of being silently dropped.
//!
//! Plugin blocks are deserialized in one place (`driver::parse_block`), which reports every
//! key its typed configuration ignored (`serde_ignored`) to [`collect`]'s recorder. The
//! preflight check ([`crate::lifecycle::preflight`]) resolves an instance's plugins inside
//! [`collect`] and warns about each [`UnusedKey`]. Keys that test-kitchen forces into every
//! block (`name`, `kitchen_root`, ...) are not reported. A key known from another plugin
//! (kitchen-docker, kitchen-dokken, kitchen-lxd, kitchen-ansible, test-kitchen's SSH transport)
//! gets its own reason from [`why`]; any other is reported as unknown.

use std::cell::RefCell;

/// A key of a plugin block that has no effect here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnusedKey {
    /// `driver`, `provisioner`, `verifier` or `transport`.
    pub kind: &'static str,
    /// The plugin's name (`docker`, `ansible_playbook`, ...).
    pub plugin: String,
    /// The key, with its path inside the block for nested keys (`run_options.tmpfs`).
    pub key: String,
    /// Why it has no effect, and what to use instead when there is something.
    pub why: String,
}

impl std::fmt::Display for UnusedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} `{}` key `{}` is ignored: {}",
            self.kind, self.plugin, self.key, self.why
        )
    }
}

/// Keys test-kitchen puts in every plugin block itself.
const FORCED: &[&str] = &[
    "name",
    "kitchen_root",
    "test_base_path",
    "log_level",
    "debug",
];

/// (kind, plugin, key path) as the deserializer reported it.
type Recorded = Vec<(&'static str, String, String)>;

thread_local! {
    static RECORDER: RefCell<Option<Recorded>> = const { RefCell::new(None) };
}

/// Records that the `kind` block of plugin `plugin` had the unused key `path` (called by the
/// one place plugin blocks are deserialized; a no-op outside [`collect`]).
pub(crate) fn record(kind: &'static str, plugin: &str, path: String) {
    RECORDER.with(|r| {
        if let Some(v) = r.borrow_mut().as_mut() {
            v.push((kind, plugin.to_string(), path));
        }
    });
}

/// Runs `f` (which resolves plugins) and returns its result with the unused keys the plugins'
/// configurations reported, forced keys left out, each with its reason.
pub fn collect<T>(f: impl FnOnce() -> T) -> (T, Vec<UnusedKey>) {
    RECORDER.with(|r| *r.borrow_mut() = Some(Vec::new()));
    let out = f();
    let recorded = RECORDER.with(|r| r.borrow_mut().take()).unwrap_or_default();
    let mut keys: Vec<UnusedKey> = Vec::new();
    for (kind, plugin, key) in recorded {
        let top = key.split('.').next().unwrap_or_default();
        if FORCED.contains(&top) || keys.iter().any(|k| k.kind == kind && k.key == key) {
            continue;
        }
        keys.push(UnusedKey {
            kind,
            why: why(kind, &plugin, &key),
            plugin,
            key,
        });
    }
    (out, keys)
}

/// The keys of an instance's transport block that have no effect: all of them, since every
/// instance is reached through its runtime's exec and file APIs.
pub fn transport_keys(plugin: &str, block: &crate::config::PluginConfig) -> Vec<UnusedKey> {
    block
        .keys()
        .filter(|k| !FORCED.contains(&k.as_str()))
        .map(|k| UnusedKey {
            kind: "transport",
            plugin: plugin.to_string(),
            key: k.clone(),
            why: "kitchen-driver reaches the instance through the runtime's exec and file APIs, not SSH or WinRM, so transport settings have no effect".into(),
        })
        .collect()
}

/// Why `key` of plugin `plugin` (a `kind` block) has no effect (pure: unit-tested).
pub fn why(kind: &str, plugin: &str, key: &str) -> String {
    let top = key.split('.').next().unwrap_or(key);
    let known = match (kind, top) {
        ("driver", "use_sudo" | "socket" | "binary") => Some(
            "the Docker engine is reached through its API (bollard), at `docker_host_url` or DOCKER_HOST as the docker CLI reads it",
        ),
        (
            "driver",
            "username"
            | "password"
            | "private_key"
            | "public_key"
            | "ssh_key"
            | "port"
            | "forward_agent"
            | "ssh_timeout"
            | "use_internal_docker_network"
            | "use_ssh_agent",
        ) => Some("no SSH server is used: the runtime's exec and file APIs are the transport"),
        ("driver", "http_proxy" | "https_proxy" | "no_proxy") => Some(
            "test-kitchen copies it to the provisioner and verifier, which export it; the driver itself makes no network calls",
        ),
        (
            "driver",
            "platform"
            | "disable_upstart"
            | "build_context"
            | "build_options"
            | "use_cache"
            | "skip_preparation"
            | "instance_name"
            | "pid_one_command"
            | "intermediate_instructions"
            | "chef_image"
            | "chef_version"
            | "docker_registry"
            | "pull_platform_image"
            | "pull_chef_image"
            | "image_prefix"
            | "dns"
            | "dns_search"
            | "security_opt"
            | "userns_host"
            | "docker_info",
        ) => Some(
            "a kitchen-docker/kitchen-dokken setting this driver has no counterpart for: it runs `image` (or builds `dockerfile`) as given",
        ),
        ("driver", "run_options") => Some(
            "this `docker run` option has no counterpart in the driver (translated: tmpfs, volume, cap-add, cap-drop, env, label, privileged, memory, cpus, user, hostname, network, publish)",
        ),
        (
            "driver",
            "wait_for_ssh"
            | "wait_for_transport"
            | "ip_address"
            | "fix_chef_install"
            | "fix_hostnamectl_bug"
            | "enable_wait_for_ssh_login"
            | "ipv4"
            | "stateful_snapshot"
            | "public_key_path"
            | "never_destroy"
            | "lxd_unix_socket_path",
        ) => Some(
            "a kitchen-lxd setting this driver has no counterpart for (readiness is LXD's own state plus systemd, files go through the API)",
        ),
        (
            "provisioner",
            "require_ansible_repo"
            | "require_ansible_omnibus"
            | "require_ansible_source"
            | "ansible_version"
            | "ansible_package_name"
            | "ansible_apt_repo"
            | "ansible_yum_repo"
            | "require_chef_for_busser"
            | "require_ruby_for_busser"
            | "require_pip"
            | "require_pip3"
            | "require_windows_support"
            | "chef_bootstrap_url"
            | "install_source_rev"
            | "ansible_source_url"
            | "python_sles_repo"
            | "ansible_sles_repo"
            | "enable_yum_epel"
            | "ansible_sudo"
            | "custom_pre_install_command"
            | "custom_post_install_command"
            | "update_package_repos"
            | "shell_command",
        ) => Some(
            "kitchen-ansible installs Ansible in the instance; here Ansible runs on the host and nothing is installed",
        ),
        (
            "provisioner",
            "ansible_inventory"
            | "ansible_host_key_checking"
            | "ansible_connection"
            | "ansible_limit"
            | "ansible_platform"
            | "ansible_sudo_flags"
            | "sudo"
            | "sudo_command"
            | "command_prefix",
        ) if plugin == "ansible_playbook" => Some(
            "Ansible runs on the host against a generated inventory whose `localhost` is the instance; use `hosts`, `extra_vars` or `ansible_extra_flags`",
        ),
        (
            "provisioner",
            "role_name"
            | "additional_copy_path"
            | "additional_copy_role_path"
            | "additional_ssh_private_keys"
            | "ignore_paths_from_root"
            | "ignore_extensions_from_root"
            | "recursive_additional_copy_path"
            | "copy_playbook_only",
        ) => Some(
            "kitchen-ansible copies files into the instance; here Ansible reads the project in place, with `roles_path` for roles",
        ),
        (
            "verifier",
            "busser_bin" | "version" | "ruby_bindir" | "root_path" | "sudo" | "sudo_command"
            | "http_proxy" | "https_proxy",
        ) if plugin == "busser" => {
            Some("busser's bats runner is replaced by running `bats` directly in the instance")
        }
        _ => None,
    };
    match known {
        Some(reason) => reason.to_string(),
        None => format!(
            "it is not a key of kitchen-driver's `{plugin}` {kind} (a typo, or a key of another plugin), so it has no effect"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forced_keys_are_not_reported_and_others_have_reasons() {
        let (n, keys) = collect(|| {
            record("driver", "docker", "kitchen_root".into());
            record("driver", "docker", "use_sudo".into());
            record("driver", "docker", "use_sudo".into());
            record("driver", "docker", "imgae".into());
            record(
                "provisioner",
                "ansible_playbook",
                "require_ansible_repo".into(),
            );
            7
        });
        assert_eq!(n, 7);
        let shown: Vec<String> = keys.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 3, "{shown:#?}");
        assert!(shown[0].starts_with("driver `docker` key `use_sudo` is ignored: the Docker engine is reached through its API"), "{shown:#?}");
        assert!(
            shown[1].contains(
                "key `imgae` is ignored: it is not a key of kitchen-driver's `docker` driver"
            ),
            "{shown:#?}"
        );
        assert!(
            shown[2].contains("kitchen-ansible installs Ansible in the instance"),
            "{shown:#?}"
        );
        // Outside `collect`, nothing is recorded.
        record("driver", "docker", "x".into());
        let ((), keys) = collect(|| ());
        assert!(keys.is_empty());
    }
}
