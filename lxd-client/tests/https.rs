//! HTTPS against the real daemon on 127.0.0.1:8443 (`core.https_address`, set by
//! `scripts/setup-host`): token trust, certificate pinning, exec and events over TLS, and
//! remotes read from an `lxc` configuration directory.
//!
//! Every certificate a test adds to the server's trust store, and every token it creates, is
//! removed by a drop guard (by fingerprint / token), even when the test fails.

mod common;

use std::time::Duration;

use common::*;
use futures::StreamExt;
use lxd_client::{
    Client, ClientIdentity, Fingerprint, LxcConfig, ServerPin, TlsCertificate, TrustToken,
};

const URL: &str = "https://127.0.0.1:8443";

/// Runs `f` against the local daemon on a fresh runtime in a fresh thread (usable in `Drop`).
fn on_local<F>(f: F)
where
    F: FnOnce(Client) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
        + Send
        + 'static,
{
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for cleanup");
        rt.block_on(async move {
            let client = Client::connect_local().await.expect("LXD socket");
            f(client).await;
        });
    })
    .join();
}

/// Removes a certificate from the server's trust store, and revokes a token if it is still
/// pending, when dropped.
struct TrustGuard {
    fingerprint: Option<Fingerprint>,
    token: Option<TrustToken>,
}

impl Drop for TrustGuard {
    fn drop(&mut self) {
        let fp = self.fingerprint.take();
        let token = self.token.take();
        on_local(move |client| {
            Box::pin(async move {
                let certs = client.certificates();
                if let Some(fp) = fp {
                    let _ = certs.delete(fp.as_str()).await;
                }
                if let Some(token) = token {
                    let _ = certs.revoke_token(&token).await;
                }
            })
        });
    }
}

/// The server's certificate as the local daemon reports it (the reference for pinning).
async fn server_cert() -> TlsCertificate {
    let server = client().await.server().await.unwrap();
    let pem = server
        .environment
        .certificate
        .expect("the daemon reports its certificate");
    TlsCertificate::from_pem(&pem).unwrap()
}

/// A fresh client identity made trusted with a token, as `lxc remote add --token` does.
struct Trusted {
    name: String,
    client: Client,
    identity: ClientIdentity,
    _guard: TrustGuard,
}

async fn trusted(label: &str) -> Trusted {
    let name = unique_name(label);
    let identity = ClientIdentity::generate(&name).unwrap();
    let mut guard = TrustGuard {
        fingerprint: Some(identity.fingerprint()),
        token: None,
    };
    let local = client().await;
    let token = local.certificates().create_token(&name).await.unwrap();
    guard.token = Some(token.clone());
    assert_eq!(token.client_name, name);
    assert!(
        token.addresses.iter().any(|a| a == "127.0.0.1:8443"),
        "{token:?}"
    );
    // The token names the server's certificate, so it can be pinned without a prompt.
    let pin = ServerPin::Fingerprint(token.fingerprint.parse().unwrap());
    assert_eq!(pin.fingerprint(), server_cert().await.fingerprint());
    let remote = Client::https(URL, pin, Some(identity.clone())).unwrap();
    assert_eq!(remote.server().await.unwrap().auth, "untrusted");
    remote
        .certificates()
        .trust_with_token(identity.certificate(), &token.encode())
        .await
        .unwrap();
    Trusted {
        name,
        client: remote,
        identity,
        _guard: guard,
    }
}

#[tokio::test]
async fn token_trust_then_server_info_list_and_certificates_over_https() {
    let t = trusted("https-trust").await;
    let server = t.client.server().await.unwrap();
    assert_eq!(server.auth, "trusted");
    assert_eq!(server.environment.server_version, "5.0.2");

    // The token is used up, and the certificate is in the trust store under the token's name.
    let local = client().await;
    let fp = t.identity.fingerprint();
    assert!(
        !local
            .certificates()
            .tokens()
            .await
            .unwrap()
            .iter()
            .any(|tok| tok.client_name == t.name),
        "the token was consumed"
    );
    let cert = t.client.certificates().get(fp.as_str()).await.unwrap();
    assert_eq!(cert.fingerprint, fp.as_str());
    assert_eq!(cert.certificate_type, "client");
    assert_eq!(cert.name, t.name);
    assert_eq!(
        TlsCertificate::from_pem(&cert.certificate).unwrap(),
        *t.identity.certificate()
    );
    assert!(
        t.client
            .certificates()
            .fingerprints()
            .await
            .unwrap()
            .contains(&fp.as_str().to_string())
    );

    // The instance list over HTTPS is the one the unix socket sees.
    let c = busybox(&local, "https-list").await;
    let over_https = t.client.instances().names().await.unwrap();
    assert!(over_https.contains(&c.name), "{over_https:?}");
}

