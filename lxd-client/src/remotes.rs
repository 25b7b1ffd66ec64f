//! The `lxc` CLI's own configuration, so a user's existing remotes work by name.
//!
//! `lxc` keeps its remotes in `config.yml` of its configuration directory (`$LXD_CONF`, else
//! `~/.config/lxc`), its client certificate in `client.crt` / `client.key` beside it, and
//! each HTTPS remote's pinned server certificate in `servercerts/<remote>.crt`.
//!
//! ```no_run
//! # async fn demo() -> lxd_client::Result<()> {
//! use lxd_client::{Client, LxcConfig};
//! // As `lxc list lab:`: the remote `lab` from ~/.config/lxc/config.yml.
//! let client = Client::from_remote("lab").await?;
//!
//! // As `lxc exec lab:c1 -- ...`: split REMOTE:NAME the way lxc does.
//! let config = LxcConfig::load()?;
//! let (remote, name) = config.parse_remote("lab:c1")?;
//! let client = Client::from_lxc_config(&config, &remote).await?;
//! let out = client.instances().exec(name, ["hostname"]).output().await?;
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::tls::{ClientIdentity, HttpsEndpoint, ServerPin, TlsCertificate};

/// One remote of `config.yml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Remote {
    /// `unix://`, `unix:///path/to/unix.socket` or `https://host:port`.
    pub addr: String,
    /// `lxd` (the default) or `simplestreams` (image servers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// `tls` (the default) or `candid` / `oidc`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_type: Option<String>,
    /// Whether it is a public (image-only) remote.
    pub public: bool,
    /// The project to use on this remote.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Keys this crate does not know, kept when saving.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl Remote {
    /// An LXD remote at `addr`.
    pub fn new(addr: impl Into<String>) -> Self {
        Remote {
            addr: addr.into(),
            protocol: Some("lxd".into()),
            auth_type: Some("tls".into()),
            ..Default::default()
        }
    }

    /// True for remotes that speak the LXD API (not `simplestreams` image servers).
    pub fn is_lxd(&self) -> bool {
        matches!(self.protocol.as_deref(), None | Some("") | Some("lxd"))
    }
}

/// `config.yml` of the `lxc` CLI, with the directory it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LxcConfig {
    /// The remote used when a name has no `REMOTE:` prefix.
    #[serde(rename = "default-remote", default = "default_remote")]
    pub default_remote: String,
    /// Remotes by name.
    #[serde(default)]
    pub remotes: BTreeMap<String, Remote>,
    /// Command aliases.
    #[serde(default)]
    pub aliases: BTreeMap<String, String>,
    /// Keys this crate does not know, kept when saving.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
    /// The configuration directory.
    #[serde(skip)]
    dir: PathBuf,
}

fn default_remote() -> String {
    "local".into()
}

/// The configuration directory `lxc` uses given `$LXD_CONF` and `$HOME`: `$LXD_CONF` when set
/// and non-empty, else `$HOME/.config/lxc`.
///
/// ```
/// use std::path::PathBuf;
/// let dir = lxd_client::lxc_config_dir(None, Some("/home/me".into()));
/// assert_eq!(dir, Some(PathBuf::from("/home/me/.config/lxc")));
/// ```
pub fn lxc_config_dir(lxd_conf: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    match lxd_conf.filter(|v| !v.is_empty()) {
        Some(dir) => Some(PathBuf::from(dir)),
        None => home
            .filter(|h| !h.is_empty())
            .map(|h| Path::new(&h).join(".config").join("lxc")),
    }
}

impl LxcConfig {
    /// The configuration `lxc` uses when `config.yml` is missing: `local` (the unix socket)
    /// and the `images` image server.
    pub fn empty(dir: impl Into<PathBuf>) -> Self {
        let mut config = LxcConfig {
            default_remote: default_remote(),
            remotes: BTreeMap::new(),
            aliases: BTreeMap::new(),
            extra: BTreeMap::new(),
            dir: dir.into(),
        };
        config.add_static_remotes();
        config
    }

