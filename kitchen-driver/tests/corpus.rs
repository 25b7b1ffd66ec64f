//! Every case of the real-world corpus (`tests/corpus/cases.json`, with what test-kitchen
//! 4.1.0 printed) as a test of the real binary: same instance names, same order, same exit
//! status. Cases whose ERB needs full Ruby run with the host's `ruby` (scripts/setup-host).

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt as _;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn cases() -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(corpus_dir().join("cases.json"))
        .unwrap_or_else(|e| panic!("cannot read cases.json: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("cases.json: {e}"))
}

/// A temp dir named `kdtest-<pid>-<n>-<what>-...`, removed on drop even if the test panics.
fn temp_dir(what: &str) -> tempfile::TempDir {
    test_support::unique_dir(what)
}

fn copy_spec(spec: &str, to_dir: &Path) {
    let (file, name) = spec
        .split_once(':')
        .unwrap_or_else(|| panic!("bad file spec {spec}"));
    std::fs::copy(corpus_dir().join("files").join(file), to_dir.join(name))
        .unwrap_or_else(|e| panic!("copy {file}: {e}"));
}

fn run_case(id: &str) {
    let all = cases();
    let case = all
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no case {id} in cases.json"));
    let project = temp_dir("corpus");
    let home = temp_dir("home");
    copy_spec(case["project"].as_str().unwrap_or_default(), project.path());
    if let Some(local) = case["local"].as_str() {
        copy_spec(local, project.path());
    }
    if let Some(global) = case["global_file"].as_str() {
        let dir = home.path().join(".kitchen");
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        std::fs::copy(
            corpus_dir().join("files").join(global),
            dir.join("config.yml"),
        )
        .unwrap_or_else(|e| panic!("copy {global}: {e}"));
    }
    if let Some(setup) = case["setup"].as_str() {
        let st = Command::new("sh")
            .arg("-c")
            .arg(setup)
            .current_dir(project.path())
            .status()
            .unwrap_or_else(|e| panic!("setup: {e}"));
        assert!(st.success(), "setup `{setup}` failed");
    }
    let mut cmd = Command::cargo_bin("kitchen-driver").unwrap_or_else(|e| panic!("{e}"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .current_dir(project.path());
    if let Some(env) = case["env"].as_str() {
        for kv in env.split_whitespace() {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            cmd.env(k, v);
        }
    }
    let base = cmd;
    let mut cmd = clone_cmd(&base);
    cmd.args(["list", "--bare"]);
    let out = cmd.output().unwrap_or_else(|e| panic!("run: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let got: Vec<&str> = stdout.lines().collect();
    let want: Vec<&str> = case["instances"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    assert_eq!(got, want, "instances differ for {id}; stderr:\n{stderr}");
    assert_eq!(
        out.status.code(),
        case["exit"].as_i64().map(|c| c as i32),
        "exit status differs for {id}; stderr:\n{stderr}"
    );
    // What test-kitchen's children printed on stderr (e.g. git via ERB backticks) appears too.
    for line in case["stderr"].as_array().into_iter().flatten() {
        let line = line.as_str().unwrap_or_default();
        assert!(stderr.contains(line), "stderr lacks {line:?}:\n{stderr}");
    }
    if case["exit"] == 0 {
        // The table and diagnose work on every corpus file too.
        let table = clone_cmd(&base)
            .arg("list")
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            table.status.code(),
            Some(0),
            "list: {}",
            String::from_utf8_lossy(&table.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&table.stdout).lines().count(),
            want.len() + 1
        );
        let diag = clone_cmd(&base)
            .args(["diagnose", "--json"])
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            diag.status.code(),
            Some(0),
            "diagnose: {}",
            String::from_utf8_lossy(&diag.stderr)
        );
        let v: serde_json::Value =
            serde_json::from_slice(&diag.stdout).unwrap_or_else(|e| panic!("diagnose JSON: {e}"));
        let diag_names: Vec<&str> = v["instances"]
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let mut unique = want.clone();
        unique.dedup();
        assert_eq!(diag_names, unique);
        let yaml = clone_cmd(&base)
            .arg("diagnose")
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(yaml.status.code(), Some(0));
        assert!(String::from_utf8_lossy(&yaml.stdout).starts_with("---\n"));
    }
    // test-kitchen's own message for a non-zero exit, with our command name.
    if let Some(msg) = case["output"].as_array().and_then(|o| {
        o.iter()
            .filter_map(|l| l.as_str())
            .find(|l| l.starts_with("No instances"))
    }) {
        let ours = msg.replace("`kitchen list'", "`kitchen-driver list'");
        assert!(stderr.contains(&ours), "stderr lacks {ours:?}:\n{stderr}");
    }
}

/// A copy of `base` (program, env, cwd) without arguments.
fn clone_cmd(base: &Command) -> Command {
    let mut c = Command::new(base.get_program());
    c.env_clear();
    for (k, v) in base.get_envs() {
        if let Some(v) = v {
            c.env(k, v);
        }
    }
    if let Some(d) = base.get_current_dir() {
        c.current_dir(d);
    }
    c
}

macro_rules! corpus {
    ($($test:ident => $id:literal,)*) => {
        $(
            #[test]
            fn $test() {
                run_case($id);
            }
        )*

        /// Every case in cases.json has a test above, in the same order.
        #[test]
        fn every_corpus_case_has_a_test() {
            let ids: Vec<String> = cases()
                .iter()
                .filter_map(|c| c["id"].as_str().map(str::to_owned))
                .collect();
            assert_eq!(ids, [$($id),*]);
        }
    };
}

corpus! {
    chef_chef => "chef-chef",
    chef_chef_plus_local_dokken => "chef-chef+local-dokken",
    chef_chef_plus_local_exec_windows => "chef-chef+local-exec-windows",
    sous_chefs_apache2 => "sous-chefs-apache2",
    sous_chefs_apache2_plus_local_dokken => "sous-chefs-apache2+local-dokken",
    sous_chefs_apache2_plus_global => "sous-chefs-apache2+global",
    sous_chefs_apache2_dokken_only => "sous-chefs-apache2-dokken-only",
    sous_chefs_apache2_2014_legacy => "sous-chefs-apache2-2014-legacy",
    sous_chefs_rundeck_plus_local => "sous-chefs-rundeck+local",
    sous_chefs_iis => "sous-chefs-iis",
    datadog_puppet_datadog_agent => "datadog-puppet-datadog-agent",
    datadog_ansible_datadog => "datadog-ansible-datadog",
    dev_sec_ansible_ssh_hardening => "dev-sec-ansible-ssh-hardening",
    azure_terraform_azurerm_compute => "azure-terraform-azurerm-compute",
    kitchen_dokken => "kitchen-dokken",
    kitchen_docker => "kitchen-docker",
    kitchen_docker_windows => "kitchen-docker-windows",
    test_kitchen => "test-kitchen",
    test_kitchen_plus_local_shell => "test-kitchen+local-shell",
    o1ahmad_ansible_role_openssh => "o1ahmad-ansible-role-openssh",
}
