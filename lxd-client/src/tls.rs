//! HTTPS remotes: TLS client identities, certificate fingerprints and server-certificate
//! pinning.
//!
//! LXD serves HTTPS with a self-signed certificate and authenticates clients by their TLS
//! client certificate. Like `lxc remote add` and the official Go client, this module does not
//! trust any certificate authority: the server's certificate is *pinned*, either as the whole
//! certificate (what `lxc` keeps in `servercerts/<remote>.crt`) or as its SHA-256
//! fingerprint. The presented end-entity certificate must match exactly; the TLS handshake's
//! signatures are still verified against it, so only the holder of the pinned certificate's
//! key can answer.
//!
//! ```no_run
//! # async fn demo() -> lxd_client::Result<()> {
//! use lxd_client::{Client, ClientIdentity, HttpsEndpoint, ServerPin};
//! // Trust on first use: fetch the certificate and show its fingerprint to the user.
//! let cert = lxd_client::fetch_server_certificate("https://127.0.0.1:8443").await?;
//! println!("Certificate fingerprint: {}", cert.fingerprint());
//! let identity = ClientIdentity::generate("me@laptop")?;
//! let endpoint = HttpsEndpoint::new("https://127.0.0.1:8443", ServerPin::Certificate(cert), Some(identity))?;
//! let client = Client::new(endpoint.into());
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use sha2::Digest;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::error::{BoxError, Error, Result};

/// LXD's default HTTPS port.
pub const DEFAULT_PORT: u16 = 8443;

/// A SHA-256 certificate fingerprint: 64 lower-case hex digits, as LXD and `lxc` show it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// The fingerprint of a DER-encoded certificate.
    ///
    /// ```
    /// let fp = lxd_client::Fingerprint::of_der(b"not really a certificate");
    /// assert_eq!(fp.as_str().len(), 64);
    /// ```
    pub fn of_der(der: &[u8]) -> Self {
        let digest = sha2::Sha256::digest(der);
        Fingerprint(digest.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Parses a fingerprint as users write it: hex, any case, optionally with `:` separators
    /// (`openssl x509 -fingerprint -sha256` style).
    ///
    /// ```
    /// let fp: lxd_client::Fingerprint = "AB:CD:01".parse()?;
    /// assert_eq!(fp.as_str(), "abcd01");
    /// # Ok::<(), lxd_client::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] unless the text is 1 to 64 hex digits (a prefix is allowed, as
    /// the API accepts prefixes for lookups; pinning requires all 64).
    pub fn parse(text: &str) -> Result<Self> {
        let hex: String = text
            .trim()
            .chars()
            .filter(|c| *c != ':')
            .map(|c| c.to_ascii_lowercase())
            .collect();
        if hex.is_empty() || hex.len() > 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::InvalidInput(format!(
                "{text:?} is not a SHA-256 fingerprint (64 hex digits)"
            )));
        }
        Ok(Fingerprint(hex))
    }

    /// The hex text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 12 digits, as `lxc config trust list` shows them.
    pub fn short(&self) -> &str {
        &self.0[..self.0.len().min(12)]
    }

    /// True when this is a complete 64-digit fingerprint (not a prefix).
    pub fn is_complete(&self) -> bool {
        self.0.len() == 64
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Fingerprint {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Fingerprint::parse(s)
    }
}

/// One X.509 certificate (DER), e.g. a server certificate to pin or a client certificate to
/// add to a trust store.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsCertificate {
    der: CertificateDer<'static>,
}

impl fmt::Debug for TlsCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsCertificate")
            .field("fingerprint", &self.fingerprint().as_str())
            .finish()
    }
}

impl TlsCertificate {
    /// Wraps DER bytes (not checked beyond being non-empty; the TLS layer parses them).
    pub fn from_der(der: impl Into<Vec<u8>>) -> Self {
        TlsCertificate {
            der: CertificateDer::from(der.into()),
        }
    }

