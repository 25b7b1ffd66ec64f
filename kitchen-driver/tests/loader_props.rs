//! Property tests: whatever the input, the loader returns a project or an error, never panics,
//! and the projects it returns keep test-kitchen's naming invariants.

use std::collections::BTreeMap;

use kitchen_driver::config::{self, LoadOptions};
use proptest::prelude::*;
use serde_json::{Value, json};

fn opts() -> LoadOptions {
    // No PATH: ERB that needs Ruby is an error, not a subprocess.
    LoadOptions::new("/kdtest-props".into(), BTreeMap::new())
}

fn check(text: &str) {
    if let Ok(p) = config::load_str(text, &opts()) {
        for i in &p.instances {
            assert!(!i.name.contains(['.', '_', ',', '/']), "{}", i.name);
            assert!(!i.driver_name().is_empty() || i.driver.get("name").is_some());
        }
        // selection never panics either
        let _ = p.select(&[]);
        let _ = p.select(&["all".into()]);
        let _ = p.select(&[".*(".into()]);
    }
}

/// Scalars in the spellings Psych treats specially.
fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!(null)),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        "[a-z0-9_./:-]{0,12}".prop_map(Value::from),
        prop::sample::select(vec![
            "yes",
            "No",
            "on",
            "OFF",
            "~",
            "0755",
            "0x1f",
            "1_000",
            "1:30",
            ":sym",
            "2024-01-31",
            "/ubu/i",
            "/(/",
            "win",
            "windows-2019",
            "<%= ENV['X'] %>",
            "<% x %>",
            "*a",
            "&a b",
            ".inf",
            "-.nan",
            "0b",
            "0x_",
        ])
        .prop_map(Value::from),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "name",
        "driver",
        "provisioner",
        "verifier",
        "transport",
        "lifecycle",
        "run_list",
        "includes",
        "excludes",
        "driver_config",
        "driver_plugin",
        "busser",
        "attributes",
        "data_path",
        "pre_create",
        "pre_converge",
        "http_proxy",
        "require_chef_omnibus",
        "pre_create_command",
        "kitchen_root",
        "os_type",
        "shell_type",
        "kitchen",
        "image",
    ])
    .prop_map(str::to_owned)
}

/// A kitchen.yml-shaped document with random contents.
fn config() -> impl Strategy<Value = Value> {
    let platform = prop::collection::btree_map(key(), value(), 0..4);
    let suite = prop::collection::btree_map(key(), value(), 0..4);
    (
        prop::collection::btree_map(key(), value(), 0..5),
        prop::collection::vec(platform, 0..5),
        prop::collection::vec(suite, 0..5),
    )
        .prop_map(|(top, platforms, suites)| {
            let mut m: serde_json::Map<String, Value> = top.into_iter().collect();
            m.insert(
                "platforms".into(),
                Value::Array(
                    platforms
                        .into_iter()
                        .map(|p| Value::Object(p.into_iter().collect()))
                        .collect(),
                ),
            );
            m.insert(
                "suites".into(),
                Value::Array(
                    suites
                        .into_iter()
                        .map(|s| Value::Object(s.into_iter().collect()))
                        .collect(),
                ),
            );
            Value::Object(m)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,200}") {
        check(&s);
    }

    #[test]
    fn yaml_token_soup_never_panics(
        parts in prop::collection::vec(
            prop::sample::select(vec![
                "a", ": ", "\n", "- ", "  ", "[", "]", "{", "}", ",", "&x ", "*x", "<<: ", "!!str ",
                "? ", "'q'", "\"d\\n\"", "|\n  ", ">\n  ", "#c", "---\n", "...\n", "<%= 1 %>", "%",
                "platforms", "suites", "name", "includes", "1", "yes", ":s", "!ruby/object ",
            ]),
            0..60,
        )
    ) {
        check(&parts.concat());
    }

    #[test]
    fn random_kitchen_configs_never_panic(doc in config()) {
        let yaml = serde_saphyr::to_string(&doc).unwrap_or_default();
        check(&yaml);
        // and the same through JSON syntax, which is YAML too
        check(&doc.to_string());
    }

    #[test]
    fn well_formed_configs_expand_to_suites_times_platforms(
        platforms in prop::collection::vec("[a-zA-Z0-9_.,/-]{1,10}", 1..6),
        suites in prop::collection::vec("[a-zA-Z0-9_.-]{1,10}", 1..6),
    ) {
        let doc = json!({
            "platforms": platforms.iter().map(|p| json!({"name": p})).collect::<Vec<_>>(),
            "suites": suites.iter().map(|s| json!({"name": s})).collect::<Vec<_>>(),
        });
        let p = config::load_str(&doc.to_string(), &opts());
        let p = p.map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(p.instances.len(), platforms.len() * suites.len());
        // suite-major order
        for (n, i) in p.instances.iter().enumerate() {
            prop_assert_eq!(&i.suite, &suites[n / platforms.len()]);
            prop_assert_eq!(&i.platform, &platforms[n % platforms.len()]);
        }
    }
}
