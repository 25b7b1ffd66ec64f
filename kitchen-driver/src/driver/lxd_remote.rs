//! Which LXD server the `lxd` driver talks to: the local socket, a remote of the `lxc` CLI's
//! configuration, or an HTTPS address with a pinned server certificate and a client
//! certificate.
//!
//! | key | environment variable | meaning |
//! |---|---|---|
//! | `remote` | | a remote of `lxc`'s `config.yml` (`$LXD_CONF`, else `~/.config/lxc`), with its pinned `servercerts/NAME.crt` and `client.crt`/`client.key` |
//! | `remote_url` | [`ENV_REMOTE_URL`] | `https://HOST[:PORT]` (port 8443 by default) |
//! | `server_certificate` | [`ENV_SERVER_CERTIFICATE`] | the server's certificate (a PEM file or PEM text) or its SHA-256 fingerprint |
//! | `client_certificate` | [`ENV_CLIENT_CERTIFICATE`] | a client certificate the server trusts (PEM file or text) |
//! | `client_key` | [`ENV_CLIENT_KEY`] | its private key (PEM file or text) |
//!
//! A key wins over its variable. [`resolve`] is pure and unit-tested: a `remote_url` without
//! a pin, or without a client certificate, is a configuration error before anything is sent.
//! [`connect`] then reads the files, and asks the server (`GET /1.0`) whether it trusts the
//! client: a mismatched pin fails in the TLS handshake, before any request is sent, and an
//! untrusted client is told how to be trusted.

use std::path::{Path, PathBuf};

use lxd_client::{Client, ClientIdentity, Fingerprint, HttpsEndpoint, LxcConfig, ServerPin};

use crate::error::{Error, Result};

/// The variable for `remote_url`.
pub const ENV_REMOTE_URL: &str = "KITCHEN_LXD_REMOTE_URL";
/// The variable for `server_certificate`.
pub const ENV_SERVER_CERTIFICATE: &str = "KITCHEN_LXD_SERVER_CERTIFICATE";
/// The variable for `client_certificate`.
pub const ENV_CLIENT_CERTIFICATE: &str = "KITCHEN_LXD_CLIENT_CERTIFICATE";
/// The variable for `client_key`.
pub const ENV_CLIENT_KEY: &str = "KITCHEN_LXD_CLIENT_KEY";

/// The driver keys that choose the server (as written in kitchen.yml).
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(default)]
pub(super) struct RemoteKeys {
    pub(super) remote: Option<String>,
    pub(super) remote_url: Option<String>,
    pub(super) server_certificate: Option<String>,
    pub(super) client_certificate: Option<String>,
    pub(super) client_key: Option<String>,
    /// Where relative paths start (the project directory).
    #[serde(skip)]
    pub(super) base: PathBuf,
}

/// The server an instance's merged `driver:` block names, as the LXD driver resolves it
/// (for `destroy --orphans`, which looks on every server kitchen.yml uses).
///
/// # Errors
/// A message naming the bad key, as [`resolve`] gives it.
pub(crate) fn server_of(
    block: &crate::config::PluginConfig,
    kitchen_root: &Path,
) -> std::result::Result<Server, String> {
    let mut keys: RemoteKeys = serde_json::from_value(serde_json::Value::Object(block.clone()))
        .map_err(|e| format!("driver: {e}"))?;
    keys.base = kitchen_root.to_path_buf();
    resolve(&keys, |k| std::env::var(k).ok())
}

/// A certificate, key or pin given as PEM text or as a file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Pem {
    /// PEM text written in place (from a CI secret).
    Text(String),
    /// A file.
    File(PathBuf),
}

/// How the server's certificate is recognised.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Pin {
    /// Its SHA-256 fingerprint.
    Fingerprint(Fingerprint),
    /// The certificate itself.
    Certificate(Pem),
}

