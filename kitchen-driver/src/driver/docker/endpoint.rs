//! Which Docker engine the driver talks to, and how: the local socket, Podman's socket, or a
//! remote engine over TCP with TLS.
//!
//! The endpoint comes from the driver keys `docker_host_url`, `tls_verify` and `cert_path`
//! (kitchen-dokken's names) when set, else from `DOCKER_HOST`, `DOCKER_TLS_VERIFY` and
//! `DOCKER_CERT_PATH` read as the docker CLI reads them: TLS is on when `DOCKER_TLS_VERIFY` is
//! non-empty, the certificates are `ca.pem`, `cert.pem` and `key.pem` in `DOCKER_CERT_PATH`
//! (default `~/.docker`). [`EndpointSettings::resolve`] is pure and unit-tested; the
//! certificates are read and checked before the first request, so a missing or unreadable
//! one is an error that names it, not a failed handshake.

use std::path::{Path, PathBuf};

use bollard::{API_DEFAULT_VERSION, Docker};

use crate::error::{Error, Result};

/// The engine's socket when nothing else is said (the docker CLI's default).
pub(super) const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// bollard's request timeout, seconds (its default).
const TIMEOUT_SECS: u64 = 120;

/// What decides the endpoint: the driver keys and the environment (pure input).
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct EndpointSettings {
    /// `docker_host_url`.
    pub(super) host_key: Option<String>,
    /// `tls_verify`.
    pub(super) tls_verify_key: Option<bool>,
    /// `cert_path`.
    pub(super) cert_path_key: Option<String>,
    /// `DOCKER_HOST`.
    pub(super) docker_host: Option<String>,
    /// `DOCKER_TLS_VERIFY`.
    pub(super) docker_tls_verify: Option<String>,
    /// `DOCKER_CERT_PATH`.
    pub(super) docker_cert_path: Option<String>,
    /// `HOME`, for `~/.docker`.
    pub(super) home: Option<String>,
}

