//! What kitchen-driver names the containers it creates, on both runtimes:
//! `kitchen-<hash of kitchen_root>-<instance>`, so two checkouts of one project never share
//! a container, and a name says which project owns it.
//!
//! A name is only a hint. What makes a resource *this checkout's* is its owner mark: the
//! Docker label [`OWNER_LABEL`] (containers, and the images kitchen-driver builds) or the LXD
//! config key [`LXD_OWNER_KEY`], each holding the checkout's `kitchen_root`. Anything that
//! creates a resource for a checkout (a driver, a converge cache) sets that mark, so
//! `destroy --orphans` (see [`crate::orphans`]) and the test guards find it.

use std::path::Path;

/// Docker label holding the checkout (`kitchen_root`) that created a container or built an
/// image. Set it on everything kitchen-driver creates in Docker for a checkout.
pub const OWNER_LABEL: &str = "io.kitchen-driver.project";
/// Docker label holding the instance name a container was created for.
pub const INSTANCE_LABEL: &str = "io.kitchen-driver.instance";
/// LXD config key holding the checkout (`kitchen_root`) that created an instance.
pub const LXD_OWNER_KEY: &str = "user.kitchen.project";
/// LXD config key holding the kitchen instance name an LXD instance was created for.
pub const LXD_INSTANCE_KEY: &str = "user.kitchen.instance";
/// The repository of the images the Docker driver builds (`dockerfile`, kitchen-docker's
/// `provision_command`): `kitchen-driver-build:<content hash>`.
pub const BUILD_IMAGE_REPO: &str = "kitchen-driver-build";

/// The name a driver gives the container of `instance`, for the drivers whose names can
/// collide (`lxd`, `docker` and their test-kitchen plugin names); `None` for other drivers.
pub fn runtime_name(driver: &str, kitchen_root: &Path, instance: &str) -> Option<String> {
    match driver {
        "lxd" | "lxd_api" => Some(lxd_instance_name(kitchen_root, instance)),
        "docker" | "docker_api" => Some(container_name(kitchen_root, instance)),
        _ => None,
    }
}

use sha2::{Digest, Sha256};

/// Characters Docker accepts in a container name (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`).
fn sanitize_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// A valid hostname label from an instance name: lowercase, `[a-z0-9-]`, at most 63.
pub(crate) fn sanitize_hostname(s: &str) -> String {
    let mut h: String = s
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    h.truncate(63);
    let h = h.trim_matches('-').to_string();
    if h.is_empty() { "kitchen".into() } else { h }
}

/// First 8 hex digits of SHA-256 of the project path: names unique per checkout.
pub fn project_hash(kitchen_root: &Path) -> String {
    let digest = Sha256::digest(kitchen_root.to_string_lossy().as_bytes());
    digest.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

/// The Docker container name for an instance of the project at `kitchen_root`.
pub fn container_name(kitchen_root: &Path, instance: &str) -> String {
    sanitize_name(&format!(
        "kitchen-{}-{instance}",
        project_hash(kitchen_root)
    ))
}

/// The LXD instance name for an instance of the project at `kitchen_root`: a valid hostname
/// (`[a-z0-9-]`, at most 63 characters, starting with a letter).
pub fn lxd_instance_name(kitchen_root: &Path, instance: &str) -> String {
    let mut tail: String = instance
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let prefix = format!("kitchen-{}-", project_hash(kitchen_root));
    let room = 63 - prefix.len();
    if tail.len() > room {
        // Keep names unique when truncating: the end is a hash of the full instance name.
        let h = project_hash(Path::new(instance));
        tail.truncate(room - 7);
        tail = format!("{}-{}", tail.trim_end_matches('-'), &h[..6]);
    }
    let name = format!("{prefix}{tail}");
    name.trim_end_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_per_project_and_valid() {
        let a = container_name(Path::new("/a"), "default-Ubuntu 2204");
        let b = container_name(Path::new("/b"), "default-Ubuntu 2204");
        assert_ne!(a, b);
        assert!(
            a.starts_with("kitchen-") && a.ends_with("-default-Ubuntu-2204"),
            "{a}"
        );
        assert_eq!(sanitize_hostname("Suite_X.Y"), "suite-x-y");
    }

    #[test]
    fn lxd_names_collide_where_docker_names_may_not() {
        let root = Path::new("/p");
        let lxd = |i| runtime_name("lxd", root, i).unwrap();
        let docker = |i| runtime_name("docker", root, i).unwrap();
        assert_eq!(lxd("default-CentOS-7"), lxd("default-centos-7"));
        assert_ne!(docker("default-CentOS-7"), docker("default-centos-7"));
        assert_eq!(lxd("default-a+b"), lxd("default-a-b"));
        assert_eq!(docker("default-a+b"), docker("default-a-b"));
        assert_eq!(runtime_name("vagrant", root, "x"), None);
    }

    #[test]
    fn names_are_valid_hostnames_unique_per_project() {
        let a = lxd_instance_name(std::path::Path::new("/a"), "default-Ubuntu 2204");
        let b = lxd_instance_name(std::path::Path::new("/b"), "default-Ubuntu 2204");
        assert_ne!(a, b);
        assert!(
            a.starts_with("kitchen-") && a.ends_with("-default-ubuntu-2204"),
            "{a}"
        );
        let long = "x".repeat(100);
        let l1 = lxd_instance_name(std::path::Path::new("/a"), &long);
        let l2 = lxd_instance_name(std::path::Path::new("/a"), &format!("{long}y"));
        assert!(l1.len() <= 63 && l2.len() <= 63, "{l1}");
        assert_ne!(l1, l2);
        for n in [&a, &l1] {
            assert!(
                n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            );
            assert!(!n.ends_with('-'));
        }
    }
}
