//! From the merged kitchen.yml data to instances: test-kitchen's `DataMunger`
//! (lib/kitchen/data_munger.rb) and `Config#filter_instances` (lib/kitchen/config.rb), rule by
//! rule and in the same order.

use std::collections::HashMap;
use std::path::Path;

use super::InstanceConfig;
use super::error::ConfigError;
use super::filter::{NameKind, PlatformFilter, PlatformPattern};
use super::value::{Map, Node, Value, map_to_json};

/// The values test-kitchen forces into plugin blocks (`Kitchen::Config#kitchen_config`).
#[derive(Debug, Clone)]
pub(crate) struct KitchenConfig {
    pub kitchen_root: String,
    pub test_base_path: String,
    pub log_level: String,
    pub debug: bool,
}

impl KitchenConfig {
    fn get(&self, key: &str) -> Option<Node> {
        match key {
            "kitchen_root" => Some(Node::str(&self.kitchen_root)),
            "test_base_path" => Some(Node::str(&self.test_base_path)),
            "log_level" => Some(Node::str(&self.log_level)),
            "debug" => Some(Node::new(Value::Bool(self.debug))),
            _ => None,
        }
    }
}

/// The plugin kinds, in the order test-kitchen builds them.
const PLUGINS: [&str; 5] = [
    "driver",
    "provisioner",
    "verifier",
    "transport",
    "lifecycle",
];

struct Platform {
    /// The `name` value as written (compared raw to find the platform's data).
    raw: Value,
    /// `name.to_s`.
    name: String,
    /// The Ruby class of the name (a Symbol name never equals an exact filter string).
    kind: NameKind,
    /// Where the name was written (for errors).
    name_node: Node,
    /// Index in `platforms`.
    idx: usize,
    /// Index of the first platform with an equal name (test-kitchen's `platform_data_for`).
    data_idx: usize,
}

struct Suite {
    name: String,
    /// Where the name was written (for errors about the instances it makes).
    name_pos: Option<super::value::Pos>,
    filter: PlatformFilter,
    data_idx: usize,
}

