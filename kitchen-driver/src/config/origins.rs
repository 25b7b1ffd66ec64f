//! Where each key of an instance's merged configuration was written: the key path in the
//! file (`suites[1].provisioner.playbook`) and the position, so that a check made long after
//! loading (the preflight check of a missing playbook) can say which line to fix.

use std::collections::BTreeMap;

use super::value::{Map, Node, Value};

/// Where one value was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The key path as written: `suites[1].provisioner.playbook`, `lifecycle.pre_create[0]`.
    pub key_path: String,
    /// `file:line:column`, when the value came from a file.
    pub at: Option<String>,
}

/// Where the keys of an instance's plugin blocks were written, by merged key
/// (`provisioner.playbook`, `lifecycle.pre_converge[2]`: the index in the merged, concatenated
/// list). Keys set by defaults are absent.
///
/// Where a value was written is not part of the configuration: any two are equal, so that
/// instances compare by their values alone.
#[derive(Debug, Clone, Default)]
pub struct ConfigOrigins(BTreeMap<String, Origin>);

impl PartialEq for ConfigOrigins {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl ConfigOrigins {
    /// Where the merged key `key` (`provisioner.playbook`) was written.
    pub fn get(&self, key: &str) -> Option<&Origin> {
        self.0.get(key)
    }

    /// The key for a message: "`suites[1].provisioner.playbook` (/p/kitchen.yml:9:17)", or
    /// "`provisioner.playbook`" for a key no file set.
    pub fn describe(&self, key: &str) -> String {
        match self.get(key) {
            Some(Origin {
                key_path,
                at: Some(at),
            }) => format!("`{key_path}` ({at})"),
            Some(Origin { key_path, at: None }) => format!("`{key_path}`"),
            None => format!("`{key}`"),
        }
    }

    /// Records the keys of one plugin block from its layers, lowest first (common, platform,
    /// suite: a later layer's key wins). `prefix` is the layer's key path (`""`,
    /// `platforms[0].`, `suites[2].`). Lifecycle hook lists, which test-kitchen concatenates
    /// (common + platform + suite), are recorded element by element.
    pub(crate) fn record_block(&mut self, block: &str, layers: &[(String, &Map)]) {
        let mut concatenated: BTreeMap<String, usize> = BTreeMap::new();
        for (prefix, layer) in layers {
            for (field, node) in layer.iter() {
                if block == "lifecycle" {
                    // Namespaced by the loader: `{common|platform|suite: hooks}`.
                    let hooks = match &node.v {
                        Value::Map(ns) => ns.iter().map(|(_, v)| v).next(),
                        _ => Some(node),
                    };
                    let mut items = Vec::new();
                    if let Some(h) = hooks {
                        flatten(h, &mut items);
                    }
                    let next = concatenated.entry(field.clone()).or_default();
                    for (j, item) in items.into_iter().enumerate() {
                        self.0.insert(
                            format!("{block}.{field}[{}]", *next + j),
                            Origin {
                                key_path: format!("{prefix}{block}.{field}[{j}]"),
                                at: item.pos.as_ref().map(ToString::to_string),
                            },
                        );
                    }
                    *next += node_count(hooks);
                    continue;
                }
                self.0.insert(
                    format!("{block}.{field}"),
                    Origin {
                        key_path: format!("{prefix}{block}.{field}"),
                        at: node.pos.as_ref().map(ToString::to_string),
                    },
                );
            }
        }
    }
}

/// As the loader's `combine_arrays`: nested lists flattened, nils dropped.
fn flatten<'a>(n: &'a Node, out: &mut Vec<&'a Node>) {
    match &n.v {
        Value::Seq(items) => items.iter().for_each(|i| flatten(i, out)),
        Value::Null => {}
        _ => out.push(n),
    }
}

fn node_count(n: Option<&Node>) -> usize {
    let mut items = Vec::new();
    if let Some(n) = n {
        flatten(n, &mut items);
    }
    items.len()
}
