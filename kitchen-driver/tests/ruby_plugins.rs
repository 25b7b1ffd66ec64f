//! The Ruby gem's minitest suite (`kitchen-driver/ruby/test/`), run by `cargo nextest` against
//! the freshly built binary and the real LXD daemon and Docker engine. One test per minitest
//! class, so a failure names the area.
//!
//! Needs Debian's `ruby` and `ruby-minitest` (installed by `scripts/setup-host`).

use std::path::Path;
use std::process::Command;

/// Runs the minitest classes whose names match `class` and fails with their output unless all
/// pass.
fn minitest(class: &str) {
    let ruby_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("ruby");
    let out = Command::new("ruby")
        .current_dir(&ruby_dir)
        .args([
            "-Ilib",
            "-Itest/standin",
            "-Itest",
            "test/plugins_test.rb",
            "--verbose",
            "--name",
            &format!("/^{class}#/"),
        ])
        .env("KITCHEN_DRIVER_BIN", env!("CARGO_BIN_EXE_kitchen-driver"))
        // Two minitest threads: the classes' tests start containers in parallel.
        .env("MT_CPU", "2")
        .output()
        .unwrap_or_else(|e| panic!("cannot run ruby (install Debian's ruby): {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !text.contains("cannot load such file -- minitest"),
        "minitest is missing: apt-get install ruby-minitest (scripts/setup-host installs it)\n{text}"
    );
    assert!(out.status.success(), "minitest {class} failed:\n{text}");
    // A filter that matches nothing passes with 0 runs: make sure tests ran.
    assert!(
        !text.contains("\n0 runs,"),
        "no minitest matched {class}:\n{text}"
    );
    println!("{text}");
}

#[test]
fn ruby_binary_discovery_and_handshake() {
    minitest("BinaryTest");
}

#[test]
fn ruby_plugins_load_as_test_kitchen_loads_them() {
    minitest("LoadingTest");
}

#[test]
fn ruby_driver_and_transport_lifecycle() {
    minitest("LifecycleTest");
}

#[test]
fn ruby_plugin_containers_are_kitchen_drivers() {
    minitest("OwnershipTest");
}