/// A resolved engine endpoint.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Endpoint {
    /// A unix socket (`unix:///var/run/docker.sock`, Podman's `unix:///run/podman/podman.sock`).
    Unix(String),
    /// Plain HTTP over TCP (`tcp://HOST:PORT` without TLS).
    Tcp {
        /// `tcp://HOST:PORT` as given.
        url: String,
        /// The host part.
        host: String,
    },
    /// TCP with TLS: the server is verified against `ca.pem`, the client presents
    /// `cert.pem`/`key.pem`.
    Tls {
        /// `tcp://HOST:PORT` as given.
        url: String,
        /// The host part.
        host: String,
        /// The directory with `ca.pem`, `cert.pem` and `key.pem`.
        cert_dir: PathBuf,
        /// Which setting turned TLS on (for error messages).
        tls_from: &'static str,
    },
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// The host of `tcp://HOST:PORT` (brackets removed from an IPv6 address).
fn tcp_host(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("tcp://")
        .or_else(|| url.strip_prefix("https://"))
        .or_else(|| url.strip_prefix("http://"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split_once(']')?.0
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    (!host.is_empty()).then(|| host.to_string())
}

impl EndpointSettings {
    /// The settings of this process's environment with the driver keys given.
    pub(super) fn from_env(
        host_key: Option<String>,
        tls_verify_key: Option<bool>,
        cert_path_key: Option<String>,
    ) -> Self {
        let var = |k: &str| std::env::var(k).ok();
        EndpointSettings {
            host_key,
            tls_verify_key,
            cert_path_key,
            docker_host: var("DOCKER_HOST"),
            docker_tls_verify: var("DOCKER_TLS_VERIFY"),
            docker_cert_path: var("DOCKER_CERT_PATH"),
            home: var("HOME"),
        }
    }

    /// The endpoint these settings name (pure).
    ///
    /// # Errors
    /// A message naming the setting for a scheme the driver cannot use, or TLS asked for on
    /// a unix socket.
    pub(super) fn resolve(&self) -> std::result::Result<Endpoint, String> {
        let (url, from) = match (non_empty(&self.host_key), non_empty(&self.docker_host)) {
            (Some(h), _) => (h.to_string(), "driver key `docker_host_url`"),
            (None, Some(h)) => (h.to_string(), "DOCKER_HOST"),
            (None, None) => (DEFAULT_HOST.to_string(), "the default"),
        };
        let (tls, tls_from) = match self.tls_verify_key {
            Some(v) => (v, "driver key `tls_verify`"),
            // The docker CLI: any non-empty value turns verification on, even "0".
            None => (
                self.docker_tls_verify
                    .as_deref()
                    .is_some_and(|v| !v.is_empty()),
                "DOCKER_TLS_VERIFY",
            ),
        };
        if url.starts_with("unix://") {
            if tls && self.tls_verify_key == Some(true) {
                return Err(format!(
                    "driver key `tls_verify` is true but {from} is the unix socket {url}: TLS needs a tcp:// address"
                ));
            }
            return Ok(Endpoint::Unix(url));
        }
        let Some(host) = tcp_host(&url) else {
            return Err(format!(
                "{from} is `{url}`: the driver reaches engines at unix:///PATH or tcp://HOST:PORT (ssh:// is not supported; forward the socket or use TLS)"
            ));
        };
        if !tls && !url.starts_with("https://") {
            return Ok(Endpoint::Tcp { url, host });
        }
        let cert_dir = match (
            non_empty(&self.cert_path_key),
            non_empty(&self.docker_cert_path),
        ) {
            (Some(p), _) | (None, Some(p)) => PathBuf::from(p),
            (None, None) => match non_empty(&self.home) {
                Some(home) => Path::new(home).join(".docker"),
                None => {
                    return Err(format!(
                        "TLS is on ({tls_from}) but neither `cert_path`, DOCKER_CERT_PATH nor HOME says where ca.pem, cert.pem and key.pem are"
                    ));
                }
            },
        };
        Ok(Endpoint::Tls {
            url,
            host,
            cert_dir,
            tls_from,
        })
    }
}

impl Endpoint {
    /// The address as the user wrote it.
    pub(crate) fn url(&self) -> &str {
        match self {
            Endpoint::Unix(u) | Endpoint::Tcp { url: u, .. } | Endpoint::Tls { url: u, .. } => u,
        }
    }

    /// The engine's host when it is reached over TCP: where its published ports are.
    pub(super) fn remote_host(&self) -> Option<&str> {
        match self {
            Endpoint::Unix(_) => None,
            Endpoint::Tcp { host, .. } | Endpoint::Tls { host, .. } => Some(host),
        }
    }

    fn refused(&self, message: String) -> Error {
        Error::DockerConnect {
            endpoint: self.url().to_string(),
            message,
        }
    }

    /// A bollard client for this endpoint. Nothing is sent; TLS certificates are read and
    /// checked first.
    ///
    /// # Errors
    /// [`Error::DockerConnect`] naming a missing or unusable certificate file.
    pub(crate) fn client(&self) -> Result<Docker> {
        let made = match self {
            Endpoint::Unix(url) => {
                Docker::connect_with_unix(url, TIMEOUT_SECS, API_DEFAULT_VERSION)
            }
            Endpoint::Tcp { url, .. } => {
                Docker::connect_with_http(url, TIMEOUT_SECS, API_DEFAULT_VERSION)
            }
            Endpoint::Tls {
                url,
                cert_dir,
                tls_from,
                ..
            } => {
                let [ca, cert, key] = ["ca.pem", "cert.pem", "key.pem"].map(|f| cert_dir.join(f));
                for (path, what) in [
                    (&ca, "the CA certificate that signed the engine's"),
                    (&cert, "the client certificate"),
                ] {
                    check_pem(path, what, false).map_err(|m| {
                        self.refused(format!(
                            "TLS is on ({tls_from}): {m}; set DOCKER_CERT_PATH (or the driver key `cert_path`) to the directory holding ca.pem, cert.pem and key.pem"
                        ))
                    })?;
                }
                check_pem(&key, "the client key", true).map_err(|m| {
                    self.refused(format!(
                        "TLS is on ({tls_from}): {m}; set DOCKER_CERT_PATH (or the driver key `cert_path`) to the directory holding ca.pem, cert.pem and key.pem"
                    ))
                })?;
                // bollard asks rustls for the process's provider; with both ring and aws-lc-rs
                // compiled into a workspace build there is none until one is installed.
                let _ = rustls::crypto::ring::default_provider().install_default();
                let https = url.replacen("tcp://", "https://", 1);
                Docker::connect_with_ssl(
                    &https,
                    &key,
                    &cert,
                    &ca,
                    TIMEOUT_SECS,
                    API_DEFAULT_VERSION,
                )
            }
        };
        made.map_err(|e| self.refused(format!("{e}; {}", self.hint())))
    }

    /// What to try when the engine does not answer.
    pub(super) fn hint(&self) -> String {
        match self {
            Endpoint::Unix(_) => "is dockerd running? (scripts/setup-host starts it; DOCKER_HOST or the driver key `docker_host_url` selects another engine)".into(),
            Endpoint::Tcp { .. } => "is the engine listening there? An engine that serves TLS (port 2376) needs DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH (or the driver keys `tls_verify` and `cert_path`)".into(),
            Endpoint::Tls { cert_dir, .. } => format!(
                "is the engine listening there with TLS, does {} sign its certificate and does it trust {}?",
                cert_dir.join("ca.pem").display(),
                cert_dir.join("cert.pem").display()
            ),
        }
    }

    /// The error for `action` on `instance` that failed with `source`: an
    /// [`Error::DockerConnect`] naming the engine and what to do when the engine could not be
    /// reached (it stopped or restarted in the middle of the run), else an [`Error::Docker`].
    pub(super) fn docker_error(
        &self,
        action: impl Into<String>,
        instance: impl Into<String>,
        source: bollard::errors::Error,
    ) -> Error {
        let (action, instance) = (action.into(), instance.into());
        if !is_unreachable(&source) {
            return Error::Docker {
                action,
                instance,
                source,
            };
        }
        self.refused(format!(
            "{action} failed for instance {instance}, the engine does not answer: {}; {}",
            causes(&source),
            self.hint()
        ))
    }

    /// The error for a command whose exec the engine no longer knows when its output ended:
    /// the engine restarted (or the container was removed) while the command ran, so its
    /// result is lost.
    pub(super) fn exec_lost(&self, instance: &str, source: bollard::errors::Error) -> Error {
        Error::Runtime {
            instance: instance.to_string(),
            message: format!(
                "the Docker engine at {} lost the command running in the instance ({}): the engine restarted, or the container was removed, while the command ran, so its result is unknown; with live-restore the container and the command keep running: run the step again",
                self.url(),
                causes(&source)
            ),
        }
    }

    /// The error for a connection that failed at the first request.
    pub(crate) fn unreachable(&self, source: &bollard::errors::Error) -> Error {
        self.refused(format!("{}; {}", causes(source), self.hint()))
    }
}

/// A bollard error and its causes, `: `-separated, each said once.
fn causes(source: &bollard::errors::Error) -> String {
    let mut detail = source.to_string().trim_end().to_string();
    let mut cause = std::error::Error::source(source);
    while let Some(c) = cause {
        let text = c.to_string().trim_end().to_string();
        if !detail.contains(&text) {
            detail.push_str(": ");
            detail.push_str(&text);
        }
        cause = c.source();
    }
    detail
}

/// Whether `source` says the engine could not be reached at all (nothing listening on its
/// socket or port, the socket gone, the connection dropped before an answer), as opposed to
/// an answer from the engine.
fn is_unreachable(source: &bollard::errors::Error) -> bool {
    use bollard::errors::Error as B;
    match source {
        B::SocketNotFoundError(_) => true,
        B::HyperLegacyError { err } => err.is_connect(),
        B::IOError { err } => matches!(
            err.kind(),
            std::io::ErrorKind::NotFound
                | std::io::ErrorKind::ConnectionRefused
                | std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::BrokenPipe
        ),
        _ => false,
    }
}

/// Where a port the engine published on `host_ip` is reached: the engine's host (`remote`)
/// when the engine is remote and the port is bound to all its addresses, the bound address
/// when it is a specific one, and 127.0.0.1 for a local engine's all-addresses binding.
pub(super) fn published_host(remote: Option<&str>, host_ip: &str) -> String {
    let all = matches!(host_ip, "" | "0.0.0.0" | "::" | "[::]");
    match (all, remote) {
        (true, Some(host)) => host.to_string(),
        (true, None) => "127.0.0.1".to_string(),
        (false, _) => host_ip.to_string(),
    }
}

/// Checks that `path` is a readable PEM file with a certificate (or, for `key`, a private
/// key).
fn check_pem(path: &Path, what: &str, key: bool) -> std::result::Result<(), String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let data =
        std::fs::read(path).map_err(|e| format!("cannot read {what} {}: {e}", path.display()))?;
    let ok = if key {
        PrivateKeyDer::from_pem_slice(&data).is_ok()
    } else {
        CertificateDer::pem_slice_iter(&data)
            .next()
            .is_some_and(|c| c.is_ok())
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{} is not {what} in PEM form", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> EndpointSettings {
        EndpointSettings {
            home: Some("/home/me".into()),
            ..Default::default()
        }
    }

    #[test]
    fn default_is_the_local_socket_and_docker_host_overrides_it() {
        assert_eq!(
            settings().resolve().unwrap(),
            Endpoint::Unix(DEFAULT_HOST.into())
        );
        let podman = EndpointSettings {
            docker_host: Some("unix:///run/podman/podman.sock".into()),
            ..settings()
        };
        assert_eq!(
            podman.resolve().unwrap(),
            Endpoint::Unix("unix:///run/podman/podman.sock".into())
        );
        // DOCKER_TLS_VERIFY does not apply to a socket (the docker CLI ignores it there).
        let socket_tls = EndpointSettings {
            docker_tls_verify: Some("1".into()),
            ..podman
        };
        assert!(matches!(socket_tls.resolve().unwrap(), Endpoint::Unix(_)));
    }

    #[test]
    fn tcp_with_tls_verify_reads_cert_path_as_the_docker_cli() {
        let s = EndpointSettings {
            docker_host: Some("tcp://build-host.example:2376".into()),
            docker_tls_verify: Some("1".into()),
            ..settings()
        };
        let e = s.resolve().unwrap();
        assert_eq!(
            e,
            Endpoint::Tls {
                url: "tcp://build-host.example:2376".into(),
                host: "build-host.example".into(),
                cert_dir: "/home/me/.docker".into(),
                tls_from: "DOCKER_TLS_VERIFY",
            }
        );
        assert_eq!(e.remote_host(), Some("build-host.example"));
        let with_path = EndpointSettings {
            docker_cert_path: Some("/certs".into()),
            ..s.clone()
        };
        assert!(
            matches!(with_path.resolve().unwrap(), Endpoint::Tls { cert_dir, .. } if cert_dir == Path::new("/certs"))
        );
        // An empty DOCKER_TLS_VERIFY is off, as for the docker CLI.
        let off = EndpointSettings {
            docker_tls_verify: Some(String::new()),
            ..s
        };
        assert_eq!(
            off.resolve().unwrap(),
            Endpoint::Tcp {
                url: "tcp://build-host.example:2376".into(),
                host: "build-host.example".into()
            }
        );
    }

    #[test]
    fn driver_keys_win_over_the_environment() {
        let s = EndpointSettings {
            host_key: Some("tcp://[::1]:2376".into()),
            tls_verify_key: Some(true),
            cert_path_key: Some("/ci/certs".into()),
            docker_host: Some("unix:///var/run/docker.sock".into()),
            docker_tls_verify: None,
            docker_cert_path: Some("/elsewhere".into()),
            home: None,
        };
        assert_eq!(
            s.resolve().unwrap(),
            Endpoint::Tls {
                url: "tcp://[::1]:2376".into(),
                host: "::1".into(),
                cert_dir: "/ci/certs".into(),
                tls_from: "driver key `tls_verify`",
            }
        );
        let off = EndpointSettings {
            tls_verify_key: Some(false),
            docker_tls_verify: Some("1".into()),
            ..s
        };
        assert!(matches!(off.resolve().unwrap(), Endpoint::Tcp { .. }));
    }

    #[test]
    fn unsupported_addresses_are_named() {
        let ssh = EndpointSettings {
            docker_host: Some("ssh://me@build-host".into()),
            ..settings()
        };
        let e = ssh.resolve().unwrap_err();
        assert!(e.contains("DOCKER_HOST is `ssh://me@build-host`"), "{e}");
        let tls_socket = EndpointSettings {
            tls_verify_key: Some(true),
            ..settings()
        };
        let e = tls_socket.resolve().unwrap_err();
        assert!(e.contains("`tls_verify` is true"), "{e}");
    }

    #[test]
    fn published_ports_are_reached_at_the_engine_host() {
        assert_eq!(published_host(Some("build-host"), "0.0.0.0"), "build-host");
        assert_eq!(published_host(Some("build-host"), "::"), "build-host");
        assert_eq!(published_host(Some("build-host"), "10.0.0.7"), "10.0.0.7");
        assert_eq!(published_host(None, "0.0.0.0"), "127.0.0.1");
        assert_eq!(published_host(None, "127.0.0.1"), "127.0.0.1");
    }

    #[test]
    fn missing_certificates_are_named_before_any_request() {
        let dir = tempfile::tempdir().unwrap();
        let e = Endpoint::Tls {
            url: "tcp://127.0.0.1:2376".into(),
            host: "127.0.0.1".into(),
            cert_dir: dir.path().into(),
            tls_from: "DOCKER_TLS_VERIFY",
        };
        let err = e.client().unwrap_err().to_string();
        assert!(err.contains("tcp://127.0.0.1:2376"), "{err}");
        assert!(err.contains("ca.pem"), "{err}");
        assert!(err.contains("DOCKER_CERT_PATH"), "{err}");
        std::fs::write(dir.path().join("ca.pem"), "not pem").unwrap();
        let err = e.client().unwrap_err().to_string();
        assert!(err.contains("is not the CA certificate"), "{err}");
    }
}
