//! The real `kitchen-driver` binary on a Docker engine reached over TCP with TLS and client
//! certificates: dockerd's 127.0.0.1:2376 listener and the certificates scripts/setup-host
//! makes in /etc/kitchen/docker-tls (KITCHEN_DOCKER_TLS_DIR elsewhere). The engine is the
//! local one, so the project's drop guard (over the socket) still removes what a test left.

use assert_cmd::Command;
use test_support::{
    Runtime, TestProject, basic_kitchen_yml, docker, login_through_pty_with_env, on_fresh_runtime,
    run_command, standard_project, succeed, text, unique_name,
};

/// The engine's TLS listener here.
const TLS_HOST: &str = "tcp://127.0.0.1:2376";

/// The directory with ca.pem, cert.pem and key.pem.
fn cert_dir() -> String {
    std::env::var("KITCHEN_DOCKER_TLS_DIR").unwrap_or_else(|_| "/etc/kitchen/docker-tls".into())
}

/// The binary with the Docker variables of `env` only.
fn kd(p: &TestProject, env: &[(&str, &str)]) -> Command {
    let mut c = p.kitchen_driver(300);
    for var in ["DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"] {
        c.env_remove(var);
    }
    c.envs(env.iter().copied());
    c
}

fn tls_env(cert_dir: &str) -> [(&'static str, &str); 3] {
    [
        ("DOCKER_HOST", TLS_HOST),
        ("DOCKER_TLS_VERIFY", "1"),
        ("DOCKER_CERT_PATH", cert_dir),
    ]
}

#[test]
fn docker_platform_through_docker_host_with_tls() {
    let p = standard_project("remote-docker-tls", &basic_kitchen_yml(Runtime::Docker));
    let dir = cert_dir();
    let env = tls_env(&dir);
    for action in ["create", "converge", "verify"] {
        let out = kd(&p, &env).arg(action).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{action}:\n{}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
    assert_eq!(p.containers(None).len(), 1);
    let out = kd(&p, &env)
        .args(["exec", "default-busybox", "-c", "cat /etc/hello/hello.conf"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("hello from default-busybox"));
    let tty = login_through_pty_with_env(
        &p,
        "default-busybox",
        "[ -t 0 ] && echo tty-yes-$(hostname)",
        "tty-yes-default-busybox",
        &env,
    );
    assert!(tty.contains("tty-yes-default-busybox"), "{tty}");
    let out = kd(&p, &env).arg("destroy").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(!p.state_exists("default-busybox"));
    p.assert_no_containers();
}

#[test]
fn dokken_keys_name_the_engine_and_forwarded_ports_are_at_its_host() {
    // A user network: the engine runs with --bridge=none here.
    let net = unique_name("remote-net");
    struct NetGuard(String);
    impl Drop for NetGuard {
        fn drop(&mut self) {
            let n = self.0.clone();
            on_fresh_runtime(async move {
                let _ = docker().await.remove_network(&n).await;
            });
        }
    }
    let n = net.clone();
    on_fresh_runtime(async move {
        docker()
            .await
            .create_network(bollard::models::NetworkCreateRequest {
                name: n,
                ..Default::default()
            })
            .await
            .expect("create a user network")
    });
    let _net_guard = NetGuard(net.clone());
    // `localhost`, not 127.0.0.1: the state must name the engine's host as written.
    let yml = format!(
        r#"
driver:
  name: docker
  docker_host_url: tcp://localhost:2376
  tls_verify: true
  cert_path: {dir}
provisioner:
  name: shell
  sudo: false
verifier:
  name: shell
  command: busybox wget -qO- http://$KITCHEN_FORWARDED_HOST:$KITCHEN_PORT/index.html
platforms:
  - name: busybox
    driver:
      image: kitchen/busybox:latest
      network_mode: {net}
      forward: ["80"]
      run_command: sh -c 'mkdir -p /www && exec httpd -f -p 80 -h /www'
suites:
  - name: default
    provisioner:
      command: echo served-by-$(hostname) > /www/index.html
"#,
        dir = cert_dir()
    );
    let p = standard_project("remote-docker-keys", &yml);
    let out = kd(&p, &[]).args(["verify"]).output().unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("served-by-default-busybox"), "{stdout}");
    // No key is reported unused.
    assert!(!stdout.contains("is ignored"), "{stdout}");
    let st = p.state("default-busybox");
    assert_eq!(st.get_str("forwarded_host"), Some("localhost"));
    let out = kd(&p, &[]).arg("destroy").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    p.assert_no_containers();
}

/// A failed `create`: non-zero exit, the message, no container, nothing recorded.
fn create_fails(p: &TestProject, env: &[(&str, &str)], expected: &[&str]) {
    let out = kd(p, env).arg("create").output().unwrap();
    let all = format!("{}\n{}", text(&out.stdout), text(&out.stderr));
    assert_ne!(out.status.code(), Some(0), "{all}");
    for e in expected {
        assert!(all.contains(e), "expected {e:?} in:\n{all}");
    }
    if p.state_exists("default-busybox") {
        assert!(p.state("default-busybox").get("container_id").is_none());
    }
    p.assert_no_containers();
}

#[test]
fn a_tls_engine_reached_without_certificates_says_what_to_set() {
    let p = standard_project("remote-docker-notls", &basic_kitchen_yml(Runtime::Docker));
    // Plain HTTP to the TLS port.
    create_fails(
        &p,
        &[("DOCKER_HOST", TLS_HOST)],
        &[
            "cannot connect to the Docker engine at tcp://127.0.0.1:2376",
            "DOCKER_TLS_VERIFY=1",
            "DOCKER_CERT_PATH",
        ],
    );
    // TLS on, but the certificate directory is empty.
    let empty = p.root().join("no-certs");
    std::fs::create_dir_all(&empty).unwrap();
    let empty = empty.to_string_lossy().into_owned();
    create_fails(
        &p,
        &tls_env(&empty),
        &["TLS is on (DOCKER_TLS_VERIFY)", "ca.pem"],
    );
}

#[test]
fn a_client_certificate_the_engine_does_not_trust_is_refused() {
    let p = standard_project(
        "remote-docker-untrusted",
        &basic_kitchen_yml(Runtime::Docker),
    );
    // The engine's CA is trusted, but the client certificate is self-signed.
    let dir = p.root().join("other-certs");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(format!("{}/ca.pem", cert_dir()), dir.join("ca.pem")).unwrap();
    let identity = lxd_client::ClientIdentity::generate("not-signed-by-the-ca").unwrap();
    identity
        .save(dir.join("cert.pem"), dir.join("key.pem"))
        .unwrap();
    let dir = dir.to_string_lossy().into_owned();
    create_fails(
        &p,
        &tls_env(&dir),
        &[
            "cannot connect to the Docker engine at tcp://127.0.0.1:2376",
            "does it trust",
        ],
    );
}

/// `destroy --orphans` looks on the engine kitchen.yml names (`docker_host_url` with TLS),
/// not only the default socket, which DOCKER_HOST points at nothing here: a container whose
/// state file is gone is found and removed over TLS.
#[test]
fn destroy_orphans_looks_on_the_engine_kitchen_yml_names() {
    let dir = cert_dir();
    let yml = basic_kitchen_yml(Runtime::Docker).replace(
        "driver:\n  name: docker\n",
        &format!(
            "driver:\n  name: docker\n  docker_host_url: {TLS_HOST}\n  tls_verify: true\n  cert_path: {dir}\n"
        ),
    );
    assert!(yml.contains("docker_host_url"), "{yml}");
    let p = standard_project("remote-docker-orphans", &yml);
    let no_socket = format!("unix://{}", p.root().join("no-docker.sock").display());
    let env = [("DOCKER_HOST", no_socket.as_str())];
    succeed(kd(&p, &env).arg("create"));
    assert_eq!(p.containers(None).len(), 1);
    // A run killed before it saved: no state names the container.
    std::fs::remove_file(p.root().join(".kitchen/default-busybox.yml")).unwrap();
    let err = run_command(kd(&p, &env).arg("list")).stderr;
    assert!(
        err.contains(&format!("on the Docker engine at {TLS_HOST}"))
            && err.contains("1 resource(s) of this checkout"),
        "{err}"
    );
    let out = succeed(kd(&p, &env).args(["destroy", "--orphans"]));
    assert!(out.contains("Removed Docker container"), "{out}");
    p.assert_no_containers();
}
