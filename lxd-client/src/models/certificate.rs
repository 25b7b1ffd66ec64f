use serde::{Deserialize, Serialize};

/// A certificate in the server's trust store (`/1.0/certificates/{fingerprint}`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Certificate {
    /// Name given when it was added.
    pub name: String,
    /// `client` (or `server`, `metrics` on newer servers).
    #[serde(rename = "type")]
    pub certificate_type: String,
    /// Whether it is limited to [`Certificate::projects`].
    pub restricted: bool,
    /// Projects it may use when restricted.
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub projects: Vec<String>,
    /// The certificate (PEM).
    pub certificate: String,
    /// Its SHA-256 fingerprint.
    pub fingerprint: String,
    /// Description (newer servers).
    pub description: Option<String>,
}

/// `POST /1.0/certificates`: add a certificate to the trust store, or (with `token: true`)
/// create a trust token for a client to add itself.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct CertificatesPost {
    /// Name for the certificate (LXD uses the token's client name when adding with a token).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// `client`.
    #[serde(rename = "type")]
    pub certificate_type: String,
    /// Limit it to [`CertificatesPost::projects`].
    pub restricted: bool,
    /// Projects it may use when restricted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub projects: Vec<String>,
    /// The certificate, base64 DER; empty means the TLS client certificate of the request.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub certificate: String,
    /// Trust password, or on LXD before 5.21 the trust token.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub password: String,
    /// The trust token on servers with the `explicit_trust_token` extension (LXD 5.21+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trust_token: Option<String>,
    /// Create a trust token instead of adding a certificate.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub token: bool,
}

impl CertificatesPost {
    /// A request for a client certificate, given as base64 DER (see
    /// [`crate::TlsCertificate::to_base64`]).
    pub fn client(certificate_base64: impl Into<String>) -> Self {
        CertificatesPost {
            certificate_type: "client".into(),
            certificate: certificate_base64.into(),
            ..Default::default()
        }
    }
}
