//! The converge cache: a converged instance published as an image, and later creates with the
//! same inputs starting from it and skipping the converge.
//!
//! Opt in per platform or suite with the driver key `converge_cache: true`, or for a run with
//! `--converge-cache`. The key is a SHA-256 over:
//! - the platform image's identity (LXD fingerprint, Docker image id), so a rebuilt base image
//!   misses;
//! - the driver and provisioner blocks (keys sorted; `converge_cache` and the loader's
//!   `kitchen_root`, `test_base_path` and `log_level` left out) and the suite's name;
//! - the content and relative path of every provisioner input file ([`input_paths`]).
//!
//! After a successful, uninterrupted converge the runner asks the driver to publish the
//! instance ([`Driver::publish_converged`]): an LXD image with the alias
//! `kitchen-cache-<project hash>-<key[..16]>`, or a Docker image tagged
//! `kitchen-cache-<project hash>:<key[..16]>`. Both carry the checkout's label (LXD property
//! `user.kitchen.project`, Docker label `io.kitchen-driver.project`, the keys the instances
//! carry) and the key ([`PROPERTY_KEY`], [`LABEL_KEY`]). A create whose key has an image starts
//! from it and the converge that follows is skipped, saying `converge cache hit <key>` in the
//! output and in the state ([`STATE_HIT`]).
//!
//! Bound: at most [`max_images`] images per checkout and runtime (default
//! [`DEFAULT_MAX_IMAGES`], `KITCHEN_CONVERGE_CACHE_MAX`), the least recently used evicted after
//! each publish. Last use is LXD's own `last_used_at` for LXD images, and for Docker the time
//! of the last hit recorded in `.kitchen/converge-cache.json` (Docker keeps none), else the
//! image's creation time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::{InstanceConfig, PluginConfig};
use crate::driver::Driver;
use crate::error::{Error, Result};
use crate::plugin::{InstanceContext, calculate_path};
use crate::state::{State, keys};

/// LXD image property holding the cache key.
pub const PROPERTY_KEY: &str = "kitchen.converge_cache.key";
/// Docker image label holding the cache key.
pub const LABEL_KEY: &str = "io.kitchen-driver.converge-cache";
/// State key: the key of the cached image this instance was created from.
pub const STATE_HIT: &str = "converge_cache_hit";
/// State key: the cached image create starts from (set by the runner before create).
pub const STATE_IMAGE: &str = "converge_cache_image";
/// Cached images kept per checkout and runtime when `KITCHEN_CONVERGE_CACHE_MAX` is unset.
pub const DEFAULT_MAX_IMAGES: usize = 8;

/// Keys of the driver and provisioner blocks that do not change what a converge produces.
const NOT_IN_KEY: &[&str] = &[
    "converge_cache",
    "kitchen_root",
    "test_base_path",
    "log_level",
];

/// Whether the cache applies to `instance`: its driver block says `converge_cache: true`, or
/// the run asked for it (`--converge-cache`).
pub fn enabled(instance: &InstanceConfig, flag: bool) -> bool {
    flag || instance.driver.get("converge_cache") == Some(&Value::Bool(true))
}

/// The cache bound per checkout and runtime: `KITCHEN_CONVERGE_CACHE_MAX`, else
/// [`DEFAULT_MAX_IMAGES`].
pub fn max_images() -> usize {
    std::env::var("KITCHEN_CONVERGE_CACHE_MAX")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_MAX_IMAGES)
}

/// The image name part that says which checkout and key: `<project hash>-<key[..16]>`.
pub fn image_suffix(kitchen_root: &Path, key: &str) -> String {
    format!(
        "{}-{}",
        crate::driver::naming::project_hash(kitchen_root),
        &key[..16.min(key.len())]
    )
}

