//! Docker driver specifics on the real engine: missing image, privileged refused, systemd as
//! init in kitchen/debian-12, a Dockerfile platform, container options, published ports
//! recorded in state, leftovers found by label, the instance lock, unknown drivers.

mod common;

use bollard::models::NetworkCreateRequest;
use bollard::query_parameters::RemoveImageOptions;
use common::{TestProject, busybox, docker, instance, on_fresh_runtime, run, run_one};
use kitchen_driver::Error;
use kitchen_driver::lifecycle::{Action, Command, DestroyMode};
use kitchen_driver::state::StateFile;
use serde_json::json;

fn quiet_shell() -> serde_json::Value {
    json!({"name": "shell", "sudo": false, "command": "true"})
}

#[tokio::test]
async fn missing_image_is_a_clear_error_and_creates_nothing() {
    let p = TestProject::new("noimage");
    let image = format!("kdtest-{}-missing/image:latest", std::process::id());
    let inst = instance(
        "default",
        "nope",
        json!({"name": "docker", "image": image}),
        quiet_shell(),
        json!({"name": "shell"}),
        json!({}),
    );
    let (o, _) = run(&p, &[inst], Command::Action(Action::Create), 1).await;
    let err = o[0].error.as_ref().expect("fails");
    assert!(matches!(err, Error::MissingImage { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(&image)
            && msg.contains(&format!("docker build -t {image}"))
            && !msg.contains("scripts/setup-host"),
        "{msg}"
    );
    let st = p.state("default-nope");
    assert_eq!(st.last_error(), Some("ActionFailed"));
    assert_eq!(st.get_str("container_id"), None);
    p.assert_no_containers();
}

#[tokio::test]
async fn privileged_refusal_is_reported_and_nothing_is_orphaned() {
    let p = TestProject::new("priv");
    let inst = instance(
        "default",
        "busybox",
        json!({"name": "docker", "image": "kitchen/busybox:latest", "privileged": true}),
        quiet_shell(),
        json!({"name": "shell"}),
        json!({}),
    );
    let (o, _) = run(&p, &[inst], Command::Action(Action::Create), 1).await;
    match &o[0].error {
        // On this kind of host privileged containers cannot start (runtimes-here.md).
        Some(e) => {
            let msg = e.to_string();
            assert!(
                msg.contains("privileged") && msg.contains("cap_add"),
                "{msg}"
            );
            assert_eq!(p.state("default-busybox").get_str("container_id"), None);
            p.assert_no_containers();
        }
        // A host that allows privileged containers: then it must have worked fully.
        None => {
            assert_eq!(p.containers(Some("default-busybox")).len(), 1);
            let inst = instance(
                "default",
                "busybox",
                busybox(),
                quiet_shell(),
                json!({"name": "shell"}),
                json!({}),
            );
            let (o, _) = run(&p, &[inst], Command::Action(Action::Destroy), 1).await;
            assert!(o[0].error.is_none());
            p.assert_no_containers();
        }
    }
}

#[tokio::test]
async fn systemd_boots_as_init_in_debian() {
    let p = TestProject::new("systemd");
    let driver =
        json!({"name": "docker", "image": "kitchen/debian-12:latest", "run_command": "/sbin/init"});
    let verifier = json!({"name": "shell", "remote_exec": true, "command": "s=$(systemctl is-system-running); echo \"system is $s\"; [ \"$s\" = running ] || [ \"$s\" = degraded ]; test \"$(cat /proc/1/comm)\" = systemd"});
    let prov = json!({"name": "shell", "command": "id -u; sudo -n true && echo sudo-works"});
    let inst = instance("default", "debian-12", driver, prov, verifier, json!({}));
    let (o, out) = run(&p, &[inst], Command::Test(DestroyMode::Always), 1).await;
    assert!(o[0].error.is_none(), "{:?}\n{out}", o[0].error);
    assert!(out.contains("system is "), "{out}");
    assert!(out.contains("sudo-works"), "{out}");
    p.assert_no_containers();
}

#[tokio::test]
async fn dockerfile_platform_is_built_once_and_cached() {
    let p = TestProject::new("dockerfile");
    // The project path in a comment makes the content (and so the tag) unique to this test.
    p.write(
        "docker/Dockerfile",
        &format!(
            "# {}\nFROM kitchen/busybox:latest\nARG FLAVOUR=plain\nRUN echo \"built $FLAVOUR\" > /built.txt\n",
            p.root().display()
        ),
    );
    let driver = json!({"name": "docker", "dockerfile": "docker/Dockerfile", "build_args": {"FLAVOUR": "spicy"}});
    let verifier =
        json!({"name": "shell", "remote_exec": true, "command": "grep 'built spicy' /built.txt"});
    let inst = instance(
        "default",
        "custom",
        driver,
        quiet_shell(),
        verifier,
        json!({}),
    );
    let (o, out) = run_one(&p, &inst, Command::Test(DestroyMode::Never)).await;
    assert!(o[0].error.is_none(), "{:?}\n{out}", o[0].error);
    assert!(
        out.contains("Building image kitchen-driver-build:"),
        "{out}"
    );
    let image = p
        .state("default-custom")
        .get_str("image")
        .unwrap()
        .to_string();
    struct ImageGuard(String);
    impl Drop for ImageGuard {
        fn drop(&mut self) {
            let tag = self.0.clone();
            on_fresh_runtime(async move {
                let _ = docker()
                    .await
                    .remove_image(
                        &tag,
                        Some(RemoveImageOptions {
                            force: true,
                            ..Default::default()
                        }),
                        None,
                    )
                    .await;
            });
        }
    }
    let _image_guard = ImageGuard(image.clone());
    // Second run: same content, no build.
    let (o, out) = run_one(&p, &inst, Command::Test(DestroyMode::Always)).await;
    assert!(o[0].error.is_none(), "{:?}\n{out}", o[0].error);
    assert!(!out.contains("Building image"), "cached: {out}");
    p.assert_no_containers();
}

#[tokio::test]
async fn container_options_reach_the_container() {
    let p = TestProject::new("opts");
    let shared = p.write("shared/from-host.txt", "host-file\n");
    let driver = json!({
        "name": "docker", "image": "kitchen/busybox:latest",
        "env": {"APP_MODE": "test"},
        "volumes": [format!("{}:/mnt/shared:ro", shared.parent().unwrap().display())],
        "tmpfs": ["/scratch:size=1m"],
        "hostname": "custom-host",
        "labels": {"team": "infra"},
        "memory": "256m",
        "cpus": 0.5,
        "cap_drop": ["NET_RAW"]
    });
    let verifier = json!({"name": "shell", "remote_exec": true, "command":
        "set -e; test \"$APP_MODE\" = test; test \"$(hostname)\" = custom-host; cat /mnt/shared/from-host.txt; grep -q ' /scratch tmpfs' /proc/mounts; echo options-ok"});
    let inst = instance(
        "default",
        "busybox",
        driver,
        quiet_shell(),
        verifier,
        json!({}),
    );
    let (o, out) = run_one(&p, &inst, Command::Action(Action::Verify)).await;
    assert!(o[0].error.is_none(), "{:?}\n{out}", o[0].error);
    assert!(
        out.contains("host-file") && out.contains("options-ok"),
        "{out}"
    );
    let id = p
        .state("default-busybox")
        .get_str("container_id")
        .unwrap()
        .to_string();
    let inspect =
        on_fresh_runtime(async move { docker().await.inspect_container(&id, None).await.unwrap() });
    let labels = inspect.config.as_ref().unwrap().labels.clone().unwrap();
    assert_eq!(labels["team"], "infra");
    assert_eq!(labels["io.kitchen-driver.instance"], "default-busybox");
    let hc = inspect.host_config.unwrap();
    assert_eq!(hc.memory, Some(256 << 20));
    assert_eq!(hc.nano_cpus, Some(500_000_000));
    assert_eq!(hc.network_mode.as_deref(), Some("none"));
    let (o, _) = run(&p, &[inst], Command::Action(Action::Destroy), 1).await;
    assert!(o[0].error.is_none());
    p.assert_no_containers();
}

#[tokio::test]
async fn published_port_is_recorded_in_state_and_reachable() {
    let p = TestProject::new("forward");
    let net = format!("kdtest-{}-net-forward", std::process::id());
    struct NetGuard(String);
    impl Drop for NetGuard {
        fn drop(&mut self) {
            let n = self.0.clone();
            on_fresh_runtime(async move {
                let _ = docker().await.remove_network(&n).await;
            });
        }
    }
    let n2 = net.clone();
    on_fresh_runtime(async move {
        docker()
            .await
            .create_network(NetworkCreateRequest {
                name: n2,
                ..Default::default()
            })
            .await
            .expect("create a user network")
    });
    let _net_guard = NetGuard(net.clone());
    let driver = json!({
        "name": "docker", "image": "kitchen/busybox:latest", "network_mode": net,
        "forward": ["127.0.0.1::80"],
        "run_command": "sh -c 'mkdir -p /www && exec httpd -f -p 80 -h /www'"
    });
    let prov = json!({"name": "shell", "sudo": false, "command": "echo served-by-$(hostname) > /www/index.html"});
    // The verifier runs on the host and reaches the published port from the state.
    let verifier = json!({"name": "shell", "command": "busybox wget -qO- http://127.0.0.1:$KITCHEN_PORT/index.html"});
    let inst = instance("default", "busybox", driver, prov, verifier, json!({}));
    let (o, out) = run_one(&p, &inst, Command::Action(Action::Verify)).await;
    assert!(o[0].error.is_none(), "{:?}\n{out}", o[0].error);
    assert!(out.contains("served-by-default-busybox"), "{out}");
    let st = p.state("default-busybox");
    let port: u16 = st.get_str("port").expect("port in state").parse().unwrap();
    assert!(port > 0);
    assert_eq!(
        st.get("forwarded_ports").unwrap()["80/tcp"],
        port.to_string()
    );
    let (o, _) = run(&p, &[inst], Command::Action(Action::Destroy), 1).await;
    assert!(o[0].error.is_none());
    p.assert_no_containers();
}

#[tokio::test]
async fn leftovers_of_a_lost_state_file_are_found_by_label() {
    let p = TestProject::new("orphan");
    let inst = instance(
        "default",
        "busybox",
        busybox(),
        quiet_shell(),
        json!({"name": "shell"}),
        json!({}),
    );
    let (o, _) = run_one(&p, &inst, Command::Action(Action::Create)).await;
    assert!(o[0].error.is_none());
    let first = p.containers(Some("default-busybox"));
    assert_eq!(first.len(), 1);
    // Lose the state file: the container is now unknown to the state...
    std::fs::remove_file(StateFile::new(p.root(), "default-busybox").path()).unwrap();
    // ...but create finds and replaces it, and destroy finds the rest.
    let (o, out) = run_one(&p, &inst, Command::Action(Action::Create)).await;
    assert!(o[0].error.is_none(), "{:?}", o[0].error);
    assert!(out.contains("Removed leftover container"), "{out}");
    let second = p.containers(Some("default-busybox"));
    assert_eq!(second.len(), 1);
    assert_ne!(first, second);
    std::fs::remove_file(StateFile::new(p.root(), "default-busybox").path()).unwrap();
    let (o, _) = run(&p, &[inst], Command::Action(Action::Destroy), 1).await;
    assert!(o[0].error.is_none());
    p.assert_no_containers();
}

#[tokio::test]
async fn a_locked_instance_is_refused_and_unknown_drivers_are_named() {
    let p = TestProject::new("lock");
    let inst = instance(
        "default",
        "busybox",
        busybox(),
        quiet_shell(),
        json!({"name": "shell"}),
        json!({}),
    );
    let lock = StateFile::new(p.root(), "default-busybox").lock().unwrap();
    let (o, _) = run_one(&p, &inst, Command::Action(Action::Create)).await;
    assert!(
        matches!(o[0].error, Some(Error::Locked { .. })),
        "{:?}",
        o[0].error
    );
    drop(lock);

    let inst = instance(
        "default",
        "vagrant",
        json!({"name": "vagrant", "box": "x"}),
        quiet_shell(),
        json!({"name": "shell"}),
        json!({}),
    );
    let (o, _) = run(&p, &[inst], Command::Action(Action::Create), 1).await;
    let msg = o[0].error.as_ref().unwrap().to_string();
    assert!(
        msg.contains("`vagrant`") && msg.contains("lxd, docker"),
        "{msg}"
    );
    p.assert_no_containers();
}
