//! Broken kitchen.yml files: each gets a located, clear error before anything is created, and
//! none makes kitchen-driver panic. The messages are what a user reads (the loader's error,
//! or the preflight check `test` runs before the first create), snapshotted together so that
//! a reviewer reads them side by side.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use kitchen_driver::config::{self, LoadOptions};
use kitchen_driver::lifecycle::{Command, DestroyMode, preflight};

/// A working project around the broken part: one docker platform, one shell suite.
const PLATFORM: &str = "verifier:\n  name: shell\nplatforms:\n  - name: p\n    driver:\n      name: docker\n      image: kitchen/busybox:latest\n";

/// `(case, kitchen.yml)`: every case must fail.
fn cases() -> Vec<(&'static str, String)> {
    let with = |body: &str| format!("{PLATFORM}{body}");
    let suite = |block: &str| format!("{PLATFORM}suites:\n  - name: s\n{block}");
    vec![
        // Syntax.
        ("unclosed flow mapping", "platforms: [{name: p\nsuites: []\n".into()),
        ("tab indentation", "platforms:\n\t- name: p\n".into()),
        ("a flow sequence that never closes", with("suites: [{name: s}\n")),
        ("unclosed quote", with("suites:\n  - name: \"s\n")),
        ("bad indentation", "platforms:\n  - name: p\n   driver: docker\n".into()),
        ("undefined alias", with("suites:\n  - *nothing\n")),
        ("a list at the top", "- platforms\n- suites\n".into()),
        ("ERB that does not close", with("suites:\n  - name: <%= 'a' \n")),
        // Types.
        ("platforms is a string", "platforms: ubuntu\nsuites:\n  - name: s\n".into()),
        ("suites is a mapping", with("suites:\n  name: s\n")),
        ("a platform without a name", "platforms:\n  - driver: {name: docker}\nsuites:\n  - name: s\n".into()),
        ("a suite without a name", with("suites:\n  - provisioner: {name: shell}\n")),
        ("a suite that is a number", with("suites:\n  - 42\n")),
        ("max_retries is words", suite("    provisioner:\n      name: shell\n      max_retries: many\n")),
        ("driver block is a list", "platforms:\n  - name: p\n    driver: [docker]\nsuites:\n  - name: s\n".into()),
        ("verifier sleep is text", suite("    verifier:\n      name: shell\n      sleep: soon\n")),
        ("docker privileged is text", "platforms:\n  - name: p\n    driver:\n      name: docker\n      image: kitchen/busybox:latest\n      privileged: maybe\nsuites:\n  - name: s\n".into()),
        ("lxd ready_timeout is negative", "platforms:\n  - name: p\n    driver:\n      name: lxd\n      image: kitchen/busybox\n      ready_timeout: -5\nsuites:\n  - name: s\n".into()),
        // Unknown plugins.
        ("unknown driver", "platforms:\n  - name: p\n    driver: {name: vagrant}\nsuites:\n  - name: s\n".into()),
        ("unknown provisioner", suite("    provisioner: {name: chef_zero}\n")),
        ("unknown verifier", suite("    verifier: {name: inspec}\n")),
        ("unknown transport", "platforms:\n  - name: p\n    driver: {name: docker, image: kitchen/busybox:latest}\n    transport: {name: winrm}\nsuites:\n  - name: s\n".into()),
        // Missing files and scripts.
        ("ERB that needs Ruby", with("suites:\n  - name: s\n").replace("platforms:", "<%= File.read('/nonexistent/kitchen-hostile.yml') %>\nplatforms:")),
        ("busser (the default verifier) without bats tests", "platforms:\n  - name: p\n    driver: {name: docker, image: kitchen/busybox:latest}\nsuites:\n  - name: s\n".into()),
        // Bad regexes.
        ("includes with a bad regex", with("suites:\n  - name: s\n    includes: ['/p(/']\n")),
        ("excludes with a bad regex", with("suites:\n  - name: s\n    excludes: ['/[z-a]/']\n")),
        // Huge and impossible numbers.
        ("verifier sleep 1.0e+300", suite("    verifier:\n      name: shell\n      sleep: 1.0e+300\n")),
        ("wait_for_retry 1e300", suite("    provisioner:\n      name: shell\n      wait_for_retry: 1e300\n")),
        ("verifier sleep .inf", suite("    verifier:\n      name: shell\n      sleep: .inf\n")),
        ("wait_for_retry .nan", suite("    provisioner:\n      name: shell\n      wait_for_retry: .nan\n")),
        ("max_retries beyond u32", suite("    provisioner:\n      name: shell\n      max_retries: 99999999999999999999999\n")),
        ("docker cpus 1.0e+300", "platforms:\n  - name: p\n    driver:\n      name: docker\n      image: kitchen/busybox:latest\n      cpus: 1.0e+300\nsuites:\n  - name: s\n".into()),
        ("docker cpus negative", "platforms:\n  - name: p\n    driver:\n      name: docker\n      image: kitchen/busybox:latest\n      cpus: -2\nsuites:\n  - name: s\n".into()),
        ("ready_timeout 1.0e+300", "platforms:\n  - name: p\n    driver:\n      name: docker\n      image: kitchen/busybox:latest\n      ready_timeout: 1.0e+300\nsuites:\n  - name: s\n".into()),
    ]
}

/// The first error a user gets for the project in `dir`: from loading, or from the
/// preflight check of `kitchen-driver test`.
fn first_error(dir: &Path) -> Option<String> {
    let opts = LoadOptions::new(dir.to_path_buf(), BTreeMap::new());
    let project = match config::load(&opts) {
        Ok(p) => p,
        Err(e) => return Some(e.to_string()),
    };
    let command = Command::Test(DestroyMode::Passing);
    project.instances.iter().find_map(|i| {
        preflight::check(i, &command, &project.test_base_path)
            .err()
            .map(|e| e.to_string())
    })
}

#[test]
fn every_broken_kitchen_yml_gets_a_located_clear_error() {
    let cases = cases();
    assert!(cases.len() >= 30, "{} cases", cases.len());
    let mut report = String::new();
    let mut passed = Vec::new();
    for (name, text) in &cases {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("kitchen.yml"), text).unwrap();
        let outcome = std::panic::catch_unwind(|| first_error(dir.path()));
        let message = match outcome {
            Err(_) => panic!("{name}: kitchen-driver panicked on\n{text}"),
            Ok(None) => {
                passed.push(*name);
                continue;
            }
            // Temporary paths differ on each run.
            Ok(Some(m)) => m.replace(&dir.path().display().to_string(), "<project>"),
        };
        assert!(!message.trim().is_empty(), "{name}: empty message");
        writeln!(report, "## {name}\n{message}\n").unwrap();
    }
    assert!(passed.is_empty(), "accepted as valid: {passed:?}");
    insta::assert_snapshot!(report);
}