    /// The first certificate of a PEM text.
    ///
    /// # Errors
    /// [`Error::Certificate`] when the text holds no `CERTIFICATE` block.
    pub fn from_pem(pem: &str) -> Result<Self> {
        let der =
            CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| Error::Certificate {
                what: "cannot read a PEM certificate".into(),
                source: Box::new(e),
            })?;
        Ok(TlsCertificate { der })
    }

    /// Reads a PEM certificate file (such as `lxc`'s `servercerts/<remote>.crt`).
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read, [`Error::Certificate`] when it holds no
    /// certificate.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            what: "cannot read certificate".into(),
            path: path.into(),
            source,
        })?;
        Self::from_pem(&text).map_err(|e| match e {
            Error::Certificate { source, .. } => Error::Certificate {
                what: format!("{} holds no PEM certificate", path.display()),
                source,
            },
            other => other,
        })
    }

    /// Writes the certificate as PEM to `path`.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be written.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        crate::remotes::write_atomically(path, self.to_pem().as_bytes(), 0o644).map_err(|source| {
            Error::Io {
                what: "cannot write certificate".into(),
                path: path.into(),
                source,
            }
        })
    }

    /// The DER bytes.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The PEM text (`-----BEGIN CERTIFICATE-----`).
    pub fn to_pem(&self) -> String {
        pem_encode("CERTIFICATE", &self.der)
    }

    /// The SHA-256 fingerprint of the DER bytes, as LXD computes it.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of_der(&self.der)
    }

    /// The DER bytes in base64, as `POST /1.0/certificates` takes them.
    pub fn to_base64(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(&self.der)
    }
}

/// Makes a client key that others can read private again (0600), and says so: a key left
/// readable by an older tool or a careless copy lets any local user act as this client.
fn restrict_key_mode(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let io = |source| Error::Io {
        what: "cannot restrict the mode of client key".into(),
        path: path.into(),
        source,
    };
    let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        tracing::warn!(
            path = %path.display(),
            "the client key was readable by others (mode {mode:o}); its mode is now 600"
        );
    }
    Ok(())
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A TLS client certificate and its private key: who this client is to the server.
///
/// `lxc` keeps one in `client.crt` / `client.key` of its configuration directory and creates
/// it on first use; [`ClientIdentity::generate`] does the same (ECDSA P-384, as `lxc`).
#[derive(Clone)]
pub struct ClientIdentity {
    cert: TlsCertificate,
    key_pem: Arc<str>,
}

impl fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("fingerprint", &self.cert.fingerprint().as_str())
            .field("key", &"<redacted>")
            .finish()
    }
}

impl PartialEq for ClientIdentity {
    fn eq(&self, other: &Self) -> bool {
        self.cert == other.cert
    }
}

impl Eq for ClientIdentity {}