/// A block with its keys sorted, recursively, and the keys that do not matter left out.
fn canonical(block: &PluginConfig) -> Value {
    fn sort(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let sorted: BTreeMap<&String, Value> =
                    m.iter().map(|(k, v)| (k, sort(v))).collect();
                Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    let kept: PluginConfig = block
        .iter()
        .filter(|(k, _)| !NOT_IN_KEY.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    sort(&Value::Object(kept))
}

/// Every string in `v`, recursively.
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(m) => m.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

/// The files and directories a converge of `instance` reads on the host, conservatively
/// (more is only a miss, less would be a wrong hit):
/// - every string of the provisioner block naming an existing path (absolute, or relative to
///   `kitchen_root`), other than the project and test directories themselves;
/// - what the provisioners find by lookup (test-kitchen's `calculate_path`: the suite's
///   directory, then `test_base_path`, then the project): `bootstrap.sh`, `data`,
///   `default.yml`, `ansible/default.yml`, `roles`, `group_vars`, `host_vars`,
///   `requirements.yml`;
/// - for `ansible_playbook` with no `roles_path` and no `roles` directory, the project itself,
///   which is then the role under test.
pub fn input_paths(
    instance: &InstanceConfig,
    kitchen_root: &Path,
    test_base_path: &Path,
) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    let mut values = Vec::new();
    for (k, v) in &instance.provisioner {
        if !NOT_IN_KEY.contains(&k.as_str()) {
            strings(v, &mut values);
        }
    }
    for s in values {
        if s.is_empty() || s.contains('\n') {
            continue;
        }
        let p = Path::new(&s);
        let p = if p.is_absolute() {
            p.to_path_buf()
        } else {
            kitchen_root.join(p)
        };
        if p != kitchen_root && p != test_base_path && p.exists() {
            paths.push(p);
        }
    }
    let lookups = [
        ("bootstrap.sh", true),
        ("data", false),
        ("default.yml", true),
        ("ansible/default.yml", true),
        ("roles", false),
        ("group_vars", false),
        ("host_vars", false),
        ("requirements.yml", true),
    ];
    let suite = &instance.suite;
    let mut roles_found = false;
    for (name, file) in lookups {
        if let Some(p) = calculate_path(test_base_path, suite, kitchen_root, name, file) {
            roles_found |= name == "roles";
            paths.push(p);
        }
    }
    if InstanceConfig::plugin_name(&instance.provisioner) == "ansible_playbook"
        && !instance.provisioner.contains_key("roles_path")
        && !roles_found
    {
        paths.push(kitchen_root.to_path_buf());
    }
    paths.sort();
    paths.dedup();
    paths
}

/// Feeds `path` (a file, or a directory tree in name order, following symlinks up to a depth)
/// into `h`, named relative to `root`. `.kitchen` and `.git` are skipped.
fn hash_path(h: &mut Sha256, root: &Path, path: &Path, depth: usize) -> std::io::Result<()> {
    let rel = path.strip_prefix(root).unwrap_or(path).to_string_lossy();
    let meta = std::fs::metadata(path)?;
    if meta.is_dir() {
        if depth > 32 {
            return Ok(());
        }
        h.update(format!("D {rel}\n"));
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                !matches!(
                    p.file_name().and_then(|n| n.to_str()),
                    Some(".kitchen" | ".git")
                )
            })
            .collect();
        entries.sort();
        for e in entries {
            hash_path(h, root, &e, depth + 1)?;
        }
    } else {
        let content = std::fs::read(path)?;
        h.update(format!("F {rel} {}\n", content.len()));
        h.update(&content);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            h.update(format!("M {:o}\n", meta.permissions().mode() & 0o777));
        }
    }
    Ok(())
}