/// Builds every instance from the merged data, in test-kitchen's order.
///
/// # Errors
/// [`ConfigError::Type`] where test-kitchen would fail (a suite without a name, a non-string
/// include, a list where a mapping is needed ...), [`ConfigError::Regex`] for an include or
/// exclude regex this engine cannot compile.
pub(crate) fn instances(
    mut data: Map,
    kc: &KitchenConfig,
) -> Result<Vec<InstanceConfig>, ConfigError> {
    let mut platforms = take_list(&mut data, "platforms")?;
    let mut suites = take_list(&mut data, "suites")?;

    legacy_normalize(&mut data, &mut platforms, &mut suites)?;

    let platform_objs = platforms
        .iter()
        .enumerate()
        .map(|(i, p)| platform_obj(p, i))
        .collect::<Result<Vec<_>, _>>()?;
    let mut platform_objs = platform_objs;
    first_index_by_name(platform_objs.iter_mut().map(|p| (&p.raw, &mut p.data_idx)));

    let mut suite_objs = Vec::with_capacity(suites.len());
    let mut suite_raw = Vec::with_capacity(suites.len());
    for (i, s) in suites.iter().enumerate() {
        let (obj, raw) = suite_obj(s, i)?;
        suite_objs.push(obj);
        suite_raw.push(raw);
    }
    first_index_by_name(
        suite_raw
            .iter()
            .zip(suite_objs.iter_mut())
            .map(|(r, s)| (r, &mut s.data_idx)),
    );

    let kitchen = match data.get("kitchen") {
        Some(Node {
            v: Value::Map(m), ..
        }) => m.clone(),
        Some(n) => return Err(ConfigError::ty(n, "kitchen", "a mapping")),
        None => Map::new(),
    };
    let common: Vec<Map> = PLUGINS
        .iter()
        .map(|k| normalized_block(data.get(k), k, "common", k))
        .collect::<Result<_, _>>()?;

    // Each platform's and suite's blocks, normalized once (not once per instance), lazily
    // as test-kitchen does: a platform no suite uses is never looked at.
    let mut platform_blocks: Vec<Option<Vec<Map>>> = vec![None; platforms.len()];
    let mut suite_blocks: Vec<Option<Vec<Map>>> = vec![None; suites.len()];

    let mut out = Vec::new();
    // Where each instance's suite and platform names were written, for collision errors.
    let mut origins: Vec<(&Suite, &Platform)> = Vec::new();
    for suite in &suite_objs {
        for platform in &platform_objs {
            if !suite.filter.matches(&platform.name, platform.kind) {
                continue;
            }
            if platform.kind == NameKind::Other {
                // The default transport is `/^win/i.match?(platform.name)`: a TypeError on
                // anything but a String or Symbol.
                return Err(ConfigError::ty(
                    &platform.name_node,
                    format!("platforms[{}].name", platform.idx),
                    "a string (test-kitchen fails on other platform names; quote it)",
                ));
            }
            let pblocks = cached_blocks(
                &mut platform_blocks,
                &platforms,
                platform.data_idx,
                "platform",
                "platforms",
            )?;
            let sblocks = cached_blocks(
                &mut suite_blocks,
                &suites,
                suite.data_idx,
                "suite",
                "suites",
            )?;
            let mut blocks: Vec<Map> = Vec::with_capacity(PLUGINS.len());
            let mut written = super::origins::ConfigOrigins::default();
            for (k, key) in PLUGINS.iter().enumerate() {
                let defaults = default_block(key, &platform.name);
                let (pb, sb) = (&platform_blocks[pblocks], &suite_blocks[sblocks]);
                let (Some(pb), Some(sb)) = (pb, sb) else {
                    continue; // filled by cached_blocks just above
                };
                let ctx = format!("{key}.");
                let merge = |a: &Map, b: &Map| a.rmerge(b).map_err(|c| ConfigError::merge(c, &ctx));
                let merged = merge(&defaults, &merge(&common[k], &merge(&pb[k], &sb[k])?)?)?;
                written.record_block(
                    key,
                    &[
                        (String::new(), &common[k]),
                        (format!("platforms[{}].", platform.data_idx), &pb[k]),
                        (format!("suites[{}].", suite.data_idx), &sb[k]),
                    ],
                );
                blocks.push(finish_block(
                    key,
                    merged,
                    kc,
                    &kitchen,
                    &suite.name,
                    &platform.name,
                )?);
            }
            let mut it = blocks.into_iter().map(|m| map_to_json(&m));
            let mut next = || it.next().unwrap_or_default();
            origins.push((suite, platform));
            out.push(InstanceConfig {
                name: instance_name(&suite.name, &platform.name),
                suite: suite.name.clone(),
                platform: platform.name.clone(),
                driver: next(),
                provisioner: next(),
                verifier: next(),
                transport: next(),
                lifecycle: next(),
                origins: written,
            });
        }
    }
    refuse_name_collisions(&out, &origins, Path::new(&kc.kitchen_root))?;
    Ok(out)
}

