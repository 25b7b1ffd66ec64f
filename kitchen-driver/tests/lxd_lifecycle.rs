//! The real `kitchen-driver` binary on temporary kitchen projects with `driver: lxd`, on the
//! real LXD daemon with `kitchen/busybox` and `kitchen/debian-12`. Every test removes what it
//! created (drop guard on `user.kitchen.project`) and asserts that nothing is left.

mod common;

use assert_cmd::Command;
use common::{TestProject, on_fresh_runtime, text};
use kitchen_driver::lifecycle::Action;

fn kd(p: &TestProject) -> Command {
    p.kitchen_driver(600)
}

fn project(label: &str, yml: &str) -> TestProject {
    let p = TestProject::new(label);
    p.write("kitchen.yml", yml);
    p.write(
        "test/integration/default/bootstrap.sh",
        "#!/bin/sh\nset -eu\nmkdir -p /etc/hello\necho \"hello from $(hostname)\" > /etc/hello/hello.conf\necho converged-ok TEST_KITCHEN=$TEST_KITCHEN on $(hostname)\n",
    );
    p.write(
        "test/integration/default/data/verify.sh",
        "#!/bin/sh\nset -eu\ngrep -q 'hello from' /etc/hello/hello.conf\necho verified-ok\n",
    );
    p
}

const BOTH: &str = r#"
driver:
  name: lxd
provisioner:
  name: shell
  sudo: false
verifier:
  name: shell
  remote_exec: true
  command: sh /tmp/kitchen/data/verify.sh
platforms:
  - name: busybox
    driver:
      image: kitchen/busybox
  - name: debian-12
    driver:
      image: kitchen/debian-12
      config:
        limits.memory: 512MiB
suites:
  - name: default
"#;

#[test]
fn example_suite_passes_on_busybox_and_debian_in_parallel() {
    let p = project("lxd-pass", BOTH);
    let out = kd(&p).args(["test", "-c"]).output().unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    for i in ["default-busybox", "default-debian-12"] {
        assert!(
            // The hostname inside is the instance's name, as test-kitchen users expect.
            stdout.contains(&format!("[{i}]        converged-ok TEST_KITCHEN=1 on {i}")),
            "{stdout}"
        );
        assert!(
            stdout.contains(&format!("[{i}]        verified-ok")),
            "{stdout}"
        );
        assert!(!p.state_exists(i));
    }
    p.assert_no_containers();
}

#[test]
fn instance_carries_its_keys_and_systemd_is_up_then_verify_failure_exits_20() {
    let yml = BOTH.replace(
        "command: sh /tmp/kitchen/data/verify.sh",
        "command: systemctl is-system-running; exit 6",
    );
    let p = project("lxd-keys", &yml);
    let out = kd(&p)
        .args(["verify", "default-debian-12"])
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(20), "{stdout}\n{stderr}");
    assert!(stderr.contains("1 actions failed."), "{stderr}");
    // Ready meant systemd had finished booting.
    assert!(
        stdout.contains("[default-debian-12]        running")
            || stdout.contains("[default-debian-12]        degraded"),
        "{stdout}"
    );
    let st = p.state("default-debian-12");
    assert_eq!(st.last_action(), Some(Action::Setup));
    assert_eq!(st.last_error(), Some("ActionFailed"));
    let name = st.get_str("container_name").unwrap().to_string();
    let root = p.root().to_string_lossy().into_owned();
    let inst = on_fresh_runtime(async move {
        lxd_client::Client::connect_local()
            .await
            .unwrap()
            .instances()
            .get(&name)
            .await
            .unwrap()
    });
    assert_eq!(inst.config.get("user.kitchen.project"), Some(&root));
    assert_eq!(
        inst.config.get("user.kitchen.instance").map(String::as_str),
        Some("default-debian-12")
    );
    assert_eq!(
        inst.config.get("limits.memory").map(String::as_str),
        Some("512MiB")
    );
    assert!(inst.name.starts_with("kitchen-") && inst.name.ends_with("-default-debian-12"));

    let out = kd(&p).args(["destroy"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!p.state_exists("default-debian-12"));
    p.assert_no_containers();
}

