//! The real `kitchen-driver` binary on an LXD server reached over HTTPS (the local daemon's
//! 127.0.0.1:8443 listener, which scripts/setup-host turns on): an `lxc` remote added with a
//! trust token, `remote_url` with a pinned fingerprint, and the refusals (wrong pin,
//! untrusted client, no pin). Each test trusts a client certificate of its own and removes
//! that trust entry afterwards, even when it fails; nothing of its project survives it.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use lxd_client::{Client, ClientIdentity, LxcConfig};
use test_support::{
    TestProject, login_through_pty_with_env, on_fresh_runtime, run_command, standard_project,
    succeed, text, unique_name,
};

/// LXD's HTTPS listener here.
const LXD_URL: &str = "https://127.0.0.1:8443";

/// A client certificate this test made trusted; the trust entry is removed on drop.
struct Trusted {
    fingerprint: String,
    name: String,
}

impl Drop for Trusted {
    fn drop(&mut self) {
        let fingerprint = self.fingerprint.clone();
        let name = self.name.clone();
        on_fresh_runtime(async move {
            let client = Client::connect_local().await.expect("LXD socket");
            let certificates = client.certificates();
            let _ = certificates.delete(&fingerprint).await;
            // A token nobody used is still pending: revoke it too.
            if let Ok(tokens) = certificates.tokens().await {
                for t in tokens.into_iter().filter(|t| t.client_name == name) {
                    let _ = certificates.revoke_token(&t).await;
                }
            }
        });
    }
}