    fn add_static_remotes(&mut self) {
        self.remotes
            .entry("local".into())
            .or_insert_with(|| Remote {
                addr: "unix://".into(),
                ..Default::default()
            });
        self.remotes
            .entry("images".into())
            .or_insert_with(|| Remote {
                addr: "https://images.linuxcontainers.org".into(),
                protocol: Some("simplestreams".into()),
                public: true,
                ..Default::default()
            });
    }

    /// Parses `config.yml` text belonging to directory `dir`.
    ///
    /// ```
    /// let c = lxd_client::LxcConfig::parse(
    ///     "default-remote: lab\nremotes:\n  lab:\n    addr: https://10.0.0.5:8443\n    project: ci\n",
    ///     "/home/me/.config/lxc",
    /// )?;
    /// assert_eq!(c.remote("lab")?.project.as_deref(), Some("ci"));
    /// # Ok::<(), lxd_client::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] when the text is not a valid `config.yml`.
    pub fn parse(yaml: &str, dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        let mut config: LxcConfig = if yaml.trim().is_empty() {
            LxcConfig::empty(&dir)
        } else {
            serde_saphyr::from_str(yaml).map_err(|e| Error::Config {
                path: dir.join("config.yml"),
                message: format!("not a valid lxc config.yml: {e}"),
            })?
        };
        config.dir = dir;
        config.add_static_remotes();
        Ok(config)
    }

    /// Reads `config.yml` from `lxc`'s configuration directory (see [`lxc_config_dir`]).
    ///
    /// # Errors
    /// [`Error::Config`] when neither `$LXD_CONF` nor `$HOME` is set or the file is invalid;
    /// [`Error::Io`] when it cannot be read.
    pub fn load() -> Result<Self> {
        let dir = lxc_config_dir(std::env::var_os("LXD_CONF"), std::env::var_os("HOME"))
            .ok_or_else(|| Error::Config {
                path: PathBuf::from("~/.config/lxc"),
                message: "neither LXD_CONF nor HOME is set".into(),
            })?;
        Self::load_from(dir)
    }