#[tokio::test]
async fn exec_and_events_work_over_wss() {
    let t = trusted("https-exec").await;
    let local = client().await;
    let c = running_busybox(&local, "https-exec").await;

    let mut events = t
        .client
        .events()
        .types(["operation"])
        .subscribe()
        .await
        .unwrap();

    let out = t
        .client
        .instances()
        .exec(&c.name, ["sh", "-c", "echo out; echo err >&2; exit 7"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.stdout, b"out\n");
    assert_eq!(out.stderr, b"err\n");
    assert_eq!(out.status.code, 7);

    // The exec operation shows up on the events websocket opened over TLS.
    let seen = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(ev) = events.next().await {
            let ev = ev.unwrap();
            let resources = ev.metadata.get("resources").cloned().unwrap_or_default();
            if resources.to_string().contains(&c.name) {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(seen, "no operation event for {} over wss", c.name);

    // Files go over the same pooled TLS connections.
    let files = t.client.instances().files(&c.name);
    files
        .push("/tmp/x", "over tls\n", Default::default())
        .await
        .unwrap();
    let (_, data) = files.read("/tmp/x").await.unwrap();
    assert_eq!(&data[..], b"over tls\n");
}

#[tokio::test]
async fn wrong_pinned_certificate_is_refused_before_any_request() {
    // A trusted client identity, so only the pin can be the reason for refusal.
    let t = trusted("https-wrongpin").await;
    let wrong = ClientIdentity::generate("not-the-server").unwrap();
    let expected = wrong.fingerprint();
    let client = Client::https(
        URL,
        ServerPin::Certificate(wrong.certificate().clone()),
        Some(t.identity.clone()),
    )
    .unwrap();
    let err = client.server().await.unwrap_err();
    assert!(err.is_certificate_mismatch(), "{err:?}");
    assert!(!err.is_daemon_unreachable());
    let text = err.to_string();
    let found = server_cert().await.fingerprint();
    assert!(text.contains(expected.as_str()), "{text}");
    assert!(text.contains(found.as_str()), "{text}");

    // The same over the websocket path.
    let err = client.events().subscribe().await.unwrap_err();
    assert!(err.is_certificate_mismatch(), "{err:?}");

    // And with a pinned fingerprint.
    let client = Client::https(
        URL,
        ServerPin::Fingerprint(expected.clone()),
        Some(t.identity.clone()),
    )
    .unwrap();
    assert!(client.server().await.unwrap_err().is_certificate_mismatch());

    // The right pin works with the same identity.
    let client = Client::https(
        URL,
        ServerPin::Certificate(server_cert().await),
        Some(t.identity.clone()),
    )
    .unwrap();
    assert_eq!(client.server().await.unwrap().auth, "trusted");
}

#[tokio::test]
async fn untrusted_client_is_told_apart() {
    let stranger = ClientIdentity::generate(&unique_name("stranger")).unwrap();
    // Make sure nothing is left behind even if the server did trust it somehow.
    let _guard = TrustGuard {
        fingerprint: Some(stranger.fingerprint()),
        token: None,
    };
    let pin = ServerPin::Certificate(server_cert().await);
    let client = Client::https(URL, pin.clone(), Some(stranger.clone())).unwrap();
    assert_eq!(client.server().await.unwrap().auth, "untrusted");
    let err = client.instances().names().await.unwrap_err();
    assert!(err.is_forbidden(), "{err:?}");
    assert!(!err.is_not_found());
    assert_eq!(err.message(), Some("not authorized"));

    // A made-up token is refused the same way, and the certificate stays untrusted.
    let mut fake = TrustToken::default();
    fake.client_name = "x".into();
    fake.fingerprint = pin.fingerprint().to_string();
    fake.secret = "00".repeat(32);
    let err = client
        .certificates()
        .trust_with_token(stranger.certificate(), &fake.encode())
        .await
        .unwrap_err();
    assert!(err.is_forbidden(), "{err:?}");
    assert_eq!(client.server().await.unwrap().auth, "untrusted");

    // No client certificate at all: still untrusted, not an error.
    let anonymous = Client::https(URL, pin, None).unwrap();
    assert_eq!(anonymous.server().await.unwrap().auth, "untrusted");
}

#[tokio::test]
async fn trust_on_first_use_fetches_the_server_certificate() {
    let cert = lxd_client::fetch_server_certificate(URL).await.unwrap();
    assert_eq!(cert, server_cert().await);
    let local = client().await.server().await.unwrap();
    if let Some(fp) = local.environment.certificate_fingerprint {
        assert_eq!(cert.fingerprint().as_str(), fp);
    }
    // Nothing listens on port 1.
    let err = lxd_client::fetch_server_certificate("https://127.0.0.1:1")
        .await
        .unwrap_err();
    assert!(err.is_daemon_unreachable(), "{err:?}");
}

#[tokio::test]
async fn remote_from_an_lxc_config_dir_works_by_name() {
    let t = trusted("https-remote").await;
    let dir = tempfile::Builder::new()
        .prefix(&unique_name("lxcconf"))
        .tempdir()
        .unwrap();
    // What `lxc remote add` leaves behind: client.crt/key, servercerts/NAME.crt, config.yml.
    let mut config = LxcConfig::load_from(dir.path()).unwrap();
    t.identity
        .save(config.client_cert_path(), config.client_key_path())
        .unwrap();
    let fetched = lxd_client::fetch_server_certificate(URL).await.unwrap();
    config.add_https_remote("kdlab", URL, &fetched).unwrap();
    config.remotes.get_mut("kdlab").unwrap().project = Some("default".into());
    config.save().unwrap();

    let config = LxcConfig::load_from(dir.path()).unwrap();
    let (remote, name) = config.parse_remote("kdlab:c1").unwrap();
    assert_eq!((remote.as_str(), name), ("kdlab", "c1"));
    let client = Client::from_lxc_config(&config, "kdlab").await.unwrap();
    assert_eq!(client.project_name(), Some("default"));
    let server = client.server().await.unwrap();
    assert_eq!(server.auth, "trusted");
    assert_eq!(server.environment.project.as_deref(), Some("default"));

    // `local` still means the unix socket.
    let local = Client::from_lxc_config(&config, "local").await.unwrap();
    assert!(matches!(local.endpoint(), lxd_client::Endpoint::Unix(_)));

    // A tampered pinned certificate makes the remote refuse to connect.
    ClientIdentity::generate("evil")
        .unwrap()
        .certificate()
        .save(config.server_cert_path("kdlab"))
        .unwrap();
    let err = Client::from_lxc_config(&config, "kdlab")
        .await
        .unwrap()
        .server()
        .await
        .unwrap_err();
    assert!(err.is_certificate_mismatch(), "{err:?}");
}

/// The `lxc-lite` example binary cargo built next to this test's binary.
fn lxc_lite() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("lxc-lite");
    assert!(
        path.exists(),
        "{} missing: build the examples",
        path.display()
    );
    path
}

#[tokio::test]
async fn lxc_lite_adds_a_remote_with_a_token_and_uses_it_by_name() {
    let dir = tempfile::Builder::new()
        .prefix(&unique_name("lxcconf"))
        .tempdir()
        .unwrap();
    // The identity lxc-lite will use, made here so the guard knows its fingerprint up front.
    let config = LxcConfig::load_from(dir.path()).unwrap();
    let identity = config
        .client_identity_or_generate(&unique_name("lite"))
        .unwrap();
    let mut guard = TrustGuard {
        fingerprint: Some(identity.fingerprint()),
        token: None,
    };
    let local = client().await;
    let token = local
        .certificates()
        .create_token(&unique_name("lite"))
        .await
        .unwrap();
    guard.token = Some(token.clone());
    let c = running_busybox(&local, "https-lite").await;

    let lite = |args: &[&str]| {
        let out = std::process::Command::new(lxc_lite())
            .args(args)
            .env("LXD_CONF", dir.path())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = lite(&["remote", "add", "kdlab", URL, "--token", &token.encode()]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(dir.path().join("servercerts/kdlab.crt").exists());

    let (code, out, err) = lite(&["info", "kdlab:"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("auth: trusted"), "{out}");

    let (code, out, err) = lite(&["list", "kdlab:", "--format", "json"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(&format!("\"name\":\"{}\"", c.name)), "{out}");

    let target = format!("kdlab:{}", c.name);
    let (code, out, err) = lite(&["exec", &target, "--", "sh", "-c", "echo hi; exit 4"]);
    assert_eq!((code, out.as_str()), (Some(4), "hi\n"), "{err}");

    // The real `lxc` CLI reads the configuration lxc-lite wrote.
    let out = std::process::Command::new("lxc")
        .args(["info", "kdlab:"])
        .env("LXD_CONF", dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("auth: trusted"), "{text}");

    // An unknown remote is refused by name, as lxc does.
    let (code, _, err) = lite(&["exec", "nope:c1", "--", "true"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("\"nope\" doesn't exist"), "{err}");
    drop(guard);
}

#[tokio::test]
async fn remote_added_by_the_real_lxc_cli_works_by_name() {
    let dir = tempfile::Builder::new()
        .prefix(&unique_name("lxcconf"))
        .tempdir()
        .unwrap();
    let name = unique_name("cli");
    let mut guard = TrustGuard {
        fingerprint: None,
        token: None,
    };
    // `lxc config trust add --name N` prints the token on its last line.
    let out = std::process::Command::new("lxc")
        .args(["config", "trust", "add", "--name", &name])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let token_text = stdout.lines().last().unwrap_or_default().trim().to_string();
    let token = TrustToken::decode(&token_text).unwrap();
    assert_eq!(token.client_name, name);
    guard.token = Some(token);

    // `lxc remote add NAME TOKEN` generates client.crt/key (SEC1 key), pins servercerts/NAME.crt.
    let out = std::process::Command::new("lxc")
        .args(["remote", "add", "kdcli", &token_text])
        .env("LXD_CONF", dir.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let config = LxcConfig::load_from(dir.path()).unwrap();
    if let Ok(identity) = config.client_identity() {
        guard.fingerprint = Some(identity.fingerprint());
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(guard.fingerprint.is_some(), "lxc wrote no client.crt");

    let client = Client::from_lxc_config(&config, "kdcli").await.unwrap();
    // lxc 5.0.2 records `project: default` for the remote.
    assert_eq!(client.project_name(), Some("default"));
    assert_eq!(client.server().await.unwrap().auth, "trusted");
    let c = running_busybox(&client, "https-cli").await;
    let out = client
        .instances()
        .exec(&c.name, ["echo", "via lxc's remote"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.stdout, b"via lxc's remote\n");
}

#[tokio::test]
async fn streaming_stdin_and_concurrent_execs_over_wss() {
    let t = trusted("https-stream").await;
    let local = client().await;
    let c = running_busybox(&local, "https-stream").await;

    // Interactive round trips: each line comes back through TLS before the next is sent.
    cat_echoes_each_line_as_it_arrives(&t.client, &c.name).await;

    // Twenty commands at once over the pooled TLS connections: none lost or mixed up.
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let client = t.client.clone();
            let name = c.name.clone();
            tokio::spawn(async move {
                let script = format!("echo out-{i}; echo err-{i} >&2; exit {}", i % 5);
                let out = client
                    .instances()
                    .exec(&name, ["sh", "-c", script.as_str()])
                    .output()
                    .await
                    .unwrap();
                (i, out)
            })
        })
        .collect();
    for task in tasks {
        let (i, out) = task.await.unwrap();
        assert_eq!(out.stdout, format!("out-{i}\n").as_bytes(), "exec {i}");
        assert_eq!(out.stderr, format!("err-{i}\n").as_bytes(), "exec {i}");
        assert_eq!(out.status.code, i % 5, "exec {i}");
    }
}