impl ClientIdentity {
    /// Generates a new self-signed client certificate (ECDSA P-384, valid ten years) with
    /// `common_name` as subject, as `lxc` does on first use (it uses `user@host`).
    ///
    /// ```
    /// let id = lxd_client::ClientIdentity::generate("me@laptop")?;
    /// assert!(id.certificate_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    /// # Ok::<(), lxd_client::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Certificate`] when key generation or signing fails.
    pub fn generate(common_name: &str) -> Result<Self> {
        let fail = |e: rcgen::Error| Error::Certificate {
            what: "cannot generate a client certificate".into(),
            source: Box::new(e),
        };
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).map_err(fail)?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::OrganizationName, "linuxcontainers.org");
        dn.push(rcgen::DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.is_ca = rcgen::IsCa::ExplicitNoCa;
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::DigitalSignature,
            rcgen::KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let now = std::time::SystemTime::now();
        params.not_before = (now - std::time::Duration::from_secs(60)).into();
        params.not_after = (now + std::time::Duration::from_secs(10 * 365 * 24 * 3600)).into();
        let cert = params.self_signed(&key).map_err(fail)?;
        Ok(ClientIdentity {
            cert: TlsCertificate::from_der(cert.der().to_vec()),
            key_pem: Arc::from(key.serialize_pem()),
        })
    }

    /// An identity from PEM texts: a certificate and its private key (PKCS#8, SEC1 `EC PRIVATE
    /// KEY` as `lxc` writes, or PKCS#1).
    ///
    /// # Errors
    /// [`Error::Certificate`] when either text holds no usable block.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self> {
        let cert = TlsCertificate::from_pem(cert_pem)?;
        PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| Error::Certificate {
            what: "cannot read a PEM private key".into(),
            source: Box::new(e),
        })?;
        Ok(ClientIdentity {
            cert,
            key_pem: Arc::from(key_pem),
        })
    }

    /// Reads `cert_path` and `key_path` (PEM), e.g. `~/.config/lxc/client.crt` and
    /// `client.key`.
    ///
    /// # Errors
    /// [`Error::Io`] when a file cannot be read, [`Error::Certificate`] when it is not PEM.
    pub fn load(cert_path: impl AsRef<Path>, key_path: impl AsRef<Path>) -> Result<Self> {
        let read = |p: &Path, what: &str| {
            std::fs::read_to_string(p).map_err(|source| Error::Io {
                what: format!("cannot read {what}"),
                path: p.into(),
                source,
            })
        };
        let cert = read(cert_path.as_ref(), "client certificate")?;
        let key = read(key_path.as_ref(), "client key")?;
        restrict_key_mode(key_path.as_ref())?;
        Self::from_pem(&cert, &key)
    }

    /// Writes the certificate and key as PEM (the key with mode 0600), each through a
    /// temporary file renamed into place.
    ///
    /// # Errors
    /// [`Error::Io`] when a file cannot be written.
    pub fn save(&self, cert_path: impl AsRef<Path>, key_path: impl AsRef<Path>) -> Result<()> {
        use crate::remotes::{temporary_sibling, write_new};
        let (cert_path, key_path) = (cert_path.as_ref(), key_path.as_ref());
        let io = |what: &str, path: &Path| {
            let (what, path) = (what.to_string(), path.to_path_buf());
            move |source| Error::Io { what, path, source }
        };
        // Both files are written in full first, then renamed key first: a crash leaves the
        // old pair, or a new key without its certificate (which `lxc` and
        // `LxcConfig::client_identity_or_generate` treat as no identity), never a certificate
        // whose key is missing or half written.
        let (cert_tmp, key_tmp) = (temporary_sibling(cert_path), temporary_sibling(key_path));
        let written = write_new(&key_tmp, self.key_pem.as_bytes(), 0o600)
            .map_err(io("cannot write client key", &key_tmp))
            .and_then(|()| {
                write_new(&cert_tmp, self.cert.to_pem().as_bytes(), 0o644)
                    .map_err(io("cannot write client certificate", &cert_tmp))
            })
            .and_then(|()| {
                std::fs::rename(&key_tmp, key_path).map_err(io("cannot write client key", key_path))
            })
            .and_then(|()| {
                std::fs::rename(&cert_tmp, cert_path)
                    .map_err(io("cannot write client certificate", cert_path))
            });
        if written.is_err() {
            let _ = std::fs::remove_file(&key_tmp);
            let _ = std::fs::remove_file(&cert_tmp);
        }
        written
    }

    /// The certificate.
    pub fn certificate(&self) -> &TlsCertificate {
        &self.cert
    }

    /// The certificate as PEM.
    pub fn certificate_pem(&self) -> String {
        self.cert.to_pem()
    }

    /// The certificate's SHA-256 fingerprint (its id in the server's trust store).
    pub fn fingerprint(&self) -> Fingerprint {
        self.cert.fingerprint()
    }

    fn private_key(&self) -> Result<PrivateKeyDer<'static>> {
        PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).map_err(|e| Error::Certificate {
            what: "cannot read a PEM private key".into(),
            source: Box::new(e),
        })
    }
}

/// How the server's certificate is recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerPin {
    /// The presented certificate must equal this one byte for byte (what `lxc` stores in
    /// `servercerts/<remote>.crt`).
    Certificate(TlsCertificate),
    /// The presented certificate's SHA-256 fingerprint must be this (all 64 digits).
    Fingerprint(Fingerprint),
}