    /// Reads `dir/config.yml`; a missing file gives [`LxcConfig::empty`], as with `lxc`.
    ///
    /// # Errors
    /// [`Error::Config`] when the file is invalid, [`Error::Io`] when it cannot be read.
    pub fn load_from(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        let path = dir.join("config.yml");
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text, dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::empty(dir)),
            Err(source) => Err(Error::Io {
                what: "cannot read".into(),
                path,
                source,
            }),
        }
    }

    /// Writes `config.yml` (and creates the directory).
    ///
    /// # Errors
    /// [`Error::Io`] when it cannot be written.
    pub fn save(&self) -> Result<()> {
        let path = self.dir.join("config.yml");
        let io = |source| Error::Io {
            what: "cannot write".into(),
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        for name in self.remotes.keys() {
            check_remote_name(name, &path)?;
        }
        let text = serde_saphyr::to_string(self).map_err(|e| Error::Config {
            path: path.clone(),
            message: format!("cannot serialize: {e}"),
        })?;
        // `lxc` and other tools read this file at any moment: they see the old or the new one.
        write_atomically(&path, text.as_bytes(), 0o644).map_err(io)
    }

    /// The configuration directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The remote called `name`.
    ///
    /// # Errors
    /// [`Error::Config`] naming the known remotes when there is none.
    pub fn remote(&self, name: &str) -> Result<&Remote> {
        self.remotes.get(name).ok_or_else(|| Error::Config {
            path: self.dir.join("config.yml"),
            message: format!(
                "the remote {name:?} doesn't exist (known: {}); add it with `lxc remote add`",
                self.remotes.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        })
    }

    /// Splits `REMOTE:NAME` as `lxc` does: no colon means the default remote; a prefix that
    /// is not a known remote is an error, except for a snapshot name holding a colon.
    ///
    /// ```
    /// let c = lxd_client::LxcConfig::empty("/tmp/lxc");
    /// assert_eq!(c.parse_remote("c1")?, ("local".to_string(), "c1"));
    /// assert_eq!(c.parse_remote("local:c1")?, ("local".to_string(), "c1"));
    /// assert_eq!(c.parse_remote("local:")?, ("local".to_string(), ""));
    /// assert!(c.parse_remote("nope:c1").is_err());
    /// # Ok::<(), lxd_client::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] for an unknown remote.
    pub fn parse_remote<'a>(&self, raw: &'a str) -> Result<(String, &'a str)> {
        let Some((remote, name)) = raw.split_once(':') else {
            return Ok((self.default_remote.clone(), raw));
        };
        if self.remotes.contains_key(remote) {
            return Ok((remote.to_string(), name));
        }
        // `c1/snap:2` is a snapshot of c1 on the default remote.
        if remote.contains('/') {
            return Ok((self.default_remote.clone(), raw));
        }
        self.remote(remote).map(|_| (remote.to_string(), name))
    }

    /// `client.crt` in the configuration directory.
    pub fn client_cert_path(&self) -> PathBuf {
        self.dir.join("client.crt")
    }

    /// `client.key` in the configuration directory.
    pub fn client_key_path(&self) -> PathBuf {
        self.dir.join("client.key")
    }

    /// `servercerts/<remote>.crt`: the pinned certificate of an HTTPS remote.
    pub fn server_cert_path(&self, remote: &str) -> PathBuf {
        self.dir.join("servercerts").join(format!("{remote}.crt"))
    }

    /// The client identity in `client.crt` / `client.key`.
    ///
    /// # Errors
    /// [`Error::Io`] when the files are missing, [`Error::Certificate`] when unusable.
    pub fn client_identity(&self) -> Result<ClientIdentity> {
        ClientIdentity::load(self.client_cert_path(), self.client_key_path())
    }

    /// The client identity, generating and saving one first when there is none (as `lxc`
    /// does on first use). `common_name` names a new certificate (`lxc` uses `user@host`).
    ///
    /// # Errors
    /// As [`LxcConfig::client_identity`] and [`ClientIdentity::save`].
    pub fn client_identity_or_generate(&self, common_name: &str) -> Result<ClientIdentity> {
        if self.client_cert_path().exists() {
            return self.client_identity();
        }
        let identity = ClientIdentity::generate(common_name)?;
        std::fs::create_dir_all(&self.dir).map_err(|source| Error::Io {
            what: "cannot create".into(),
            path: self.dir.clone(),
            source,
        })?;
        identity.save(self.client_cert_path(), self.client_key_path())?;
        Ok(identity)
    }

    /// Records an HTTPS remote: pins `server_cert` in `servercerts/<name>.crt` and adds the
    /// remote (call [`LxcConfig::save`] afterwards).
    ///
    /// # Errors
    /// [`Error::Io`] when the certificate cannot be written.
    pub fn add_https_remote(
        &mut self,
        name: &str,
        addr: &str,
        server_cert: &TlsCertificate,
    ) -> Result<()> {
        check_remote_name(name, &self.dir.join("config.yml"))?;
        let dir = self.dir.join("servercerts");
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
            what: "cannot create".into(),
            path: dir,
            source,
        })?;
        server_cert.save(self.server_cert_path(name))?;
        self.remotes.insert(name.into(), Remote::new(addr));
        Ok(())
    }

    /// A client for remote `name`: the unix socket for `unix://` remotes, HTTPS with
    /// `client.crt`/`client.key` and the pinned `servercerts/<name>.crt` otherwise. The
    /// remote's `project` becomes the handle's project.
    ///
    /// # Errors
    /// [`Error::Config`] for an unknown or image-only remote or a missing pinned
    /// certificate; [`Error::SocketNotFound`] for `unix://` without a daemon; certificate
    /// errors.
    pub async fn connect(&self, name: &str) -> Result<Client> {
        let remote = self.remote(name)?;
        if !remote.is_lxd() {
            return Err(Error::Config {
                path: self.dir.join("config.yml"),
                message: format!(
                    "the remote {name:?} is a {} image server, not an LXD API remote",
                    remote.protocol.as_deref().unwrap_or_default()
                ),
            });
        }
        let client = if let Some(path) = remote.addr.strip_prefix("unix:") {
            let path = path.trim_start_matches("//");
            if path.is_empty() {
                Client::connect_local().await?
            } else {
                Client::with_socket(path)
            }
        } else {
            check_remote_name(name, &self.dir.join("config.yml"))?;
            let cert_path = self.server_cert_path(name);
            if !cert_path.exists() {
                return Err(Error::Config {
                    path: cert_path,
                    message: format!(
                        "no pinned server certificate for the remote {name:?}; this client only talks to HTTPS remotes whose certificate is pinned (add it with `lxc remote add`)"
                    ),
                });
            }
            let pin = ServerPin::Certificate(TlsCertificate::load(&cert_path)?);
            let identity = if self.client_cert_path().exists() {
                Some(self.client_identity()?)
            } else {
                None
            };
            Client::new(HttpsEndpoint::new(&remote.addr, pin, identity)?.into())
        };
        Ok(match remote.project.as_deref().filter(|p| !p.is_empty()) {
            Some(project) => client.project(project),
            None => client,
        })
    }
}