/// The server the driver talks to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Server {
    /// The local daemon's unix socket.
    Local,
    /// A remote of `lxc`'s configuration.
    LxcRemote(String),
    /// An HTTPS address with its pin and the client's certificate.
    Url {
        /// `https://HOST[:PORT]`.
        url: String,
        /// The pinned server certificate.
        pin: Pin,
        /// The client certificate.
        certificate: Pem,
        /// The client key.
        key: Pem,
        /// `driver key` or the variable's name, for messages.
        from: &'static str,
    },
}

impl Server {
    /// How to name the server in messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Server::Local => "the local LXD daemon".into(),
            Server::LxcRemote(name) => format!("the lxc remote `{name}`"),
            Server::Url { url, .. } => format!("the LXD server at {url}"),
        }
    }
}

fn text_or_file(value: &str, base: &Path) -> Pem {
    if value.trim_start().starts_with("-----BEGIN") {
        Pem::Text(value.to_string())
    } else {
        Pem::File(base.join(value))
    }
}

/// A fingerprint when `value` is 64 hex digits (`:` separators allowed).
fn as_fingerprint(value: &str) -> Option<Fingerprint> {
    Fingerprint::parse(value)
        .ok()
        .filter(Fingerprint::is_complete)
}

/// The server `keys` (and the environment, read through `env`) name (pure).
///
/// # Errors
/// A message naming the key or variable: `remote` together with `remote_url`, a
/// `remote_url` without `server_certificate` or without the client certificate and key.
pub(super) fn resolve(
    keys: &RemoteKeys,
    env: impl Fn(&str) -> Option<String>,
) -> std::result::Result<Server, String> {
    let env = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    let remote = keys.remote.as_deref().filter(|r| !r.is_empty());
    let (url, from) = match (&keys.remote_url, remote) {
        (Some(_), Some(r)) if r != "local" => {
            return Err(format!(
                "set either `remote` (the lxc remote `{r}`) or `remote_url`, not both"
            ));
        }
        (Some(u), _) => (u.clone(), "driver key"),
        (None, Some("local")) => return Ok(Server::Local),
        (None, Some(r)) => return Ok(Server::LxcRemote(r.to_string())),
        (None, None) => match env(ENV_REMOTE_URL) {
            Some(u) => (u, ENV_REMOTE_URL),
            None => return Ok(Server::Local),
        },
    };
    let pick = |key: &Option<String>, var: &str| key.clone().or_else(|| env(var));
    let Some(pin) = pick(&keys.server_certificate, ENV_SERVER_CERTIFICATE) else {
        return Err(format!(
            "`remote_url` {url} has no pinned server certificate: set `server_certificate` (or {ENV_SERVER_CERTIFICATE}) to the server's certificate file or its SHA-256 fingerprint (on the server: `lxc info | grep certificate_fingerprint`); the driver never talks to an unpinned server"
        ));
    };
    let pin = match as_fingerprint(&pin) {
        Some(f) => Pin::Fingerprint(f),
        None if pin.chars().all(|c| c.is_ascii_hexdigit() || c == ':') => {
            return Err(format!(
                "`server_certificate` `{pin}` is not a complete SHA-256 fingerprint (64 hex digits) nor a certificate file"
            ));
        }
        None => Pin::Certificate(text_or_file(&pin, &keys.base)),
    };
    let certificate = pick(&keys.client_certificate, ENV_CLIENT_CERTIFICATE);
    let key = pick(&keys.client_key, ENV_CLIENT_KEY);
    let (Some(certificate), Some(key)) = (certificate, key) else {
        return Err(format!(
            "`remote_url` {url} needs the client certificate the server trusts: set `client_certificate` and `client_key` (or {ENV_CLIENT_CERTIFICATE} and {ENV_CLIENT_KEY}) to PEM files or PEM text (add the certificate on the server with `lxc config trust add`)"
        ));
    };
    Ok(Server::Url {
        url,
        pin,
        certificate: text_or_file(&certificate, &keys.base),
        key: text_or_file(&key, &keys.base),
        from,
    })
}