/// Adds the lxc remote `remote` to `lxc_conf` with the real `lxc remote add NAME TOKEN`, the
/// token made over the local socket; `lxc` generates the client certificate there.
fn add_lxc_remote_with_token(lxc_conf: &Path, remote: &str) -> Trusted {
    let name = unique_name("remote-token");
    let token = on_fresh_runtime({
        let name = name.clone();
        async move {
            let client = Client::connect_local().await.expect("LXD socket");
            client
                .certificates()
                .create_token(&name)
                .await
                .expect("a trust token")
                .encode()
        }
    });
    // The guard exists before the token is used, so a failing `lxc` still revokes it.
    let mut trusted = Trusted {
        fingerprint: String::new(),
        name,
    };
    std::fs::create_dir_all(lxc_conf).unwrap();
    let out = std::process::Command::new("lxc")
        .args(["remote", "add", remote, &token])
        .env("LXD_CONF", lxc_conf)
        .output()
        .expect("lxc runs");
    assert!(
        out.status.success(),
        "lxc remote add: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    trusted.fingerprint = LxcConfig::load_from(lxc_conf)
        .unwrap()
        .client_identity()
        .unwrap()
        .fingerprint()
        .to_string();
    trusted
}

/// A new client certificate in `dir` (client.crt, client.key), trusted when `trust` is set.
fn client_certificate(dir: &Path, trust: bool) -> (PathBuf, PathBuf, Trusted) {
    let name = unique_name("remote-url");
    let identity = ClientIdentity::generate(&name).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let (cert, key) = (dir.join("client.crt"), dir.join("client.key"));
    identity.save(&cert, &key).unwrap();
    let trusted = Trusted {
        fingerprint: identity.fingerprint().to_string(),
        name: name.clone(),
    };
    if trust {
        let certificate = identity.certificate().clone();
        on_fresh_runtime(async move {
            let client = Client::connect_local().await.expect("LXD socket");
            client
                .certificates()
                .add_client(&certificate, &name)
                .await
                .expect("trust the client certificate");
        });
    }
    (cert, key, trusted)
}

/// The SHA-256 fingerprint of the server's certificate, as `lxc info` shows it.
fn server_fingerprint() -> String {
    on_fresh_runtime(async {
        lxd_client::fetch_server_certificate(LXD_URL)
            .await
            .expect("LXD answers HTTPS on 127.0.0.1:8443 (run scripts/setup-host)")
            .fingerprint()
            .to_string()
    })
}

/// The standard kitchen.yml on LXD with `driver` lines added to the platform's driver block.
fn kitchen_yml(driver: &str) -> String {
    test_support::basic_kitchen_yml(test_support::Runtime::Lxd).replace(
        "      image: kitchen/busybox\n",
        &format!("      image: kitchen/busybox\n{driver}"),
    )
}

fn kd(p: &TestProject, env: &[(&str, &str)]) -> Command {
    let mut c = p.kitchen_driver(300);
    c.env_remove("LXD_CONF");
    for var in [
        "KITCHEN_LXD_REMOTE_URL",
        "KITCHEN_LXD_SERVER_CERTIFICATE",
        "KITCHEN_LXD_CLIENT_CERTIFICATE",
        "KITCHEN_LXD_CLIENT_KEY",
    ] {
        c.env_remove(var);
    }
    c.envs(env.iter().copied());
    c
}

/// create, converge, verify, exec, login and destroy, each exiting 0; nothing left.
fn full_cycle(p: &TestProject, env: &[(&str, &str)]) {
    for action in ["create", "converge", "verify"] {
        let out = kd(p, env).arg(action).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{action}:\n{}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
    assert_eq!(p.lxd_instances().len(), 1, "one instance on the server");
    let out = kd(p, env)
        .args(["exec", "default-busybox", "-c", "cat /etc/hello/hello.conf"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("hello from default-busybox"),
        "{}",
        text(&out.stdout)
    );
    let tty = login_through_pty_with_env(
        p,
        "default-busybox",
        "[ -t 0 ] && echo tty-yes-$(hostname)",
        "tty-yes-default-busybox",
        env,
    );
    assert!(tty.contains("tty-yes-default-busybox"), "{tty}");
    let out = kd(p, env).arg("destroy").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(!p.state_exists("default-busybox"));
    p.assert_no_containers();
}

/// A failed `create`: exit 20, the message, no instance, nothing recorded to destroy.
fn create_fails(p: &TestProject, env: &[(&str, &str)], expected: &[&str]) {
    let out = kd(p, env).arg("create").output().unwrap();
    let all = format!("{}\n{}", text(&out.stdout), text(&out.stderr));
    assert_ne!(out.status.code(), Some(0), "{all}");
    for e in expected {
        assert!(all.contains(e), "expected {e:?} in:\n{all}");
    }
    if p.state_exists("default-busybox") {
        let st = p.state("default-busybox");
        assert!(st.get("container_name").is_none(), "{st:?}");
    }
    p.assert_no_containers();
}

#[test]
fn lxd_platform_on_an_lxc_remote_added_with_a_trust_token() {
    let remote = unique_name("lab");
    let p = standard_project(
        "remote-lxc",
        &kitchen_yml(&format!("      remote: {remote}\n")),
    );
    let lxc_conf = p.root().join("lxc-conf");
    let _trusted = add_lxc_remote_with_token(&lxc_conf, &remote);
    let conf = lxc_conf.to_string_lossy().into_owned();
    full_cycle(&p, &[("LXD_CONF", &conf)]);
}

#[test]
fn lxd_platform_with_remote_url_and_a_fingerprint() {
    let p = standard_project(
        "remote-url",
        &kitchen_yml(&format!(
            "      remote_url: {LXD_URL}\n      server_certificate: {}\n      client_certificate: certs/client.crt\n      client_key: certs/client.key\n",
            server_fingerprint()
        )),
    );
    let (_, _, _trusted) = client_certificate(&p.root().join("certs"), true);
    full_cycle(&p, &[]);
}

#[test]
fn the_environment_variables_name_the_server_for_ci() {
    let p = standard_project("remote-env", &kitchen_yml(""));
    let (cert, key, _trusted) = client_certificate(&p.root().join("certs"), true);
    // The key as PEM text, as a CI secret holds it.
    let key_pem = std::fs::read_to_string(&key).unwrap();
    let cert = cert.to_string_lossy().into_owned();
    let fingerprint = server_fingerprint();
    let env = [
        ("KITCHEN_LXD_REMOTE_URL", LXD_URL),
        ("KITCHEN_LXD_SERVER_CERTIFICATE", fingerprint.as_str()),
        ("KITCHEN_LXD_CLIENT_CERTIFICATE", cert.as_str()),
        ("KITCHEN_LXD_CLIENT_KEY", key_pem.as_str()),
    ];
    let out = kd(&p, &env).args(["test"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("verified-ok"));
    p.assert_no_containers();
}

#[test]
fn a_wrong_pin_is_refused_before_any_request() {
    // The fingerprint of a certificate the server does not hold.
    let other = ClientIdentity::generate("not-the-server").unwrap();
    let p = standard_project(
        "remote-badpin",
        &kitchen_yml(&format!(
            "      remote_url: {LXD_URL}\n      server_certificate: {}\n      client_certificate: certs/client.crt\n      client_key: certs/client.key\n",
            other.fingerprint()
        )),
    );
    let (_, _, _trusted) = client_certificate(&p.root().join("certs"), true);
    create_fails(
        &p,
        &[],
        &[
            "refusing to talk to https://127.0.0.1:8443",
            &format!("but {} is pinned", other.fingerprint()),
            &server_fingerprint(),
        ],
    );
}

#[test]
fn an_untrusted_client_is_told_how_to_be_trusted() {
    let p = standard_project(
        "remote-untrusted",
        &kitchen_yml(&format!(
            "      remote_url: {LXD_URL}\n      server_certificate: {}\n      client_certificate: certs/client.crt\n      client_key: certs/client.key\n",
            server_fingerprint()
        )),
    );
    let (_, _, untrusted) = client_certificate(&p.root().join("certs"), false);
    create_fails(
        &p,
        &[],
        &[
            "does not trust this client",
            &untrusted.fingerprint,
            "lxc config trust add",
        ],
    );
}

#[test]
fn a_remote_url_without_a_pin_is_a_config_error() {
    let p = standard_project(
        "remote-nopin",
        &kitchen_yml(&format!(
            "      remote_url: {LXD_URL}\n      client_certificate: c.crt\n      client_key: c.key\n"
        )),
    );
    create_fails(
        &p,
        &[],
        &["no pinned server certificate", "server_certificate"],
    );
}

/// An LXD project with images of its own (and the `default` project's profiles), made with
/// `lxc project create`; on drop its instances, images and itself are deleted.
struct LxdProject(String);

impl LxdProject {
    fn new() -> Self {
        let name = unique_name("proj");
        let out = std::process::Command::new("lxc")
            .args(["project", "create", &name])
            .args([
                "-c",
                "features.images=true",
                "-c",
                "features.profiles=false",
            ])
            .output()
            .expect("lxc runs");
        assert!(out.status.success(), "{}", text(&out.stderr));
        LxdProject(name)
    }

    /// `lxc list` / `lxc image list` of the project: one column of CSV.
    fn list(&self, what: &[&str]) -> Vec<String> {
        let out = std::process::Command::new("lxc")
            .args(what)
            .args(["--project", &self.0, "-f", "csv"])
            .output()
            .expect("lxc runs");
        text(&out.stdout)
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }
}

impl Drop for LxdProject {
    fn drop(&mut self) {
        let lxc = |args: &[&str]| {
            let _ = std::process::Command::new("lxc")
                .args(args)
                .args(["--project", &self.0])
                .output();
        };
        for name in self.list(&["list", "-c", "n"]) {
            lxc(&["delete", "--force", &name]);
        }
        for fingerprint in self.list(&["image", "list", "-c", "f"]) {
            lxc(&["image", "delete", &fingerprint]);
        }
        let _ = std::process::Command::new("lxc")
            .args(["project", "delete", &self.0])
            .output();
    }
}

#[test]
fn an_image_of_a_remote_is_copied_once_into_a_project_over_https() {
    let remote = unique_name("lab");
    let project = LxdProject::new();
    let p = standard_project(
        "remote-image",
        &test_support::basic_kitchen_yml(test_support::Runtime::Lxd).replace(
            "      image: kitchen/busybox\n",
            &format!(
                "      image: {remote}:kitchen/busybox\n      remote: {remote}\n      project: {}\n",
                project.0
            ),
        ),
    );
    let lxc_conf = p.root().join("lxc-conf");
    let _trusted = add_lxc_remote_with_token(&lxc_conf, &remote);
    let conf = lxc_conf.to_string_lossy().into_owned();
    let env = [("LXD_CONF", conf.as_str())];
    assert!(project.list(&["image", "list", "-c", "f"]).is_empty());
    let out = kd(&p, &env).arg("converge").output().unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("Copying image {remote}:kitchen/busybox")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("Copied image {remote}:kitchen/busybox: 100%")),
        "{stdout}"
    );
    assert_eq!(
        project.list(&["image", "list", "-c", "l"]),
        ["kitchen/busybox"]
    );
    assert_eq!(
        project.list(&["list", "-c", "n"]).len(),
        1,
        "the instance is in the project"
    );
    assert_eq!(
        p.state("default-busybox").get_str("lxd_project"),
        Some(project.0.as_str())
    );
    let out = kd(&p, &env)
        .args(["exec", "default-busybox", "-c", "cat /etc/hello/hello.conf"])
        .output()
        .unwrap();
    assert!(text(&out.stdout).contains("hello from default-busybox"));
    let out = kd(&p, &env).arg("destroy").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    // The image stays; the next instance uses it without copying.
    let out = kd(&p, &env).arg("test").output().unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(!stdout.contains("Copying image"), "{stdout}");
    assert!(project.list(&["list", "-c", "n"]).is_empty());
    p.assert_no_containers();
}

/// `destroy --orphans` looks on the server kitchen.yml names, not only the local socket: a
/// container whose state file is gone is found and removed over HTTPS. The server is the
/// local daemon, also reached over its socket; it is asked once and named as kitchen.yml
/// names it.
#[test]
fn destroy_orphans_looks_on_the_remote_server() {
    let p = standard_project(
        "remote-orphans",
        &kitchen_yml(&format!(
            "      remote_url: {LXD_URL}\n      server_certificate: {}\n      client_certificate: certs/client.crt\n      client_key: certs/client.key\n",
            server_fingerprint()
        )),
    );
    let (_, _, _trusted) = client_certificate(&p.root().join("certs"), true);
    succeed(kd(&p, &[]).arg("create"));
    let name = p.lxd_instances().pop().expect("the instance on the server");
    // A run killed before it saved: no state names the instance.
    std::fs::remove_file(p.root().join(".kitchen/default-busybox.yml")).unwrap();
    let err = run_command(kd(&p, &[]).arg("list")).stderr;
    assert!(
        err.contains(&format!(
            "LXD instance {name} on the LXD server at {LXD_URL}"
        )) && err.contains("1 resource(s) of this checkout"),
        "{err}"
    );
    let out = succeed(kd(&p, &[]).args(["destroy", "--orphans"]));
    assert!(
        out.contains(&format!("Removed LXD instance {name}")),
        "{out}"
    );
    p.assert_no_containers();
}