/// Refuses a remote name that is not a plain file name: it becomes
/// `servercerts/<name>.crt`, so `../client` would overwrite `client.crt`.
fn check_remote_name(name: &str, config: &Path) -> Result<()> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.starts_with('.')
        || name
            .chars()
            .any(|c| c == '/' || c == '\\' || c == ':' || c.is_control());
    if bad {
        return Err(Error::Config {
            path: config.to_path_buf(),
            message: format!(
                "{name:?} is not a usable remote name: it must not be empty, start with `.`, or hold `/`, `\\`, `:` or control characters"
            ),
        });
    }
    Ok(())
}

/// Writes `path` so that a reader sees the old content or the new one, never a part: a
/// temporary file in the same directory with `mode`, flushed, then renamed over `path`.
pub(crate) fn write_atomically(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    let tmp = temporary_sibling(path);
    write_new(&tmp, data, mode)
        .and_then(|()| std::fs::rename(&tmp, path))
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
}

/// `path` with `.tmp-PID` appended (same directory, so a rename is atomic).
pub(crate) fn temporary_sibling(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

/// Creates `path` afresh with `mode` (never through an existing file or link) and syncs it.
pub(crate) fn write_new(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_names_that_leave_servercerts_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = LxcConfig::empty(dir.path());
        let cert = crate::ClientIdentity::generate("t")
            .unwrap()
            .certificate()
            .clone();
        for name in ["../client", "a/b", "..", "", ".hidden", "x:y"] {
            let err = config
                .add_https_remote(name, "https://127.0.0.1:8443", &cert)
                .unwrap_err();
            assert!(
                err.to_string().contains("not a usable remote name"),
                "{err}"
            );
        }
        assert!(!dir.path().join("client.crt").exists());
        assert!(!dir.path().join("servercerts").exists());
        config
            .add_https_remote("lab-1", "https://127.0.0.1:8443", &cert)
            .unwrap();
        config.save().unwrap();
        assert!(dir.path().join("servercerts/lab-1.crt").is_file());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(!names.iter().any(|n| n.contains(".tmp-")), "{names:?}");
    }

    /// The `config.yml` `lxc` 5.0.2 wrote here on first use, plus an HTTPS remote as
    /// `lxc remote add` writes it.
    const RECORDED: &str = "default-remote: local
remotes:
  images:
    addr: https://images.linuxcontainers.org
    protocol: simplestreams
    public: true
  lab:
    addr: https://127.0.0.1:8443
    auth_type: tls
    project: ci
    protocol: lxd
    public: false
  local:
    addr: unix://
    public: false
aliases: {}
";

    #[test]
    fn recorded_config_parses() {
        let c = LxcConfig::parse(RECORDED, "/x").unwrap();
        assert_eq!(c.default_remote, "local");
        let lab = c.remote("lab").unwrap();
        assert_eq!(lab.addr, "https://127.0.0.1:8443");
        assert_eq!(lab.project.as_deref(), Some("ci"));
        assert!(lab.is_lxd());
        assert!(!c.remote("images").unwrap().is_lxd());
        assert_eq!(
            c.server_cert_path("lab"),
            Path::new("/x/servercerts/lab.crt")
        );
        assert_eq!(c.client_key_path(), Path::new("/x/client.key"));
    }

    #[test]
    fn unknown_keys_survive_a_round_trip() {
        let text = "default-remote: lab\nremotes:\n  lab:\n    addr: https://h:8443\n    keepalive: 30\nfuture: [1, 2]\n";
        let c = LxcConfig::parse(text, "/x").unwrap();
        let back = LxcConfig::parse(&serde_saphyr::to_string(&c).unwrap(), "/x").unwrap();
        assert_eq!(back, c);
        assert!(back.extra.contains_key("future"));
        assert!(back.remote("lab").unwrap().extra.contains_key("keepalive"));
        // Static remotes are always there.
        assert_eq!(back.remote("local").unwrap().addr, "unix://");
    }

    #[test]
    fn empty_or_missing_file_gives_lxc_defaults() {
        let c = LxcConfig::parse("", "/x").unwrap();
        assert_eq!(c.default_remote, "local");
        assert!(c.remotes.contains_key("images"));
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            LxcConfig::load_from(dir.path()).unwrap().default_remote,
            "local"
        );
    }

    #[test]
    fn invalid_yaml_names_the_file() {
        let err = LxcConfig::parse("remotes: [", "/x").unwrap_err();
        assert!(err.to_string().contains("/x/config.yml"), "{err}");
    }

    #[test]
    fn remote_prefixes_split_as_lxc_does() {
        let c = LxcConfig::parse(RECORDED, "/x").unwrap();
        assert_eq!(c.parse_remote("lab:c1").unwrap(), ("lab".into(), "c1"));
        assert_eq!(c.parse_remote("c1").unwrap(), ("local".into(), "c1"));
        assert_eq!(c.parse_remote("lab:").unwrap(), ("lab".into(), ""));
        assert_eq!(
            c.parse_remote("c1/snap:1").unwrap(),
            ("local".into(), "c1/snap:1")
        );
        let err = c.parse_remote("nope:c1").unwrap_err();
        assert!(err.to_string().contains("\"nope\" doesn't exist"), "{err}");
        let mut other = c.clone();
        other.default_remote = "lab".into();
        assert_eq!(other.parse_remote("c1").unwrap(), ("lab".into(), "c1"));
    }

    #[test]
    fn config_dir_follows_lxd_conf_then_home() {
        assert_eq!(
            lxc_config_dir(Some("/conf".into()), Some("/home/u".into())),
            Some(PathBuf::from("/conf"))
        );
        assert_eq!(
            lxc_config_dir(Some("".into()), Some("/home/u".into())),
            Some(PathBuf::from("/home/u/.config/lxc"))
        );
        assert_eq!(lxc_config_dir(None, None), None);
    }

    #[tokio::test]
    async fn https_remote_without_pinned_cert_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let c = LxcConfig::parse(RECORDED, dir.path()).unwrap();
        let err = c.connect("lab").await.unwrap_err();
        assert!(
            err.to_string().contains("no pinned server certificate"),
            "{err}"
        );
        let err = c.connect("images").await.unwrap_err();
        assert!(err.to_string().contains("image server"), "{err}");
    }

    #[test]
    fn added_remote_is_saved_with_its_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = LxcConfig::load_from(dir.path()).unwrap();
        let cert = ClientIdentity::generate("server")
            .unwrap()
            .certificate()
            .clone();
        c.add_https_remote("lab", "https://127.0.0.1:8443", &cert)
            .unwrap();
        c.save().unwrap();
        let back = LxcConfig::load_from(dir.path()).unwrap();
        assert_eq!(back.remote("lab").unwrap().addr, "https://127.0.0.1:8443");
        assert_eq!(
            TlsCertificate::load(back.server_cert_path("lab")).unwrap(),
            cert
        );
    }
}