/// Refuses two instances (of different names) whose containers would get one name on their
/// runtime: LXD lowercases names and turns anything but letters and digits into `-`, so
/// `CentOS-7` and `centos-7`, or `a+b` and `a-b`, would share (and destroy) one container.
fn refuse_name_collisions(
    instances: &[InstanceConfig],
    origins: &[(&Suite, &Platform)],
    kitchen_root: &Path,
) -> Result<(), ConfigError> {
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    for (i, inst) in instances.iter().enumerate() {
        let driver = inst.driver_name();
        let Some(name) = crate::driver::naming::runtime_name(driver, kitchen_root, &inst.name)
        else {
            continue;
        };
        let runtime = if driver.starts_with("lxd") {
            "LXD"
        } else {
            "Docker"
        };
        match seen.entry((runtime.to_string(), name.clone())) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(i);
            }
            std::collections::hash_map::Entry::Occupied(o) => {
                let first = &instances[*o.get()];
                if first.name == inst.name {
                    continue; // the same instance twice is test-kitchen's own affair
                }
                let (fs, fp) = origins[*o.get()];
                let (ss, sp) = origins[i];
                // Point at the name that differs: the platform's when the suite is the same.
                let pos = |s: &Suite, p: &Platform| {
                    if fs.name == ss.name {
                        p.name_node.pos.clone()
                    } else {
                        s.name_pos.clone()
                    }
                };
                let rule = if runtime == "LXD" {
                    "are lowercase, and every character but a letter or digit becomes `-`"
                } else {
                    "turn every character but a letter, digit, `_`, `.` or `-` into `-`"
                };
                return Err(ConfigError::NameCollision {
                    at: pos(ss, sp),
                    message: format!(
                        "instances `{}`{} and `{}` would both be the {runtime} container `{name}` ({runtime} names {rule}); rename a suite or platform so the two names differ in more than that",
                        first.name,
                        pos(fs, fp).map(|p| format!(" ({p})")).unwrap_or_default(),
                        inst.name,
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Fills `cache[idx]` with the normalized blocks of `maps[idx]` and returns `idx`.
fn cached_blocks(
    cache: &mut [Option<Vec<Map>>],
    maps: &[Map],
    idx: usize,
    ns: &str,
    list: &str,
) -> Result<usize, ConfigError> {
    if cache[idx].is_none() {
        let m = &maps[idx];
        let blocks = PLUGINS
            .iter()
            .map(|key| normalized_block(m.get(key), key, ns, &format!("{list}[{idx}].{key}")))
            .collect::<Result<Vec<_>, _>>()?;
        cache[idx] = Some(blocks);
    }
    Ok(idx)
}

/// `Instance.name_for`: `"#{suite}-#{platform}".gsub(%r{[_,/]}, "-").delete(".")`.
pub fn instance_name(suite: &str, platform: &str) -> String {
    format!("{suite}-{platform}")
        .chars()
        .filter(|c| *c != '.')
        .map(|c| if matches!(c, '_' | ',' | '/') { '-' } else { c })
        .collect()
}

fn first_index_by_name<'a>(items: impl Iterator<Item = (&'a Value, &'a mut usize)>) {
    let mut seen: HashMap<String, Vec<(&'a Value, usize)>> = HashMap::new();
    for (i, (raw, idx)) in items.enumerate() {
        let key = format!("{raw:?}");
        let bucket = seen.entry(key).or_default();
        *idx = match bucket.iter().find(|(v, _)| *v == raw) {
            Some((_, first)) => *first,
            None => {
                bucket.push((raw, i));
                i
            }
        };
    }
}

fn take_list(data: &mut Map, key: &str) -> Result<Vec<Map>, ConfigError> {
    let Some(node) = data.remove(key) else {
        return Ok(Vec::new());
    };
    let Value::Seq(items) = node.v else {
        return Err(ConfigError::ty(&node, key, format!("a list of {key}")));
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, n)| match n.v {
            Value::Map(m) => Ok(m),
            _ => Err(ConfigError::ty(
                &n,
                format!("{key}[{i}]"),
                "a mapping with a `name` key",
            )),
        })
        .collect()
}

fn platform_obj(p: &Map, i: usize) -> Result<Platform, ConfigError> {
    let Some(name) = p.get("name") else {
        return Err(ConfigError::Type {
            at: p.iter().next().and_then(|(_, v)| v.pos.clone()),
            path: format!("platforms[{i}]"),
            expected: "a `name` key (Platform#new requires option :name)".into(),
            found: "a platform without a name".into(),
        });
    };
    let kind = match name.v {
        Value::Str(_) => NameKind::String,
        Value::Sym(_) => NameKind::Symbol,
        _ => NameKind::Other,
    };
    let is_string = kind == NameKind::String;
    // Platform#initialize calls name.downcase unless both os_type and shell_type are given.
    let downcase_ok = is_string || matches!(name.v, Value::Sym(_));
    let windows_check_skipped = p.contains_key("os_type") && p.contains_key("shell_type");
    if !(downcase_ok || windows_check_skipped) {
        return Err(ConfigError::ty(
            name,
            format!("platforms[{i}].name"),
            "a string (test-kitchen fails on other platform names; quote it)",
        ));
    }
    // Platform#windows?: `name.downcase =~ /^win/ || (transport && transport[:name] == "winrm")`
    // indexes a non-Hash transport with a Symbol, which raises a TypeError.
    let win_name = default_block("transport", &name.ruby_to_s())
        .get("name")
        .and_then(Node::as_str)
        == Some("winrm");
    if !win_name
        && !windows_check_skipped
        && let Some(t) = p.get("transport")
        && !matches!(t.v, Value::Map(_) | Value::Null)
    {
        return Err(ConfigError::ty(
            t,
            format!("platforms[{i}].transport"),
            "a mapping such as `{name: winrm}` (test-kitchen reads transport[:name] on a \
             platform and fails on a plain name there)",
        ));
    }
    Ok(Platform {
        raw: name.v.clone(),
        name: name.ruby_to_s(),
        kind,
        name_node: name.clone(),
        idx: i,
        data_idx: i,
    })
}

fn suite_obj(s: &Map, i: usize) -> Result<(Suite, Value), ConfigError> {
    let Some(name) = s.get("name") else {
        return Err(ConfigError::Type {
            at: s.iter().next().and_then(|(_, v)| v.pos.clone()),
            path: format!("suites[{i}]"),
            expected: "a `name` key (Suite#new requires option :name)".into(),
            found: "a suite without a name".into(),
        });
    };
    Ok((
        Suite {
            name: name.ruby_to_s(),
            name_pos: name.pos.clone(),
            filter: platform_filter(s, &format!("suites[{i}]"))?,
            data_idx: i,
        },
        name.v.clone(),
    ))
}

/// The `includes`/`excludes` of a suite or a lifecycle hook (`map`, at key path `path`).
///
/// # Errors
/// [`ConfigError::Type`] for entries that are not strings, [`ConfigError::Regex`] for a
/// `/regex/` entry this engine cannot compile, both located.
fn platform_filter(map: &Map, path: &str) -> Result<PlatformFilter, ConfigError> {
    let patterns = |key: &str| -> Result<Vec<PlatformPattern>, ConfigError> {
        let Some(node) = map.get(key) else {
            return Ok(Vec::new());
        };
        // Kernel.Array(filters)
        let entries: Vec<&Node> = match &node.v {
            Value::Null => Vec::new(),
            Value::Seq(items) => items.iter().collect(),
            Value::Map(_) => {
                return Err(ConfigError::ty(
                    node,
                    format!("{path}.{key}"),
                    "a list of platform names or /regex/ strings",
                ));
            }
            _ => vec![node],
        };
        entries
            .into_iter()
            .enumerate()
            .map(|(j, e)| {
                let path = format!("{path}.{key}[{j}]");
                let Value::Str(text) = &e.v else {
                    return Err(ConfigError::ty(
                        e,
                        path,
                        "a platform name or /regex/ string (test-kitchen crashes on anything \
                         else; quote it)",
                    ));
                };
                PlatformPattern::parse(text).map_err(|err| ConfigError::Regex {
                    at: e.pos.clone(),
                    context: path,
                    pattern: text.clone(),
                    message: err.to_string(),
                })
            })
            .collect()
    };
    Ok(PlatformFilter {
        includes: patterns("includes")?,
        excludes: patterns("excludes")?,
    })
}

/// Checks the platform filters of every hook in a merged `lifecycle` block at load time, so
/// an invalid `/regex/` is a located error before any action runs (the lifecycle reads the
/// hooks again from the block).
fn check_hook_filters(lifecycle: &Map) -> Result<(), ConfigError> {
    for (key, hooks) in lifecycle.iter() {
        let Value::Seq(items) = &hooks.v else {
            continue;
        };
        for (j, item) in items.iter().enumerate() {
            if let Some(hook) = item.as_map() {
                platform_filter(hook, &format!("lifecycle.{key}[{j}]"))?;
            }
        }
    }
    Ok(())
}

/// `normalized_{common,platform,suite}_data`: nil -> {}, "x" -> {name: "x"}, and the arrays
/// test-kitchen concatenates are namespaced (`run_list` for the provisioner, every key for
/// lifecycle).
fn normalized_block(
    node: Option<&Node>,
    key: &str,
    namespace: &str,
    path: &str,
) -> Result<Map, ConfigError> {
    let mut m = match node {
        None => return Ok(Map::new()),
        Some(Node { v: Value::Null, .. }) => Map::new(),
        Some(
            n @ Node {
                v: Value::Str(_), ..
            },
        ) => {
            let mut m = Map::new();
            m.insert("name", n.clone());
            m
        }
        Some(Node {
            v: Value::Map(m), ..
        }) => m.clone(),
        Some(n) => {
            return Err(ConfigError::ty(
                n,
                path,
                format!("a mapping or a {key} name"),
            ));
        }
    };
    let namespace_key = |m: &mut Map, k: &str| {
        if let Some(v) = m.get_mut(k) {
            let inner = std::mem::replace(v, Node::empty_map());
            let mut ns = Map::new();
            ns.insert(namespace, inner);
            *v = Node::new(Value::Map(ns));
        }
    };
    match (key, namespace) {
        ("provisioner", "platform" | "suite") => namespace_key(&mut m, "run_list"),
        ("lifecycle", _) => {
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                namespace_key(&mut m, &k);
            }
        }
        _ => {}
    }
    Ok(m)
}

/// Built-in defaults (`kitchen_config[:defaults]`).
fn default_block(key: &str, platform: &str) -> Map {
    let name = match key {
        "driver" => "dummy",
        "provisioner" => "shell",
        "verifier" => "busser",
        "transport" => {
            // /^win/i.match?(platform): Ruby's ^ also matches after a newline.
            if platform
                .split('\n')
                .any(|l| l.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("win")))
            {
                "winrm"
            } else {
                "ssh"
            }
        }
        _ => return Map::new(),
    };
    let mut m = Map::new();
    m.insert("name", Node::str(name));
    m
}

/// The per-plugin finishing touches of `DataMunger#*_data_for`.
fn finish_block(
    key: &str,
    mut m: Map,
    kc: &KitchenConfig,
    kitchen: &Map,
    suite: &str,
    platform: &str,
) -> Result<Map, ConfigError> {
    let forced: &[&str] = match key {
        "driver" | "transport" => &["kitchen_root", "test_base_path", "log_level"],
        "provisioner" => {
            combine_arrays(&mut m, "run_list", &["platform", "suite"], suite, platform)?;
            &["kitchen_root", "test_base_path", "debug"]
        }
        "verifier" => &["kitchen_root", "test_base_path", "log_level", "debug"],
        _ => {
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                combine_arrays(
                    &mut m,
                    &k,
                    &["common", "platform", "suite"],
                    suite,
                    platform,
                )?;
            }
            check_hook_filters(&m)?;
            &["kitchen_root", "test_base_path", "log_level", "debug"]
        }
    };
    for k in forced {
        // set_kitchen_config_at!: delete, then kitchen_config, then the `kitchen:` hash wins.
        m.remove(k);
        if let Some(v) = kc.get(k) {
            m.insert(*k, v);
        }
        if let Some(v) = kitchen.get(k) {
            m.insert(*k, v.clone());
        }
    }
    Ok(m)
}

/// `combine_arrays!`: the namespaced lists concatenated, flattened, nils dropped.
fn combine_arrays(
    m: &mut Map,
    key: &str,
    namespaces: &[&str],
    suite: &str,
    platform: &str,
) -> Result<(), ConfigError> {
    let Some(node) = m.get(key) else {
        return Ok(());
    };
    let Value::Map(ns) = &node.v else {
        // Only a top-level provisioner run_list (never namespaced) gets here: Ruby calls
        // Array#fetch(:platform, []) on it and raises a TypeError.
        return Err(ConfigError::Type {
            at: node.pos.clone(),
            path: format!("provisioner.{key} (instance {suite}-{platform})"),
            expected: "run_list in platforms or suites: test-kitchen only combines platform and \
                       suite run_lists and fails (TypeError) on a top-level provisioner run_list \
                       that no platform or suite overrides"
                .into(),
            found: super::error::describe(node),
        });
    };
    let mut items = Vec::new();
    for n in namespaces {
        if let Some(v) = ns.get(n) {
            flatten_into(v, &mut items);
        }
    }
    let pos = node.pos.clone();
    m.insert(
        key,
        Node {
            v: Value::Seq(items),
            pos,
        },
    );
    Ok(())
}

fn flatten_into(n: &Node, out: &mut Vec<Node>) {
    match &n.v {
        Value::Seq(items) => items.iter().for_each(|i| flatten_into(i, out)),
        Value::Null => {}
        _ => out.push(n.clone()),
    }
}

// ---------------------------------------------------------------------------------------------
// LegacyConfigNormalizer
// ---------------------------------------------------------------------------------------------

fn legacy_normalize(
    data: &mut Map,
    platforms: &mut [Map],
    suites: &mut [Map],
) -> Result<(), ConfigError> {
    // convert_legacy_driver_format!
    for_all_roots(data, platforms, suites, legacy_driver_format)?;
    // convert_legacy_chef_paths_format! (suites only)
    for (i, s) in suites.iter_mut().enumerate() {
        let ctx = format!("suites[{i}].");
        for k in [
            "data_path",
            "data_bags_path",
            "encrypted_data_bag_secret_key_path",
            "environments_path",
            "nodes_path",
            "roles_path",
        ] {
            move_data_to(s, "provisioner", k, &ctx)?;
        }
    }
    for_all_roots(data, platforms, suites, legacy_require_chef_omnibus)?;
    for_all_roots(data, platforms, suites, legacy_busser)?;
    for_all_roots(data, platforms, suites, legacy_http_proxy)?;
    // move_chef_data_to_provisioner!: suites, then platforms
    let suite_roots = suites
        .iter_mut()
        .enumerate()
        .map(|(i, s)| (s, format!("suites[{i}].")));
    let platform_roots = platforms
        .iter_mut()
        .enumerate()
        .map(|(i, p)| (p, format!("platforms[{i}].")));
    for (root, ctx) in suite_roots.chain(platform_roots) {
        for k in ["attributes", "run_list", "named_run_list", "policy_group"] {
            move_data_to(root, "provisioner", k, &ctx)?;
        }
    }
    for_all_roots(data, platforms, suites, legacy_pre_create_command)?;
    Ok(())
}

fn for_all_roots(
    data: &mut Map,
    platforms: &mut [Map],
    suites: &mut [Map],
    f: fn(&mut Map, &str) -> Result<(), ConfigError>,
) -> Result<(), ConfigError> {
    f(data, "")?;
    for (i, p) in platforms.iter_mut().enumerate() {
        f(p, &format!("platforms[{i}]."))?;
    }
    for (i, s) in suites.iter_mut().enumerate() {
        f(s, &format!("suites[{i}]."))?;
    }
    Ok(())
}

/// `root.fetch(key, {})` with a String turned into `{name: s}` and nil into `{}`.
fn block_of(root: &Map, key: &str, ctx: &str) -> Result<Map, ConfigError> {
    match root.get(key) {
        None => Ok(Map::new()),
        // `root.fetch(key, {})` is nil here and test-kitchen's legacy rewrite fails on it.
        Some(n @ Node { v: Value::Null, .. }) => Err(ConfigError::ty(
            n,
            format!("{ctx}{key}"),
            format!(
                "a mapping or a {key} name (an empty `{key}:` next to legacy keys that \
                 test-kitchen moves into it makes test-kitchen fail)"
            ),
        )),
        Some(
            n @ Node {
                v: Value::Str(_), ..
            },
        ) => {
            let mut m = Map::new();
            m.insert("name", n.clone());
            Ok(m)
        }
        Some(Node {
            v: Value::Map(m), ..
        }) => Ok(m.clone()),
        Some(n) => Err(ConfigError::ty(
            n,
            format!("{ctx}{key}"),
            format!("a mapping or a {key} name"),
        )),
    }
}

fn merge_at(a: &Map, b: &Map, ctx: &str, key: &str) -> Result<Map, ConfigError> {
    a.rmerge(b)
        .map_err(|c| ConfigError::merge(c, &format!("{ctx}{key}.")))
}

fn map_node(m: Map) -> Node {
    Node::new(Value::Map(m))
}

fn legacy_driver_format(root: &mut Map, ctx: &str) -> Result<(), ConfigError> {
    if let Some(dc) = root.remove("driver_config") {
        let ddata = block_of(root, "driver", ctx)?;
        let base = match dc.v {
            Value::Map(m) => m,
            _ => {
                return Err(ConfigError::ty(
                    &dc,
                    format!("{ctx}driver_config"),
                    "a mapping",
                ));
            }
        };
        root.insert("driver", map_node(merge_at(&base, &ddata, ctx, "driver")?));
    }
    if let Some(plugin) = root.remove("driver_plugin") {
        let ddata = block_of(root, "driver", ctx)?;
        let mut base = Map::new();
        base.insert("name", plugin);
        root.insert("driver", map_node(merge_at(&base, &ddata, ctx, "driver")?));
    }
    Ok(())
}

fn legacy_require_chef_omnibus(root: &mut Map, ctx: &str) -> Result<(), ConfigError> {
    let key = "require_chef_omnibus";
    let Some(Node {
        v: Value::Map(d), ..
    }) = root.get_mut("driver")
    else {
        return Ok(());
    };
    let Some(v) = d.remove(key) else {
        return Ok(());
    };
    let pdata = block_of(root, "provisioner", ctx)?;
    let mut base = Map::new();
    base.insert(key, v);
    root.insert(
        "provisioner",
        map_node(merge_at(&base, &pdata, ctx, "provisioner")?),
    );
    Ok(())
}

fn legacy_busser(root: &mut Map, ctx: &str) -> Result<(), ConfigError> {
    let Some(b) = root.remove("busser") else {
        return Ok(());
    };
    let mut bdata = match b.v {
        Value::Str(s) => {
            let mut m = Map::new();
            m.insert("version", Node::str(s));
            m
        }
        Value::Map(m) => m,
        _ => {
            return Err(ConfigError::ty(
                &b,
                format!("{ctx}busser"),
                "a mapping or a busser version",
            ));
        }
    };
    if bdata.get("name").is_none_or(Node::is_null) {
        bdata.insert("name", Node::str("busser"));
    }
    let vdata = block_of(root, "verifier", ctx)?;
    root.insert(
        "verifier",
        map_node(merge_at(&bdata, &vdata, ctx, "verifier")?),
    );
    Ok(())
}

fn legacy_http_proxy(root: &mut Map, ctx: &str) -> Result<(), ConfigError> {
    for key in ["http_proxy", "https_proxy"] {
        let Some(Node {
            v: Value::Map(d), ..
        }) = root.get("driver")
        else {
            return Ok(());
        };
        let Some(v) = d.get(key).cloned() else {
            continue;
        };
        let mut base = Map::new();
        base.insert(key, v);
        let pdata = block_of(root, "provisioner", ctx)?;
        root.insert(
            "provisioner",
            map_node(merge_at(&base, &pdata, ctx, "provisioner")?),
        );
        let vdata = block_of(root, "verifier", ctx)?;
        root.insert(
            "verifier",
            map_node(merge_at(&base, &vdata, ctx, "verifier")?),
        );
    }
    Ok(())
}

fn move_data_to(root: &mut Map, to: &str, key: &str, ctx: &str) -> Result<(), ConfigError> {
    match root.get(key) {
        None => return Ok(()),
        Some(v) if v.is_null() => return Ok(()),
        Some(_) => {}
    }
    let pdata = block_of(root, to, ctx)?;
    let Some(v) = root.remove(key) else {
        return Ok(());
    };
    let mut add = Map::new();
    add.insert(key, v);
    root.insert(to, map_node(merge_at(&pdata, &add, ctx, to)?));
    Ok(())
}

fn legacy_pre_create_command(root: &mut Map, ctx: &str) -> Result<(), ConfigError> {
    let key = "pre_create_command";
    let Some(Node {
        v: Value::Map(d), ..
    }) = root.get_mut("driver")
    else {
        return Ok(());
    };
    let Some(cmd) = d.remove(key) else {
        return Ok(());
    };
    let mut lifecycle = match root.get("lifecycle") {
        None => Map::new(),
        Some(Node { v: Value::Null, .. }) => Map::new(),
        Some(Node {
            v: Value::Map(m), ..
        }) => m.clone(),
        Some(n) => return Err(ConfigError::ty(n, format!("{ctx}lifecycle"), "a mapping")),
    };
    // Array(x): nil -> [], Array -> itself, anything else -> [x]
    let mut list = match lifecycle.get("pre_create") {
        None => Vec::new(),
        Some(Node { v: Value::Null, .. }) => Vec::new(),
        Some(Node {
            v: Value::Seq(s), ..
        }) => s.clone(),
        Some(n) => vec![n.clone()],
    };
    let mut hook = Map::new();
    hook.insert("local", cmd);
    list.push(map_node(hook));
    lifecycle.insert("pre_create", Node::new(Value::Seq(list)));
    root.insert("lifecycle", map_node(lifecycle));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_name_for() {
        assert_eq!(
            instance_name("web.server_v1", "Ubuntu_22.04"),
            "webserver-v1-Ubuntu-2204"
        );
        assert_eq!(instance_name("a,b", "c/d"), "a-b-c-d");
        assert_eq!(instance_name("my suite", "x"), "my suite-x");
    }
}
