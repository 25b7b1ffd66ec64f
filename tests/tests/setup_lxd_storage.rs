//! `scripts/setup-lxd-storage` (the LXD storage part of `scripts/setup-host`) on the real LXD
//! daemon, against a profile and a pool of the test's own, so the host's `default` profile is
//! never touched: an instance already on the `dir` pool keeps working, the profile moves to the
//! copy-on-write pool once nothing relies on it, new instances land there, and
//! `KITCHEN_LXD_POOL=dir` moves it back.

use std::path::PathBuf;
use std::process::{Command, Output};

use workspace_tests::unique_name;

fn lxc(args: &[&str]) -> Output {
    Command::new("lxc").args(args).output().expect("run lxc")
}

fn lxc_ok(args: &[&str]) -> String {
    let out = lxc(args);
    assert!(
        out.status.success(),
        "lxc {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Removes the test's instances, profile and pool (in that order) when dropped.
struct Created {
    instances: Vec<String>,
    profile: String,
    pool: String,
}

impl Drop for Created {
    fn drop(&mut self) {
        for i in &self.instances {
            let _ = lxc(&["delete", "--force", i]);
        }
        let _ = lxc(&["profile", "delete", &self.profile]);
        let _ = lxc(&["storage", "delete", &self.pool]);
    }
}

fn setup_storage(created: &Created, extra_env: &[(&str, &str)]) -> String {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/setup-lxd-storage");
    let out = Command::new(script)
        .env("KITCHEN_LXD_PROFILE", &created.profile)
        .env("KITCHEN_LXD_POOL_NAME", &created.pool)
        // The smallest loop file the script accepts: it is sparse, and removed by the guard.
        .env("KITCHEN_LXD_POOL_SIZE", "4")
        .envs(extra_env.iter().copied())
        .output()
        .expect("run scripts/setup-lxd-storage");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "setup-lxd-storage failed:\n{text}");
    text
}

fn root_pool(profile: &str) -> String {
    lxc_ok(&["profile", "device", "get", profile, "root", "pool"])
        .trim()
        .to_string()
}

fn instance_pool(pool_candidates: &[&str], instance: &str) -> Option<String> {
    pool_candidates.iter().find_map(|pool| {
        let vols = lxc_ok(&["storage", "volume", "list", pool, "--format", "csv"]);
        vols.lines()
            .any(|l| l.starts_with(&format!("container,{instance},")))
            .then(|| pool.to_string())
    })
}

#[test]
fn lxd_setup_storage_keeps_a_dir_instance_working_and_moves_the_profile_once_free() {
    let mut created = Created {
        instances: vec![],
        profile: unique_name("prof"),
        pool: unique_name("pool"),
    };
    lxc_ok(&["profile", "create", &created.profile]);
    // The old set-up: the profile's root on the `dir` pool `default`, an instance relying on it.
    lxc_ok(&[
        "profile",
        "device",
        "add",
        &created.profile,
        "root",
        "disk",
        "path=/",
        "pool=default",
    ]);
    let old = unique_name("old");
    created.instances.push(old.clone());
    lxc_ok(&["init", "kitchen/busybox", &old, "-p", &created.profile]);

    let first = setup_storage(&created, &[]);
    assert!(
        first.contains(&format!("did: created LXD storage pool {}", created.pool)),
        "{first}"
    );
    assert!(
        first.contains("NOTE: the") && first.contains(&old),
        "the note names the instance that keeps the profile on dir:\n{first}"
    );
    assert!(lxc_ok(&["storage", "show", &created.pool]).contains("driver: btrfs"));
    assert_eq!(
        root_pool(&created.profile),
        "default",
        "LXD refuses to move it: left alone"
    );
    // The existing instance still starts and runs commands on its dir pool.
    lxc_ok(&["start", &old]);
    assert_eq!(
        lxc_ok(&["exec", &old, "--", "echo", "alive"]).trim(),
        "alive"
    );
    assert_eq!(
        instance_pool(&["default"], &old).as_deref(),
        Some("default")
    );

    // Once nothing relies on the profile's root, a rerun moves it; new instances are on btrfs.
    lxc_ok(&["delete", "--force", &old]);
    let second = setup_storage(&created, &[]);
    assert!(second.contains("found: storage pool"), "{second}");
    assert!(
        second.contains("root disk moved from pool default"),
        "{second}"
    );
    assert_eq!(root_pool(&created.profile), created.pool);
    let new = unique_name("new");
    created.instances.push(new.clone());
    lxc_ok(&["init", "kitchen/busybox", &new, "-p", &created.profile]);
    assert_eq!(
        instance_pool(&[&created.pool, "default"], &new).as_deref(),
        Some(created.pool.as_str())
    );
    lxc_ok(&["delete", "--force", &new]);

    // Idempotent: a third run changes nothing.
    let third = setup_storage(&created, &[]);
    assert!(!third.contains("did:"), "{third}");

    // KITCHEN_LXD_POOL=dir: the old behaviour.
    let back = setup_storage(&created, &[("KITCHEN_LXD_POOL", "dir")]);
    assert!(back.contains("KITCHEN_LXD_POOL=dir"), "{back}");
    assert_eq!(root_pool(&created.profile), "default");
}

#[test]
fn lxd_setup_storage_rejects_an_unknown_pool_mode_with_the_variable_named() {
    let created = Created {
        instances: vec![],
        profile: unique_name("prof"),
        pool: unique_name("pool"),
    };
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/setup-lxd-storage");
    let out = Command::new(script)
        .env("KITCHEN_LXD_PROFILE", &created.profile)
        .env("KITCHEN_LXD_POOL_NAME", &created.pool)
        .env("KITCHEN_LXD_POOL", "zfs-please")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("KITCHEN_LXD_POOL must be 'auto' or 'dir'"),
        "{err}"
    );
    assert!(lxc(&["storage", "show", &created.pool]).status.code() != Some(0));
}