impl ServerPin {
    /// The fingerprint the server must present.
    pub fn fingerprint(&self) -> Fingerprint {
        match self {
            ServerPin::Certificate(c) => c.fingerprint(),
            ServerPin::Fingerprint(f) => f.clone(),
        }
    }
}

/// The server presented a certificate other than the pinned one. Carried inside the TLS
/// error so it can be told apart from other handshake failures.
#[derive(Debug, thiserror::Error)]
#[error("expected {expected}, found {found}")]
pub(crate) struct PinMismatch {
    pub(crate) expected: Fingerprint,
    pub(crate) found: Fingerprint,
}

/// The TLS verifier: the end-entity certificate must match the pin; handshake signatures are
/// checked with the ring provider's algorithms against it.
#[derive(Debug)]
struct PinnedVerifier {
    /// `None` accepts any certificate (trust on first use only).
    pin: Option<ServerPin>,
    provider: Arc<CryptoProvider>,
    /// The certificate the server presented (for trust on first use).
    seen: Mutex<Option<CertificateDer<'static>>>,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(end_entity.clone().into_owned());
        }
        let ok = match &self.pin {
            None => true,
            Some(ServerPin::Certificate(c)) => c.der() == end_entity.as_ref(),
            Some(ServerPin::Fingerprint(f)) => *f == Fingerprint::of_der(end_entity),
        };
        if ok {
            return Ok(ServerCertVerified::assertion());
        }
        let mismatch = PinMismatch {
            expected: self
                .pin
                .as_ref()
                .map(ServerPin::fingerprint)
                .unwrap_or_else(|| Fingerprint(String::new())),
            found: Fingerprint::of_der(end_entity),
        };
        Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::Other(rustls::OtherError(Arc::new(mismatch))),
        ))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn tls_config(
    verifier: Arc<PinnedVerifier>,
    identity: Option<&ClientIdentity>,
) -> Result<ClientConfig> {
    let fail = |e: rustls::Error| Error::Certificate {
        what: "cannot set up TLS".into(),
        source: Box::new(e),
    };
    let builder = ClientConfig::builder_with_provider(Arc::clone(&verifier.provider))
        .with_safe_default_protocol_versions()
        .map_err(fail)?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match identity {
        Some(id) => builder
            .with_client_auth_cert(vec![id.cert.der.clone()], id.private_key()?)
            .map_err(fail)?,
        None => builder.with_no_client_auth(),
    };
    // hyper speaks HTTP/1.1 only, and websockets need it.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn verifier(pin: Option<ServerPin>) -> Arc<PinnedVerifier> {
    Arc::new(PinnedVerifier {
        pin,
        provider: Arc::new(rustls::crypto::ring::default_provider()),
        seen: Mutex::new(None),
    })
}

/// `host:port` and the host alone (brackets removed) from `https://host[:port][/]`,
/// `host[:port]` or `[v6]:port`.
pub(crate) fn parse_address(url: &str) -> Result<(String, String)> {
    let bad = || {
        Error::InvalidInput(format!(
            "{url:?} is not an HTTPS address (expected https://HOST[:PORT])"
        ))
    };
    let rest = url.strip_prefix("https://").unwrap_or(url);
    if rest.contains("://") {
        return Err(bad());
    }
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains('/') {
        return Err(bad());
    }
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(bad)?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(bad)?),
        };
        (host, port)
    } else if rest.matches(':').count() > 1 {
        // A bare IPv6 address.
        (rest, None)
    } else {
        match rest.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    let port: u16 = match port {
        None => DEFAULT_PORT,
        Some(p) => p.parse().map_err(|_| bad())?,
    };
    if host.is_empty() {
        return Err(bad());
    }
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    Ok((authority, host.to_string()))
}

/// An LXD daemon reached over HTTPS: its address, the pinned server certificate and the
/// client identity. Wrap it in [`crate::Endpoint::Https`] (or use `.into()`) and give that to
/// [`crate::Client::new`], or use [`crate::Client::https`].
#[derive(Clone)]
pub struct HttpsEndpoint {
    authority: String,
    host: String,
    base_url: String,
    ws_base_url: String,
    pin: ServerPin,
    identity: Option<ClientIdentity>,
    config: Arc<ClientConfig>,
}