fn read_pem(pem: &Pem, what: &'static str) -> Result<String> {
    match pem {
        Pem::Text(t) => Ok(t.clone()),
        Pem::File(path) => std::fs::read_to_string(path).map_err(|e| Error::io(what, path, e)),
    }
}

/// A client for `server` (project not yet applied), checked to be trusted. Nothing but
/// `GET /1.0` is sent, and that only after the TLS handshake accepted the pinned certificate.
///
/// # Errors
/// [`Error::Io`] for an unreadable certificate file, [`Error::Lxd`] when the server cannot be
/// reached or presents another certificate than the pinned one, [`Error::Runtime`] when it
/// does not trust the client.
pub(crate) async fn connect(server: &Server, instance: &str) -> Result<Client> {
    let lxd = |action: String| {
        let instance = instance.to_string();
        move |source: lxd_client::Error| Error::Lxd {
            action,
            instance,
            source: Box::new(source),
        }
    };
    let (client, identity_fingerprint) = match server {
        Server::Local => {
            let client = Client::connect_local()
                .await
                .map_err(lxd("connecting to the LXD daemon".into()))?;
            // The socket is always trusted.
            return Ok(client);
        }
        Server::LxcRemote(name) => {
            let what = format!("connecting to the lxc remote `{name}`");
            let config = LxcConfig::load().map_err(lxd(what.clone()))?;
            let remote = config.remote(name).map_err(lxd(what.clone()))?;
            if remote.addr.starts_with("unix:") {
                return config.connect(name).await.map_err(lxd(what));
            }
            if !config.client_cert_path().exists() {
                return Err(Error::Runtime {
                    instance: instance.to_string(),
                    message: format!(
                        "the lxc remote `{name}` needs a client certificate, and {} has none: add the remote with `lxc remote add {name} ...` (it makes one), with LXD_CONF pointing at that directory",
                        config.dir().display()
                    ),
                });
            }
            let fingerprint = config
                .client_identity()
                .map_err(lxd(what.clone()))?
                .fingerprint();
            (config.connect(name).await.map_err(lxd(what))?, fingerprint)
        }
        Server::Url {
            url,
            pin,
            certificate,
            key,
            from,
        } => {
            let what = format!("connecting to {url} (remote_url from the {from})");
            let pin = match pin {
                Pin::Fingerprint(f) => ServerPin::Fingerprint(f.clone()),
                Pin::Certificate(pem) => {
                    let text = read_pem(pem, "reading the LXD server certificate")?;
                    ServerPin::Certificate(
                        lxd_client::TlsCertificate::from_pem(&text).map_err(lxd(what.clone()))?,
                    )
                }
            };
            let identity = ClientIdentity::from_pem(
                &read_pem(certificate, "reading the LXD client certificate")?,
                &read_pem(key, "reading the LXD client key")?,
            )
            .map_err(lxd(what.clone()))?;
            let fingerprint = identity.fingerprint();
            let endpoint =
                HttpsEndpoint::new(url, pin, Some(identity)).map_err(lxd(what.clone()))?;
            (Client::new(endpoint.into()), fingerprint)
        }
    };
    let info = client
        .server()
        .await
        .map_err(lxd(format!("connecting to {}", server.describe())))?;
    if info.auth != "trusted" {
        return Err(Error::Runtime {
            instance: instance.to_string(),
            message: format!(
                "{} does not trust this client (certificate fingerprint {identity_fingerprint}): on the server, add the certificate with `lxc config trust add CERT.crt`, or make a trust token with `lxc config trust add --name NAME` and add the remote with it (`lxc remote add NAME TOKEN`)",
                server.describe()
            ),
        });
    }
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: &str = "99f55ba9fb086dca59ec897304fbde2a321c9b8fd39114be0d997e6417aa8494";

    fn keys() -> RemoteKeys {
        RemoteKeys {
            base: PathBuf::from("/project"),
            ..Default::default()
        }
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn default_and_local_are_the_socket_and_a_name_is_an_lxc_remote() {
        assert_eq!(resolve(&keys(), no_env), Ok(Server::Local));
        let local = RemoteKeys {
            remote: Some("local".into()),
            ..keys()
        };
        assert_eq!(resolve(&local, no_env), Ok(Server::Local));
        let lab = RemoteKeys {
            remote: Some("lab".into()),
            ..keys()
        };
        assert_eq!(resolve(&lab, no_env), Ok(Server::LxcRemote("lab".into())));
    }

    #[test]
    fn remote_url_takes_a_fingerprint_or_a_certificate_file_and_the_client_pair() {
        let k = RemoteKeys {
            remote_url: Some("https://build-host:8443".into()),
            server_certificate: Some(FP.to_uppercase()),
            client_certificate: Some("ci/client.crt".into()),
            client_key: Some("/secrets/client.key".into()),
            ..keys()
        };
        assert_eq!(
            resolve(&k, no_env),
            Ok(Server::Url {
                url: "https://build-host:8443".into(),
                pin: Pin::Fingerprint(Fingerprint::parse(FP).unwrap()),
                certificate: Pem::File("/project/ci/client.crt".into()),
                key: Pem::File("/secrets/client.key".into()),
                from: "driver key",
            })
        );
        let by_file = RemoteKeys {
            server_certificate: Some("servercerts/build.crt".into()),
            client_key: Some("-----BEGIN PRIVATE KEY-----\nabc\n".into()),
            ..k
        };
        let Ok(Server::Url { pin, key, .. }) = resolve(&by_file, no_env) else {
            panic!("a url")
        };
        assert_eq!(
            pin,
            Pin::Certificate(Pem::File("/project/servercerts/build.crt".into()))
        );
        assert!(matches!(key, Pem::Text(_)));
    }

    #[test]
    fn the_environment_fills_what_the_keys_leave_out() {
        let env = |k: &str| match k {
            ENV_REMOTE_URL => Some("https://10.0.0.5:8443".to_string()),
            ENV_SERVER_CERTIFICATE => Some(FP.to_string()),
            ENV_CLIENT_CERTIFICATE => Some("/ci/c.crt".to_string()),
            ENV_CLIENT_KEY => Some("/ci/c.key".to_string()),
            _ => None,
        };
        let Ok(Server::Url { url, from, key, .. }) = resolve(&keys(), env) else {
            panic!("a url")
        };
        assert_eq!(url, "https://10.0.0.5:8443");
        assert_eq!(from, ENV_REMOTE_URL);
        assert_eq!(key, Pem::File("/ci/c.key".into()));
        // An explicit `remote` wins over the variable.
        let lab = RemoteKeys {
            remote: Some("lab".into()),
            ..keys()
        };
        assert_eq!(resolve(&lab, env), Ok(Server::LxcRemote("lab".into())));
    }

    #[test]
    fn a_missing_pin_or_client_certificate_is_a_config_error() {
        let k = RemoteKeys {
            remote_url: Some("https://build-host:8443".into()),
            client_certificate: Some("c.crt".into()),
            client_key: Some("c.key".into()),
            ..keys()
        };
        let e = resolve(&k, no_env).unwrap_err();
        assert!(e.contains("no pinned server certificate"), "{e}");
        assert!(e.contains(ENV_SERVER_CERTIFICATE), "{e}");
        let short = RemoteKeys {
            server_certificate: Some("99f55ba9".into()),
            ..k.clone()
        };
        let e = resolve(&short, no_env).unwrap_err();
        assert!(e.contains("not a complete SHA-256 fingerprint"), "{e}");
        let no_client = RemoteKeys {
            server_certificate: Some(FP.into()),
            client_key: None,
            ..k.clone()
        };
        let e = resolve(&no_client, no_env).unwrap_err();
        assert!(e.contains("`client_key`"), "{e}");
        let both = RemoteKeys {
            remote: Some("lab".into()),
            ..k
        };
        let e = resolve(&both, no_env).unwrap_err();
        assert!(e.contains("not both"), "{e}");
    }
}
