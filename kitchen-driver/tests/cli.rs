//! The `list` and `diagnose` commands through the real binary, snapshot-tested.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use assert_cmd::cargo::CommandCargoExt as _;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A copy of `tests/fixtures/project` in a `kdtest-<pid>-<n>-...` temp dir (removed on drop).
fn project() -> tempfile::TempDir {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = tempfile::Builder::new()
        .prefix(&format!("kdtest-{}-{n}-cli-", std::process::id()))
        .tempdir()
        .unwrap_or_else(|e| panic!("temp dir: {e}"));
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/project");
    for f in ["kitchen.yml", "kitchen.local.yml"] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
    }
    dir
}

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::cargo_bin("kitchen-driver")
        .unwrap_or_else(|e| panic!("{e}"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir.join("no-home"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run: {e}"))
}

/// stdout (or stderr) with the temp dir replaced by `[ROOT]`.
fn text(dir: &Path, bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace(&dir.display().to_string(), "[ROOT]")
}

fn write_state(dir: &Path, instance: &str, yaml: &str) {
    let d = dir.join(".kitchen");
    std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(d.join(format!("{instance}.yml")), yaml).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn list_table_with_state_files() {
    let p = project();
    write_state(
        p.path(),
        "default-debian-12",
        "---\nlast_action: verify\nlast_error:\n",
    );
    write_state(
        p.path(),
        "default-busybox",
        "---\nlast_action: create\nlast_error: Kitchen::ActionFailed\nhostname: 10.0.0.2\n",
    );
    write_state(
        p.path(),
        "web-server-debian-12",
        "---\nlast_action: setup\n",
    );
    let out = run(p.path(), &["list"]);
    assert_eq!(out.status.code(), Some(0));
    insta::assert_snapshot!(text(p.path(), &out.stdout));
}

#[test]
fn list_json_and_bare() {
    let p = project();
    write_state(p.path(), "default-busybox", "last_action: converge\n");
    let out = run(p.path(), &["list", "--json", "busybox"]);
    assert_eq!(out.status.code(), Some(0));
    insta::assert_snapshot!(text(p.path(), &out.stdout));
    let out = run(p.path(), &["list", "-b", "debian", "windows"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "default-debian-12\nweb-server-debian-12\n"
    );
    let out = run(p.path(), &["list", "-b", "default-busybox"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "default-busybox\n");
}

#[test]
fn published_ports_in_the_state_show_in_list_json_and_diagnose() {
    let p = project();
    // What the Docker driver records after `create` with `forward: [80, 53/udp]`.
    write_state(
        p.path(),
        "default-busybox",
        "---\nlast_action: create\ncontainer_id: 0123abcd\nforwarded_ports:\n  80/tcp: '32768'\n  53/udp: '32769'\n",
    );
    let out = run(p.path(), &["list", "--json", "default-busybox"]);
    assert_eq!(out.status.code(), Some(0));
    let rows: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rows[0]["forwarded_ports"]["80/tcp"], "32768");
    assert_eq!(rows[0]["forwarded_ports"]["53/udp"], "32769");
    let out = run(p.path(), &["diagnose", "default-busybox"]);
    assert_eq!(out.status.code(), Some(0));
    let yaml = text(p.path(), &out.stdout);
    assert!(yaml.contains("state_file:"), "{yaml}");
    assert!(yaml.contains("80/tcp: \"32768\""), "{yaml}");
    // Instances without ports carry no key in the JSON, and the table keeps test-kitchen's
    // seven columns.
    let out = run(p.path(), &["list", "--json", "default-debian-12"]);
    let rows: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert!(rows[0].get("forwarded_ports").is_none(), "{rows}");
    let out = run(p.path(), &["list", "default-busybox"]);
    let table = text(p.path(), &out.stdout);
    assert!(!table.contains("32768"), "{table}");
}

#[test]
fn list_no_match_exits_1() {
    let p = project();
    let out = run(p.path(), &["list", "centos"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    insta::assert_snapshot!(text(p.path(), &out.stderr));
    let out = run(p.path(), &["list", "("]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn diagnose_yaml() {
    let p = project();
    let out = run(p.path(), &["diagnose", "web"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        text(p.path(), &out.stderr)
    );
    insta::assert_snapshot!(text(p.path(), &out.stdout));
}

#[test]
fn diagnose_json_all() {
    let p = project();
    let out = run(p.path(), &["diagnose", "--json", "all"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        text(p.path(), &out.stderr)
    );
    let body = text(p.path(), &out.stdout);
    // valid JSON with every instance
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v["instances"].as_object().map(|o| o.len()), Some(3));
    insta::assert_snapshot!(body);
}

#[test]
fn yaml_syntax_error_is_located() {
    let p = project();
    std::fs::write(
        p.path().join("kitchen.yml"),
        "driver:\n  name: lxd\nplatforms:\n  - name: a\n    driver: {image: [x}\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = run(p.path(), &["list"]);
    assert_eq!(out.status.code(), Some(20));
    insta::assert_snapshot!(text(p.path(), &out.stderr));
}

#[test]
fn wrong_type_is_located() {
    let p = project();
    std::fs::write(
        p.path().join("kitchen.yml"),
        "platforms:\n  - name: a\nsuites:\n  - name: s\n    includes: [a, 12]\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = run(p.path(), &["list"]);
    assert_eq!(out.status.code(), Some(20));
    insta::assert_snapshot!(text(p.path(), &out.stderr));
}

#[test]
fn both_kitchen_yml_and_dotted_is_an_error() {
    let p = project();
    std::fs::write(p.path().join(".kitchen.yml"), "{}\n").unwrap_or_else(|e| panic!("{e}"));
    let out = run(p.path(), &["list"]);
    assert_eq!(out.status.code(), Some(20));
    insta::assert_snapshot!(text(p.path(), &out.stderr));
}

#[test]
fn missing_project_file() {
    let p = project();
    std::fs::remove_file(p.path().join("kitchen.yml")).unwrap_or_else(|e| panic!("{e}"));
    let out = run(p.path(), &["list"]);
    assert_eq!(out.status.code(), Some(20));
    insta::assert_snapshot!(text(p.path(), &out.stderr));
}

#[test]
fn local_and_global_files_merge_in_order() {
    let p = project();
    let home = p.path().join("home");
    std::fs::create_dir_all(home.join(".kitchen")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        home.join(".kitchen/config.yml"),
        "driver: {name: lxd, profile: global, from_global: 1}\nverifier: {sleep: 9}\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = Command::cargo_bin("kitchen-driver")
        .unwrap_or_else(|e| panic!("{e}"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", &home)
        .current_dir(p.path())
        .args(["diagnose", "--json", "default-debian-12"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    let i = &v["instances"]["default-debian-12"];
    // project beats global, local beats project; hashes merge
    assert_eq!(i["driver"]["profile"], "default");
    assert_eq!(i["driver"]["from_global"], 1);
    assert_eq!(i["verifier"]["sleep"], 1);
    assert_eq!(v["files"].as_array().map(Vec::len), Some(3));
}

#[test]
fn env_points_at_other_files() {
    let p = project();
    std::fs::rename(p.path().join("kitchen.yml"), p.path().join("ci.yml"))
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        p.path().join("ci.local.yml"),
        "driver: {profile: ci-local}\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = Command::cargo_bin("kitchen-driver")
        .unwrap_or_else(|e| panic!("{e}"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("KITCHEN_YML", "ci.yml")
        .env("SUITE_DIR", "from-env")
        .current_dir(p.path())
        .args(["diagnose", "--json", "default-debian-12"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    let i = &v["instances"]["default-debian-12"];
    assert_eq!(i["driver"]["profile"], "ci-local");
    assert_eq!(i["verifier"]["command"], "bats test/integration/from-env");
}

#[test]
fn example_project_list_and_diagnose() {
    // A copy of examples/kitchen.yml, so state files from a local `run-example` do not leak in.
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = tempfile::Builder::new()
        .prefix(&format!("kdtest-{}-{n}-example-", std::process::id()))
        .tempdir()
        .unwrap_or_else(|e| panic!("temp dir: {e}"));
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/kitchen.yml");
    std::fs::copy(example, dir.path().join("kitchen.yml")).unwrap_or_else(|e| panic!("{e}"));
    let out = run(dir.path(), &["list"]);
    assert_eq!(out.status.code(), Some(0));
    insta::assert_snapshot!("example_list", text(dir.path(), &out.stdout));
    let out = run(dir.path(), &["diagnose", "default-busybox"]);
    assert_eq!(out.status.code(), Some(0));
    insta::assert_snapshot!("example_diagnose", text(dir.path(), &out.stdout));
}

#[test]
fn usage_errors_exit_1_and_bare_wins_over_json() {
    let p = project();
    let out = run(p.path(), &["list", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(1));
    let out = run(p.path(), &["list", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    let out = run(p.path(), &["list", "-b", "-j", "busybox"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "default-busybox\n");
}

#[test]
fn broken_state_file_is_an_error_as_in_test_kitchen() {
    let p = project();
    write_state(p.path(), "default-busybox", "last_action: [create\n");
    let out = run(p.path(), &["list"]);
    assert_eq!(out.status.code(), Some(20));
    let err = text(p.path(), &out.stderr);
    assert!(
        err.contains("[ROOT]/.kitchen/default-busybox.yml:"),
        "{err}"
    );
    // --bare does not read state files
    assert_eq!(run(p.path(), &["list", "--bare"]).status.code(), Some(0));
    // an empty state file is no state
    write_state(p.path(), "default-busybox", "");
    assert_eq!(run(p.path(), &["list"]).status.code(), Some(0));
}

/// What bash completes for the words of `line` (the last one being completed), with the
/// script `kitchen-driver completions bash` prints.
fn bash_completes(script: &Path, words: &[&str]) -> String {
    let cword = words.len() - 1;
    let program = format!(
        "source {}\nCOMP_WORDS=({})\nCOMP_CWORD={cword}\n_kitchen__driver kitchen-driver '{}' '{}'\necho \"${{COMPREPLY[*]}}\"",
        script.display(),
        words
            .iter()
            .map(|w| format!("'{w}'"))
            .collect::<Vec<_>>()
            .join(" "),
        words[cword],
        words[cword - 1],
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(program)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn completions_complete_subcommands_and_their_flags() {
    let dir = project();
    let out = run(dir.path(), &["completions", "bash"]);
    assert_eq!(out.status.code(), Some(0));
    let script = dir.path().join("kitchen-driver.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    assert_eq!(bash_completes(&script, &["kitchen-driver", "te"]), "test");
    assert_eq!(
        bash_completes(&script, &["kitchen-driver", "test", "--fo"]),
        "--format"
    );
    assert_eq!(
        bash_completes(&script, &["kitchen-driver", "completions", "z"]),
        "zsh"
    );
    for (shell, marker) in [
        ("zsh", "#compdef kitchen-driver"),
        ("fish", "complete -c kitchen-driver"),
    ] {
        let out = run(dir.path(), &["completions", shell]);
        assert_eq!(out.status.code(), Some(0));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(marker), "{shell}: {text}");
        assert!(text.contains("failure-output"), "{shell} knows the flags");
    }
    assert_eq!(
        run(dir.path(), &["completions", "powershell"])
            .status
            .code(),
        Some(1)
    );
}

#[test]
fn every_command_help_has_examples() {
    let dir = project();
    for cmd in [
        "list",
        "diagnose",
        "create",
        "converge",
        "setup",
        "verify",
        "destroy",
        "test",
        "login",
        "exec",
        "completions",
    ] {
        let out = run(dir.path(), &[cmd, "--help"]);
        assert_eq!(out.status.code(), Some(0), "{cmd}");
        let help = String::from_utf8_lossy(&out.stdout);
        let examples = help
            .split("Examples:\n")
            .nth(1)
            .unwrap_or_else(|| panic!("{cmd}: {help}"));
        assert!(
            examples.lines().any(
                |l| l.trim_start().starts_with(&format!("kitchen-driver {cmd}"))
                    || (cmd == "login" && l.contains("kitchen-driver login"))
            ),
            "{cmd}: {examples}"
        );
    }
}