impl fmt::Debug for HttpsEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpsEndpoint")
            .field("address", &self.authority)
            .field("pinned", &self.pin.fingerprint().as_str())
            .field(
                "client",
                &self.identity.as_ref().map(|i| i.fingerprint().0.clone()),
            )
            .finish()
    }
}

impl PartialEq for HttpsEndpoint {
    fn eq(&self, other: &Self) -> bool {
        self.authority == other.authority
            && self.pin == other.pin
            && self.identity == other.identity
    }
}

impl Eq for HttpsEndpoint {}

impl HttpsEndpoint {
    /// An endpoint for `url` (`https://HOST[:PORT]`, port 8443 by default) that only accepts
    /// the server certificate `pin` and presents `identity` (without one the server sees an
    /// untrusted client: it can only read `GET /1.0` and add itself with a trust token).
    ///
    /// Nothing is sent until the first request.
    ///
    /// ```no_run
    /// # fn demo() -> lxd_client::Result<()> {
    /// use lxd_client::{ClientIdentity, Fingerprint, HttpsEndpoint, ServerPin};
    /// let pin = ServerPin::Fingerprint("99f55ba9fb086dca59ec897304fbde2a321c9b8fd39114be0d997e6417aa8494".parse()?);
    /// let id = ClientIdentity::load("client.crt", "client.key")?;
    /// let endpoint = HttpsEndpoint::new("https://127.0.0.1:8443", pin, Some(id))?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a malformed address or an incomplete fingerprint,
    /// [`Error::Certificate`] when the client key is unusable.
    pub fn new(url: &str, pin: ServerPin, identity: Option<ClientIdentity>) -> Result<Self> {
        let (authority, host) = parse_address(url)?;
        if let ServerPin::Fingerprint(f) = &pin
            && !f.is_complete()
        {
            return Err(Error::InvalidInput(format!(
                "pinned fingerprint {f} is not a complete SHA-256 fingerprint (64 hex digits)"
            )));
        }
        let config = tls_config(verifier(Some(pin.clone())), identity.as_ref())?;
        Ok(HttpsEndpoint {
            base_url: format!("https://{authority}"),
            ws_base_url: format!("wss://{authority}"),
            authority,
            host,
            pin,
            identity,
            config: Arc::new(config),
        })
    }

    /// `host:port`.
    pub fn address(&self) -> &str {
        &self.authority
    }

    /// The pinned server certificate or fingerprint.
    pub fn pin(&self) -> &ServerPin {
        &self.pin
    }

    /// The client identity presented, if any.
    pub fn identity(&self) -> Option<&ClientIdentity> {
        self.identity.as_ref()
    }

    pub(crate) fn base_url(&self) -> &str {
        &self.base_url
    }

    pub(crate) fn ws_base_url(&self) -> &str {
        &self.ws_base_url
    }

    /// TCP connect and TLS handshake.
    pub(crate) async fn connect(
        &self,
        timeouts: &crate::Timeouts,
    ) -> std::io::Result<TlsStream<TcpStream>> {
        connect_tls(
            &self.authority,
            &self.host,
            Arc::clone(&self.config),
            timeouts,
        )
        .await
    }
}

async fn connect_tls(
    authority: &str,
    host: &str,
    config: Arc<ClientConfig>,
    timeouts: &crate::Timeouts,
) -> std::io::Result<TlsStream<TcpStream>> {
    use crate::transport::within;
    let tcp = within(
        timeouts.connect_limit(),
        &format!("connecting to {authority}"),
        TcpStream::connect(authority),
    )
    .await?;
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    within(
        timeouts.tls_handshake_limit(),
        &format!("the TLS handshake with {authority}"),
        TlsConnector::from(config).connect(name, tcp),
    )
    .await
}