/// The cache key of `instance` on `base_image` (the platform image's fingerprint or id).
///
/// # Errors
/// [`Error::Io`] naming an input file that cannot be read.
pub fn key(
    instance: &InstanceConfig,
    kitchen_root: &Path,
    test_base_path: &Path,
    base_image: &str,
) -> Result<String> {
    let mut h = Sha256::new();
    h.update(b"kitchen-driver converge cache 1\n");
    h.update(format!("image {base_image}\n"));
    h.update(format!("suite {}\n", instance.suite));
    h.update(format!("driver {}\n", canonical(&instance.driver)));
    h.update(format!(
        "provisioner {}\n",
        canonical(&instance.provisioner)
    ));
    for p in input_paths(instance, kitchen_root, test_base_path) {
        hash_path(&mut h, kitchen_root, &p, 0)
            .map_err(|e| Error::io("reading converge input", &p, e))?;
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Before create: looks the key up and, on a hit, records the image create starts from
/// ([`STATE_IMAGE`]) and the hit ([`STATE_HIT`]). A driver without a cache, or an instance
/// without the cache enabled, gets its keys cleared.
///
/// # Errors
/// The driver's errors reading images; unreadable input files.
pub async fn before_create(
    driver: &dyn Driver,
    ctx: &InstanceContext,
    state: &mut State,
    enabled: bool,
) -> Result<()> {
    state.remove(STATE_HIT);
    state.remove(STATE_IMAGE);
    if !enabled {
        return Ok(());
    }
    let Some(key) = current_key(driver, ctx).await? else {
        return Ok(());
    };
    match driver.find_converged(ctx, &key).await? {
        Some(image) => {
            ctx.output
                .info(&format!("converge cache hit {key}: creating from {image}"));
            record_use(&ctx.kitchen_root, &image);
            state.set(STATE_IMAGE, image);
            state.set(STATE_HIT, key);
        }
        None => ctx.output.info(&format!("converge cache miss {key}")),
    }
    Ok(())
}

/// The key for the instance now, or `None` when its driver has no converge cache.
async fn current_key(driver: &dyn Driver, ctx: &InstanceContext) -> Result<Option<String>> {
    let Some(base) = driver.base_image_id(ctx).await? else {
        ctx.output.warn(&format!(
            "converge_cache: the {} driver has no converge cache; converging as usual",
            driver.name()
        ));
        return Ok(None);
    };
    key(&ctx.instance, &ctx.kitchen_root, &ctx.test_base_path, &base).map(Some)
}

/// What the converge step does about the cache, decided before the provisioner runs.
#[derive(Debug)]
pub enum ConvergePlan {
    /// Created from the image of this key and nothing changed since: skip the converge.
    Skip(String),
    /// Converge; then publish under this key (when the cache is on) unless it exists.
    Converge(Option<String>),
}

/// Before converge: skip when the instance was created from the cached image of the key its
/// inputs still have and has not been converged since; else converge, and publish under the
/// key computed now (the inputs the converge reads).
///
/// # Errors
/// As [`before_create`].
pub async fn before_converge(
    driver: &dyn Driver,
    ctx: &InstanceContext,
    state: &mut State,
    enabled: bool,
) -> Result<ConvergePlan> {
    if !enabled {
        return Ok(ConvergePlan::Converge(None));
    }
    let Some(key) = current_key(driver, ctx).await? else {
        return Ok(ConvergePlan::Converge(None));
    };
    let fresh = state.get_str(keys::LAST_ACTION) == Some("create");
    if fresh && state.get_str(STATE_HIT) == Some(key.as_str()) {
        ctx.output
            .info(&format!("converge cache hit {key}: converge skipped"));
        return Ok(ConvergePlan::Skip(key));
    }
    state.remove(STATE_HIT);
    Ok(ConvergePlan::Converge(Some(key)))
}

/// After a successful converge: publishes the instance under `key` unless an image has it,
/// then evicts the least recently used images beyond [`max_images`]. `interrupted` (Ctrl-C
/// or fail-fast during the converge) publishes nothing. A failure to publish is a warning:
/// the converge itself succeeded.
pub async fn after_converge(
    driver: &dyn Driver,
    ctx: &InstanceContext,
    state: &State,
    key: &str,
    interrupted: bool,
) {
    if interrupted {
        ctx.output
            .warn("converge cache: the run was interrupted; nothing published");
        return;
    }
    match driver.find_converged(ctx, key).await {
        Ok(Some(image)) => {
            ctx.output
                .info(&format!("converge cache: {image} already holds {key}"));
            return;
        }
        Ok(None) => {}
        Err(e) => {
            ctx.output
                .warn(&format!("converge cache: looking up {key} failed: {e}"));
            return;
        }
    }
    let started = std::time::Instant::now();
    match driver.publish_converged(ctx, state, key).await {
        Ok(image) => {
            record_use(&ctx.kitchen_root, &image);
            ctx.output.info(&format!(
                "converge cache: published {image} ({key}) in {:.1}s",
                started.elapsed().as_secs_f64()
            ));
        }
        Err(e) => {
            ctx.output
                .warn(&format!("converge cache: publishing {key} failed: {e}"));
            return;
        }
    }
    match driver.evict_converged(ctx, max_images()).await {
        Ok(evicted) => {
            for image in evicted {
                ctx.output.info(&format!(
                    "converge cache: evicted {image} (least recently used; at most {} kept)",
                    max_images()
                ));
            }
        }
        Err(e) => ctx
            .output
            .warn(&format!("converge cache: eviction failed: {e}")),
    }
}

/// One cached image, as `cache list` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedImage {
    /// `lxd` or `docker`.
    pub runtime: &'static str,
    /// What `cache clear` removes: the LXD fingerprint or the Docker image id.
    pub id: String,
    /// The alias or tag.
    pub name: String,
    /// The cache key.
    pub key: String,
    /// The instance it was published from.
    pub instance: String,
    /// Size in bytes.
    pub size: u64,
    /// Creation time, seconds since the epoch.
    pub created: i64,
    /// Last use (a create from it, or its publication), seconds since the epoch.
    pub last_used: i64,
}

/// `.kitchen/converge-cache.json`: image name -> last hit (seconds since the epoch), for
/// runtimes that keep no last-use time. Read-modify-write without a lock: a lost update only
/// makes an image look older to LRU eviction.
fn index_path(kitchen_root: &Path) -> PathBuf {
    kitchen_root.join(".kitchen").join("converge-cache.json")
}

/// The last uses recorded for this checkout (empty when none).
pub fn recorded_uses(kitchen_root: &Path) -> BTreeMap<String, i64> {
    std::fs::read(index_path(kitchen_root))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Records a use of `image` now.
pub fn record_use(kitchen_root: &Path, image: &str) {
    let mut uses = recorded_uses(kitchen_root);
    uses.insert(image.to_string(), chrono::Utc::now().timestamp());
    let path = index_path(kitchen_root);
    let tmp = path.with_extension(format!("json.{}", std::process::id()));
    if let Some(dir) = path.parent()
        && std::fs::create_dir_all(dir).is_ok()
        && serde_json::to_vec_pretty(&uses)
            .ok()
            .is_some_and(|b| std::fs::write(&tmp, b).is_ok())
    {
        let _ = std::fs::rename(&tmp, &path);
    }
}

/// Which of `images` (one runtime, one checkout) to evict to keep `max`: the least recently
/// used first.
pub fn to_evict(images: &[CachedImage], max: usize) -> Vec<CachedImage> {
    let mut sorted = images.to_vec();
    sorted.sort_by_key(|i| std::cmp::Reverse((i.last_used, i.created)));
    sorted.into_iter().skip(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn instance(provisioner: Value) -> InstanceConfig {
        InstanceConfig {
            name: "default-x".into(),
            suite: "default".into(),
            platform: "x".into(),
            driver: json!({"name": "lxd", "image": "i", "converge_cache": true})
                .as_object()
                .unwrap()
                .clone(),
            provisioner: provisioner.as_object().unwrap().clone(),
            verifier: PluginConfig::new(),
            transport: PluginConfig::new(),
            lifecycle: PluginConfig::new(),
            origins: Default::default(),
        }
    }

    #[test]
    fn the_key_follows_every_input_byte_and_ignores_key_order_and_the_switch() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        let tbp = root.join("test/integration");
        std::fs::create_dir_all(root.join("roles/r/tasks")).unwrap();
        std::fs::create_dir_all(tbp.join("default")).unwrap();
        std::fs::write(root.join("roles/r/tasks/main.yml"), "- debug: {}\n").unwrap();
        std::fs::write(tbp.join("default/default.yml"), "- hosts: all\n").unwrap();
        let inst = instance(
            json!({"name": "ansible_playbook", "hosts": "a", "extra_vars": {"b": 1, "a": 2}}),
        );
        let k1 = key(&inst, root, &tbp, "fp1").unwrap();
        assert_eq!(k1.len(), 64);
        // Same inputs, keys written in another order, the switch off: the same key.
        let mut reordered = instance(
            json!({"extra_vars": {"a": 2, "b": 1}, "hosts": "a", "name": "ansible_playbook"}),
        );
        reordered.driver.remove("converge_cache");
        assert_eq!(key(&reordered, root, &tbp, "fp1").unwrap(), k1);
        // Another base image, another config value, one byte of a role file: all miss.
        assert_ne!(key(&inst, root, &tbp, "fp2").unwrap(), k1);
        let other = instance(
            json!({"name": "ansible_playbook", "hosts": "b", "extra_vars": {"b": 1, "a": 2}}),
        );
        assert_ne!(key(&other, root, &tbp, "fp1").unwrap(), k1);
        std::fs::write(root.join("roles/r/tasks/main.yml"), "- debug: {}\n ").unwrap();
        assert_ne!(key(&inst, root, &tbp, "fp1").unwrap(), k1);
    }

    #[test]
    fn inputs_are_the_configured_paths_and_the_lookups() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        let tbp = root.join("test/integration");
        std::fs::create_dir_all(tbp.join("default/data")).unwrap();
        std::fs::write(tbp.join("default/bootstrap.sh"), "echo\n").unwrap();
        std::fs::write(root.join("extra.sh"), "echo\n").unwrap();
        let inst = instance(json!({"name": "shell", "script": "extra.sh", "sudo": false}));
        let paths = input_paths(&inst, root, &tbp);
        assert_eq!(
            paths,
            vec![
                root.join("extra.sh"),
                tbp.join("default/bootstrap.sh"),
                tbp.join("default/data"),
            ]
        );
        // Ansible with no roles directory: the project is the role, all of it counts.
        let ansible = instance(json!({"name": "ansible_playbook"}));
        assert!(input_paths(&ansible, root, &tbp).contains(&root.to_path_buf()));
    }

    #[test]
    fn eviction_keeps_the_most_recently_used() {
        let img = |name: &str, last_used: i64| CachedImage {
            runtime: "lxd",
            id: name.into(),
            name: name.into(),
            key: name.into(),
            instance: "i".into(),
            size: 0,
            created: 0,
            last_used,
        };
        let all = [img("a", 3), img("b", 1), img("c", 2)];
        let names: Vec<String> = to_evict(&all, 2).into_iter().map(|i| i.name).collect();
        assert_eq!(names, ["b"]);
        assert!(to_evict(&all, 3).is_empty());
    }

    #[test]
    fn the_switch_is_the_driver_key_or_the_flag() {
        let mut inst = instance(json!({"name": "shell"}));
        assert!(enabled(&inst, false));
        inst.driver.remove("converge_cache");
        assert!(!enabled(&inst, false));
        assert!(enabled(&inst, true));
    }
}