#[test]
fn converge_failure_retries_hooks_uploads_exec_and_login() {
    let yml = r#"
driver: {name: lxd, image: kitchen/busybox}
provisioner:
  name: shell
  sudo: false
  retry_on_exit_code: [42]
  max_retries: 1
  wait_for_retry: 0
  uploads: {files/extra.txt: /opt/up}
  downloads: {/tmp/out.txt: downloaded}
lifecycle:
  post_create:
    - remote: echo hooked > /tmp/hook.txt
  pre_converge:
    - local: echo "$KITCHEN_INSTANCE_NAME" > local-hook.txt
platforms: [{name: busybox}]
suites: [{name: default}]
"#;
    let p = project("lxd-misc", yml);
    p.write("files/extra.txt", "extra-upload\n");
    p.write(
        "test/integration/default/bootstrap.sh",
        "#!/bin/sh\nset -eu\ncat /tmp/hook.txt /opt/up/extra.txt\nif [ ! -f /tmp/tried ]; then touch /tmp/tried; exit 42; fi\necho second-try > /tmp/out.txt\necho converged-second-try\n",
    );
    let out = kd(&p).args(["converge"]).output().unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains("hooked") && stdout.contains("extra-upload"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Retryable exit code 42") && stdout.contains("converged-second-try"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read_to_string(p.root().join("local-hook.txt")).unwrap(),
        "default-busybox\n"
    );
    assert_eq!(
        std::fs::read_to_string(p.root().join("downloaded/out.txt")).unwrap(),
        "second-try\n"
    );

    let out = kd(&p)
        .args([
            "exec",
            "default-busybox",
            "-c",
            "echo in-$(hostname); ls /tmp/kitchen",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("bootstrap.sh"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stdout).contains("[default-busybox]        in-default-busybox"),
        "{}",
        text(&out.stdout)
    );

    let tty = common::login_through_pty(
        &p,
        "default-busybox",
        "[ -t 0 ] && echo tty-yes-$(cat /tmp/hook.txt)",
        "tty-yes-hooked",
    );
    assert!(tty.contains("tty-yes-hooked"), "{tty}");

    // A converge that fails for good keeps the instance (last_action create) until destroy.
    p.write(
        "test/integration/default/bootstrap.sh",
        "#!/bin/sh\necho broken\nexit 3\n",
    );
    let out = kd(&p).args(["converge"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(20),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(
        p.state("default-busybox").last_error(),
        Some("ActionFailed")
    );
    assert_eq!(p.lxd_instances().len(), 1);
    let out = kd(&p).args(["destroy"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    p.assert_no_containers();
}

#[test]
fn missing_image_says_how_to_import_it() {
    let yml = format!(
        "driver: {{name: lxd, image: kdtest-{}-missing}}\nplatforms: [{{name: nope}}]\nsuites: [{{name: default}}]\n",
        std::process::id()
    );
    let p = project("lxd-noimage", &yml);
    let out = kd(&p).args(["create"]).output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(20), "{stderr}");
    assert!(
        stderr.contains("missing")
            && stderr.contains("lxc image import")
            && !stderr.contains("scripts/setup-host"),
        "{stderr}"
    );
    p.assert_no_containers();
}

#[test]
fn one_kitchen_yml_with_lxd_and_docker_platforms_passes_with_c() {
    let yml = r#"
provisioner: {name: shell, sudo: false}
verifier: {name: shell, remote_exec: true, command: "sh /tmp/kitchen/data/verify.sh"}
platforms:
  - name: busybox-lxd
    driver: {name: lxd, image: kitchen/busybox}
  - name: busybox-docker
    driver: {name: docker, image: "kitchen/busybox:latest"}
suites:
  - name: default
"#;
    let p = project("mixed", yml);
    let out = kd(&p).args(["test", "-c"]).output().unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    for i in ["default-busybox-lxd", "default-busybox-docker"] {
        assert!(
            stdout.contains(&format!("[{i}]        verified-ok")),
            "{stdout}"
        );
        assert!(!p.state_exists(i));
    }
    assert!(stdout.contains("LXD instance kitchen-"), "{stdout}");
    assert!(stdout.contains("Container kitchen-"), "{stdout}");
    p.assert_no_containers();
}

#[test]
fn lxd_keys_profiles_storage_pool_devices_config_and_ephemeral() {
    let p = project("lxd-keys2", "placeholder: true\n");
    // A host directory shared as a disk device. The container is unprivileged (its root is
    // an unmapped uid on the host), so the directory and its parents must be world-readable.
    let share = p.write("share/hello.txt", "from-the-host\n");
    for dir in [p.root().to_path_buf(), p.root().join("share")] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let share_dir = share.parent().unwrap().display().to_string();
    let yml = r#"
driver:
  name: lxd
  image: kitchen/busybox
  profiles: [default]
  storage_pool: default
  ephemeral: true
  config:
    environment.KD_VAR: hello
  devices:
    eth9: {type: none}
    share: {type: disk, source: SHARE, path: /mnt/share}
provisioner: {name: shell, sudo: false, command: "true"}
verifier:
  name: shell
  remote_exec: true
  command: 'test "$KD_VAR" = hello && echo env-ok && cat /mnt/share/hello.txt'
platforms: [{name: busybox}]
suites: [{name: default}]
"#
    .replace("SHARE", &share_dir);
    p.write("kitchen.yml", &yml);
    let out = kd(&p).args(["verify"]).output().unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("env-ok"), "{stdout}");
    assert!(stdout.contains("from-the-host"), "{stdout}");
    let name = p
        .state("default-busybox")
        .get_str("container_name")
        .unwrap()
        .to_string();
    let inst = on_fresh_runtime(async move {
        lxd_client::Client::connect_local()
            .await
            .unwrap()
            .instances()
            .get(&name)
            .await
            .unwrap()
    });
    assert!(inst.ephemeral, "ephemeral");
    assert_eq!(inst.profiles, ["default"]);
    assert_eq!(inst.devices["root"]["pool"], "default");
    assert_eq!(inst.devices["eth9"]["type"], "none");
    assert_eq!(inst.devices["share"]["source"], share_dir);
    // An ephemeral instance disappears when stopped; destroy copes.
    let out = kd(&p).args(["destroy"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    p.assert_no_containers();
}

#[test]
fn json_events_and_junit_carry_lxd_resource_samples() {
    let yml = BOTH.replace(
        "  - name: debian-12\n    driver:\n      image: kitchen/debian-12\n      config:\n        limits.memory: 512MiB\n",
        "",
    );
    assert!(!yml.contains("debian"), "{yml}");
    let p = project("lxd-samples", &yml);
    let out = kd(&p)
        .args(["test", "--format", "json", "--junit", "junit.xml"])
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    let samples: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["event"] == "resource_sample")
        .collect();
    // LXD's instance state reports memory and CPU: converge and verify are sampled.
    for action in ["converge", "verify"] {
        let sample = samples
            .iter()
            .find(|s| s["action"] == action)
            .unwrap_or_else(|| panic!("a {action} sample in {stdout}"));
        assert!(
            sample["peak_memory_bytes"].as_u64().unwrap() > 0,
            "{sample}"
        );
        assert!(sample["cpu_time"].as_f64().unwrap() > 0.0, "{sample}");
        assert_eq!(sample["instance"]["name"], "default-busybox");
    }
    let xml = std::fs::read_to_string(p.root().join("junit.xml")).unwrap();
    assert!(
        xml.contains(r#"<property name="peak_memory_bytes" value=""#),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<property name="cpu_time_seconds" value=""#),
        "{xml}"
    );
    p.assert_no_containers();
}