/// Trust on first use: connects to `url` without checking the server's certificate, and
/// returns the certificate it presented (the handshake's signatures are still checked, so the
/// server holds its key). Show [`TlsCertificate::fingerprint`] to the user to confirm, as
/// `lxc remote add` does, then pin it with [`ServerPin::Certificate`].
///
/// ```no_run
/// # async fn demo() -> lxd_client::Result<()> {
/// let cert = lxd_client::fetch_server_certificate("https://127.0.0.1:8443").await?;
/// println!("Certificate fingerprint: {}", cert.fingerprint());
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// [`Error::InvalidInput`] for a malformed address, [`Error::Connect`] when nothing answers
/// or the TLS handshake fails (each within the [`crate::Timeouts`] defaults).
pub async fn fetch_server_certificate(url: &str) -> Result<TlsCertificate> {
    let (authority, host) = parse_address(url)?;
    let verifier = verifier(None);
    let config = tls_config(Arc::clone(&verifier), None)?;
    let connect_err = |source: BoxError| Error::Connect {
        endpoint: format!("https://{authority}"),
        source,
    };
    let mut stream = connect_tls(
        &authority,
        &host,
        Arc::new(config),
        &crate::Timeouts::default(),
    )
    .await
    .map_err(|e| connect_err(e.into()))?;
    let seen = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.clone().into_owned())
        .or_else(|| verifier.seen.lock().ok().and_then(|s| s.clone()));
    // Best effort: the connection is thrown away either way.
    let _ = tokio::io::AsyncWriteExt::shutdown(&mut stream).await;
    seen.map(|der| TlsCertificate { der })
        .ok_or_else(|| connect_err("the server presented no certificate".into()))
}

/// Finds a [`PinMismatch`] in an error chain (through `io::Error` wrappers, whose `source`
/// skips the wrapped error).
fn find_mismatch(err: &(dyn std::error::Error + 'static)) -> Option<(Fingerprint, Fingerprint)> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = next {
        if let Some(m) = e.downcast_ref::<PinMismatch>() {
            return Some((m.expected.clone(), m.found.clone()));
        }
        if let Some(rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other))) =
            e.downcast_ref::<rustls::Error>()
            && let Some(m) = other.0.downcast_ref::<PinMismatch>()
        {
            return Some((m.expected.clone(), m.found.clone()));
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(found) = find_mismatch(inner)
        {
            return Some(found);
        }
        next = e.source();
    }
    None
}

/// The error for a failed connection: [`Error::CertificateMismatch`] when the server
/// presented an unpinned certificate, else [`Error::Connect`].
pub(crate) fn connect_error(endpoint: &crate::Endpoint, source: BoxError) -> Error {
    match find_mismatch(source.as_ref()) {
        Some((expected, found)) => Error::CertificateMismatch {
            endpoint: endpoint.to_string(),
            expected: expected.0,
            found: found.0,
        },
        None => Error::Connect {
            endpoint: endpoint.to_string(),
            source,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_readable_client_key_is_made_private_on_load_and_saves_replace_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("client.crt"), dir.path().join("client.key"));
        let identity = ClientIdentity::generate("t").unwrap();
        identity.save(&cert, &key).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&key), 0o600);
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let loaded = ClientIdentity::load(&cert, &key).unwrap();
        assert_eq!(loaded, identity);
        assert_eq!(mode(&key), 0o600);
        // A save over a symlink replaces the link and never writes through it.
        let elsewhere = dir.path().join("elsewhere");
        std::fs::write(&elsewhere, "keep").unwrap();
        std::fs::remove_file(&key).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &key).unwrap();
        ClientIdentity::generate("u")
            .unwrap()
            .save(&cert, &key)
            .unwrap();
        assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), "keep");
        assert_eq!(mode(&key), 0o600);
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 3, "{left:?}");
    }

    #[test]
    fn fingerprint_is_sha256_hex_of_der() {
        // sha256("abc")
        assert_eq!(
            Fingerprint::of_der(b"abc").as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn fingerprint_parse_accepts_colons_and_case() {
        let fp = Fingerprint::parse("BA:78:16:bf").unwrap();
        assert_eq!(fp.as_str(), "ba7816bf");
        assert!(!fp.is_complete());
        assert!(Fingerprint::parse("xyz").is_err());
        assert!(Fingerprint::parse("").is_err());
        assert!(Fingerprint::parse(&"a".repeat(65)).is_err());
    }

    #[test]
    fn generated_identity_round_trips_through_pem_files() {
        let id = ClientIdentity::generate("kdtest@host").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (crt, key) = (dir.path().join("client.crt"), dir.path().join("client.key"));
        id.save(&crt, &key).unwrap();
        let back = ClientIdentity::load(&crt, &key).unwrap();
        assert_eq!(back.fingerprint(), id.fingerprint());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // The PEM we write is what openssl-style readers expect.
        let pem = std::fs::read_to_string(&crt).unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert_eq!(TlsCertificate::from_pem(&pem).unwrap(), *id.certificate());
        // Usable as a TLS client identity.
        tls_config(verifier(None), Some(&back)).unwrap();
    }

    #[test]
    fn two_generated_identities_differ() {
        let a = ClientIdentity::generate("a").unwrap();
        let b = ClientIdentity::generate("a").unwrap();
        assert_ne!(a.fingerprint(), b.fingerprint());
    }

    #[test]
    fn sec1_keys_as_lxc_writes_them_load() {
        // An `EC PRIVATE KEY` (SEC1) P-384 key with its certificate, made by openssl.
        let dir = env!("CARGO_MANIFEST_DIR");
        let cert = std::fs::read_to_string(format!("{dir}/tests/fixtures/tls/sec1.crt")).unwrap();
        let key = std::fs::read_to_string(format!("{dir}/tests/fixtures/tls/sec1.key")).unwrap();
        assert!(key.starts_with("-----BEGIN EC PRIVATE KEY-----"));
        let id = ClientIdentity::from_pem(&cert, &key).unwrap();
        tls_config(verifier(None), Some(&id)).unwrap();
    }

    #[test]
    fn garbage_pem_is_a_certificate_error() {
        let err = TlsCertificate::from_pem("hello").unwrap_err();
        assert!(matches!(err, Error::Certificate { .. }), "{err}");
    }

    #[test]
    fn addresses_parse_like_lxc_remote_urls() {
        let p = |s| parse_address(s).unwrap();
        assert_eq!(
            p("https://127.0.0.1:8443"),
            ("127.0.0.1:8443".into(), "127.0.0.1".into())
        );
        assert_eq!(
            p("127.0.0.1"),
            ("127.0.0.1:8443".into(), "127.0.0.1".into())
        );
        assert_eq!(
            p("https://lxd.example/"),
            ("lxd.example:8443".into(), "lxd.example".into())
        );
        assert_eq!(p("https://[::1]:9443"), ("[::1]:9443".into(), "::1".into()));
        assert_eq!(p("::1"), ("[::1]:8443".into(), "::1".into()));
        assert!(parse_address("unix:///var/lib/lxd/unix.socket").is_err());
        assert!(parse_address("https://h:notaport").is_err());
        assert!(parse_address("https://h/1.0").is_err());
    }

    #[test]
    fn incomplete_pins_are_refused() {
        let pin = ServerPin::Fingerprint(Fingerprint::parse("abcd").unwrap());
        assert!(HttpsEndpoint::new("https://127.0.0.1", pin, None).is_err());
    }

    #[test]
    fn mismatch_is_found_through_io_and_rustls_wrappers() {
        let m = PinMismatch {
            expected: Fingerprint("aa".into()),
            found: Fingerprint("bb".into()),
        };
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::Other(
            rustls::OtherError(Arc::new(m)),
        ));
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, tls);
        let outer: BoxError = Box::new(io);
        let endpoint = crate::Endpoint::Unix("/x".into());
        match connect_error(&endpoint, outer) {
            Error::CertificateMismatch {
                expected, found, ..
            } => assert_eq!((expected.as_str(), found.as_str()), ("aa", "bb")),
            other => panic!("{other:?}"),
        }
        let plain: BoxError = Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(connect_error(&endpoint, plain).is_daemon_unreachable());
    }
}
