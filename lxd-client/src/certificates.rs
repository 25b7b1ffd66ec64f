//! The server's trust store (`/1.0/certificates`) and trust tokens.
//!
//! A new HTTPS client becomes trusted in two steps, as with `lxc config trust add` and
//! `lxc remote add --token`: a trusted client (e.g. root over the unix socket) creates a
//! [`TrustToken`] with [`Certificates::create_token`]; the new client connects over HTTPS
//! with its own certificate and calls [`Certificates::trust_with_token`].
//!
//! ```no_run
//! # async fn demo() -> lxd_client::Result<()> {
//! use lxd_client::{Client, ClientIdentity, HttpsEndpoint, ServerPin};
//! let local = Client::connect_local().await?;
//! let token = local.certificates().create_token("laptop").await?;
//!
//! let id = ClientIdentity::generate("me@laptop")?;
//! let pin = ServerPin::Fingerprint(token.fingerprint.parse()?);
//! let remote = Client::https("https://127.0.0.1:8443", pin, Some(id.clone()))?;
//! remote.certificates().trust_with_token(id.certificate(), &token.encode()).await?;
//! assert_eq!(remote.server().await?.auth, "trusted");
//! # Ok(())
//! # }
//! ```

use http::Method;
use serde::{Deserialize, Serialize};

use crate::client::{Client, decode_envelope, decode_metadata};
use crate::error::{Error, Result};
use crate::models::{Certificate, CertificatesPost, Operation, name_from_url};
use crate::request::{RequestSpec, seg};
use crate::tls::TlsCertificate;

/// A token that lets one client add its certificate to the trust store once.
///
/// Its text form ([`TrustToken::encode`], what `lxc config trust add` prints) is base64 of
/// the JSON object `{client_name, fingerprint, addresses, secret, expires_at}`; the
/// fingerprint is the *server's* certificate, so a client holding the token can pin the
/// server without asking the user.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct TrustToken {
    /// The name the certificate gets in the trust store.
    pub client_name: String,
    /// SHA-256 fingerprint of the server's certificate.
    pub fingerprint: String,
    /// Addresses (`host:port`) the server listens on.
    pub addresses: Vec<String>,
    /// The secret the server checks.
    pub secret: String,
    /// Expiry (RFC 3339; `0001-01-01T00:00:00Z` for never).
    pub expires_at: String,
    /// The id of the server-side operation that holds the token (not part of the text form).
    #[serde(skip)]
    pub operation_id: Option<String>,
}

impl TrustToken {
    /// Decodes the text form (as printed by `lxc config trust add`).
    ///
    /// ```
    /// let t = lxd_client::TrustToken::decode(
    ///     "eyJjbGllbnRfbmFtZSI6ImEiLCJmaW5nZXJwcmludCI6ImZmIiwiYWRkcmVzc2VzIjpbIjEyNy4wLjAuMTo4NDQzIl0sInNlY3JldCI6InMiLCJleHBpcmVzX2F0IjoiMDAwMS0wMS0wMVQwMDowMDowMFoifQ==",
    /// )?;
    /// assert_eq!((t.client_name.as_str(), t.secret.as_str()), ("a", "s"));
    /// # Ok::<(), lxd_client::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when the text is not base64 of a token object.
    pub fn decode(text: &str) -> Result<Self> {
        use base64::Engine;
        use base64::engine::general_purpose::{
            STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD,
        };
        let text = text.trim();
        let bytes = [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(text).ok())
            .ok_or_else(|| Error::InvalidInput("the trust token is not base64".into()))?;
        let token: TrustToken = serde_json::from_slice(&bytes).map_err(|e| {
            Error::InvalidInput(format!("the trust token does not hold a token object: {e}"))
        })?;
        if token.secret.is_empty() {
            return Err(Error::InvalidInput("the trust token has no secret".into()));
        }
        Ok(token)
    }

    /// The text form to hand to the new client.
    pub fn encode(&self) -> String {
        use base64::Engine;
        // A struct of strings always serializes.
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::STANDARD.encode(json)
    }

    /// Builds the token from the metadata of a `token` operation.
    fn from_operation(op: &Operation) -> Option<Self> {
        let meta = op.metadata.as_ref()?;
        let secret = meta.get("secret")?.as_str()?.to_string();
        let str_of = |v: Option<&serde_json::Value>| {
            v.and_then(|v| v.as_str()).unwrap_or_default().to_string()
        };
        let expires = str_of(meta.get("expiresAt"));
        Some(TrustToken {
            client_name: str_of(meta.get("request").and_then(|r| r.get("name"))),
            fingerprint: str_of(meta.get("fingerprint")),
            addresses: meta
                .get("addresses")
                .and_then(|a| a.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
            secret,
            expires_at: if expires.is_empty() {
                "0001-01-01T00:00:00Z".into()
            } else {
                expires
            },
            operation_id: Some(op.id.clone()),
        })
    }
}

/// Shows every field but the secret (`***`): a token in a log or a panic message must not
/// let its reader join the server.
impl std::fmt::Debug for TrustToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustToken")
            .field("client_name", &self.client_name)
            .field("fingerprint", &self.fingerprint)
            .field("addresses", &self.addresses)
            .field("secret", &"***")
            .field("expires_at", &self.expires_at)
            .field("operation_id", &self.operation_id)
            .finish()
    }
}

impl std::fmt::Display for TrustToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.encode())
    }
}

/// The trust store: `/1.0/certificates`. Get one from [`Client::certificates`].
#[derive(Debug, Clone)]
pub struct Certificates {
    client: Client,
}

impl Certificates {
    pub(crate) fn new(client: Client) -> Self {
        Certificates { client }
    }

    /// `GET /1.0/certificates?recursion=1`.
    ///
    /// # Errors
    /// API errors (403 for an untrusted client).
    pub async fn list(&self) -> Result<Vec<Certificate>> {
        self.client
            .sync(RequestSpec::get("/1.0/certificates").query("recursion", "1"))
            .await
    }

    /// `GET /1.0/certificates`: the fingerprints.
    ///
    /// # Errors
    /// API errors.
    pub async fn fingerprints(&self) -> Result<Vec<String>> {
        let urls: Vec<String> = self
            .client
            .sync(RequestSpec::get("/1.0/certificates"))
            .await?;
        Ok(urls.iter().map(|u| name_from_url(u)).collect())
    }

    /// `GET /1.0/certificates/{fingerprint}` (a unique prefix works too).
    ///
    /// # Errors
    /// API errors; [`Error::is_not_found`] when no certificate matches.
    pub async fn get(&self, fingerprint: &str) -> Result<Certificate> {
        self.client
            .sync(RequestSpec::get(format!(
                "/1.0/certificates/{}",
                seg(fingerprint)
            )))
            .await
    }

    /// `DELETE /1.0/certificates/{fingerprint}`: removes it from the trust store.
    ///
    /// # Errors
    /// API errors; [`Error::is_not_found`] when no certificate matches.
    pub async fn delete(&self, fingerprint: &str) -> Result<()> {
        self.client
            .send_collect(RequestSpec::new(
                Method::DELETE,
                format!("/1.0/certificates/{}", seg(fingerprint)),
            ))
            .await?;
        Ok(())
    }

    /// `POST /1.0/certificates` with any request body.
    ///
    /// # Errors
    /// API errors (409 when the certificate is already trusted, 403 when refused).
    pub async fn add(&self, request: &CertificatesPost) -> Result<()> {
        self.client
            .send_collect(RequestSpec::new(Method::POST, "/1.0/certificates").json(request))
            .await?;
        Ok(())
    }

    /// Adds a client certificate to the trust store as a trusted caller (what
    /// `lxc config trust add FILE` does).
    ///
    /// # Errors
    /// API errors.
    pub async fn add_client(&self, certificate: &TlsCertificate, name: &str) -> Result<()> {
        let mut request = CertificatesPost::client(certificate.to_base64());
        request.name = name.into();
        self.add(&request).await
    }

    /// Creates a trust token for a client to be called `name` (needs a trusted caller):
    /// `POST /1.0/certificates {"type":"client","token":true}`. The token lives in a
    /// server-side operation until it is used or revoked ([`Certificates::revoke_token`]).
    ///
    /// # Errors
    /// API errors; [`Error::UnexpectedResponse`] when the server sends no token.
    pub async fn create_token(&self, name: &str) -> Result<TrustToken> {
        let path = "/1.0/certificates";
        let request = CertificatesPost {
            name: name.into(),
            certificate_type: "client".into(),
            token: true,
            ..Default::default()
        };
        let (parts, body) = self
            .client
            .send_collect(RequestSpec::new(Method::POST, path).json(&request))
            .await?;
        let envelope = decode_envelope(parts.status.as_u16(), &Method::POST, path, &body)?;
        // The token operation stays "running" until used, so it is not followed here.
        let op: Operation = decode_metadata(path, envelope.metadata)?;
        TrustToken::from_operation(&op).ok_or_else(|| Error::UnexpectedResponse {
            method: "POST".into(),
            path: path.into(),
            detail: "the token operation carries no secret".into(),
        })
    }

    /// The pending trust tokens (running operations of class `token`).
    ///
    /// # Errors
    /// API or decode errors.
    pub async fn tokens(&self) -> Result<Vec<TrustToken>> {
        let ops = self.client.operations().list().await?;
        Ok(ops
            .into_values()
            .flatten()
            .filter(|op| op.class == "token" && !op.status_code.is_final())
            .filter_map(|op| TrustToken::from_operation(&op))
            .collect())
    }

    /// Revokes an unused trust token (cancels its operation), found by its operation id or,
    /// for a decoded token, by its secret.
    ///
    /// # Errors
    /// API errors; [`Error::is_not_found`] when no such token is pending.
    pub async fn revoke_token(&self, token: &TrustToken) -> Result<()> {
        let id = match &token.operation_id {
            Some(id) => id.clone(),
            None => self
                .tokens()
                .await?
                .into_iter()
                .find(|t| t.secret == token.secret)
                .and_then(|t| t.operation_id)
                .ok_or_else(|| Error::Api {
                    status: 404,
                    method: "DELETE".into(),
                    path: "/1.0/operations".into(),
                    message: format!("no pending trust token for {:?}", token.client_name),
                })?,
        };
        self.client.operations().cancel(&id).await
    }

    /// Adds `certificate` (this client's own, normally) to the trust store with a trust
    /// token, as `lxc remote add --token` does; call it over HTTPS as the untrusted client.
    ///
    /// LXD before 5.21 takes the token text in `password` (checked on 5.0.2: the bare secret
    /// is refused); servers with the `explicit_trust_token` extension take it in
    /// `trust_token`. The server's extensions (`GET /1.0`, allowed untrusted) decide.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when `token` cannot be decoded; API errors (403 for a wrong or
    /// used token).
    pub async fn trust_with_token(&self, certificate: &TlsCertificate, token: &str) -> Result<()> {
        // Refuse garbage before sending it.
        TrustToken::decode(token)?;
        let server = self.client.server().await?;
        let mut request = CertificatesPost::client(certificate.to_base64());
        if server.has_extension("explicit_trust_token") {
            request.trust_token = Some(token.trim().into());
        } else {
            request.password = token.trim().into();
        }
        self.add(&request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_secret() {
        let token = TrustToken {
            client_name: "ci".into(),
            secret: "s3cr3t-value".into(),
            ..TrustToken::default()
        };
        let shown = format!("{token:?}");
        assert!(!shown.contains("s3cr3t-value"), "{shown}");
        assert!(
            shown.contains("secret: \"***\"") && shown.contains("ci"),
            "{shown}"
        );
    }

    /// The token `lxc config trust list-tokens` showed for a token created here (LXD 5.0.2).
    const RECORDED: &str = "eyJjbGllbnRfbmFtZSI6ImtkdGVzdC1wcm9iZSIsImZpbmdlcnByaW50IjoiOTlmNTViYTlmYjA4NmRjYTU5ZWM4OTczMDRmYmRlMmEzMjFjOWI4ZmQzOTExNGJlMGQ5OTdlNjQxN2FhODQ5NCIsImFkZHJlc3NlcyI6WyIxMjcuMC4wLjE6ODQ0MyJdLCJzZWNyZXQiOiI5ZTMzNTJkZjY0ZjNhNWZlYzE0YmQ3M2JjZDA0YjFlYTRiODExODcyNDQ2N2MzZmU5MGIxZmViZjBlNTYyNThiIiwiZXhwaXJlc19hdCI6IjAwMDEtMDEtMDFUMDA6MDA6MDBaIn0=";

    #[test]
    fn recorded_token_decodes_and_reencodes_identically() {
        let t = TrustToken::decode(RECORDED).unwrap();
        assert_eq!(t.client_name, "kdtest-probe");
        assert_eq!(t.addresses, ["127.0.0.1:8443"]);
        assert!(t.fingerprint.starts_with("99f55ba9"));
        assert!(t.secret.starts_with("9e3352df"));
        assert_eq!(t.encode(), RECORDED);
    }

    #[test]
    fn token_from_recorded_operation_matches_lxc_text() {
        let dir = env!("CARGO_MANIFEST_DIR");
        let body = std::fs::read(format!(
            "{dir}/tests/fixtures/certificate_token_create.json"
        ))
        .unwrap();
        let env = decode_envelope(202, &Method::POST, "/1.0/certificates", &body).unwrap();
        let op: Operation = decode_metadata("/1.0/certificates", env.metadata).unwrap();
        let t = TrustToken::from_operation(&op).unwrap();
        assert_eq!(t.encode(), RECORDED);
        assert_eq!(t.operation_id.as_deref(), Some(op.id.as_str()));
    }

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn recorded_certificate_list_decodes_and_fingerprints_match() {
        let path = "/1.0/certificates";
        let body = fixture("certificates_recursion1.json");
        let env = decode_envelope(200, &Method::GET, path, &body).unwrap();
        let certs: Vec<Certificate> = decode_metadata(path, env.metadata).unwrap();
        assert_eq!(certs.len(), 1);
        let c = &certs[0];
        assert_eq!(
            (c.name.as_str(), c.certificate_type.as_str()),
            ("kdtest-fixture", "client")
        );
        assert!(!c.restricted);
        assert!(c.description.is_none(), "5.0.2 has no description");
        // LXD's fingerprint is the SHA-256 of the DER, as ours.
        let pem = TlsCertificate::from_pem(&c.certificate).unwrap();
        assert_eq!(pem.fingerprint().as_str(), c.fingerprint);
    }

    #[test]
    fn recorded_untrusted_server_info_decodes() {
        let body = fixture("server_untrusted_https.json");
        let env = decode_envelope(200, &Method::GET, "/1.0", &body).unwrap();
        let server: crate::models::Server = decode_metadata("/1.0", env.metadata).unwrap();
        assert_eq!(server.auth, "untrusted");
        assert!(server.auth_methods.iter().any(|m| m == "tls"));
        assert!(
            !server.has_extension("explicit_trust_token"),
            "5.0.2 takes the token as password"
        );
        assert!(
            server.environment.server_version.is_empty(),
            "no environment when untrusted"
        );
    }

    #[test]
    fn bad_tokens_are_refused() {
        assert!(TrustToken::decode("!!!").is_err());
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert!(TrustToken::decode(&b64("[1]")).is_err());
        assert!(TrustToken::decode(&b64(r#"{"client_name":"a"}"#)).is_err());
    }

    #[test]
    fn requests_serialize_as_lxd_expects() {
        let mut r = CertificatesPost::client("QUJD");
        r.password = "tok".into();
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::json!({"type":"client","restricted":false,"certificate":"QUJD","password":"tok"})
        );
        let mut r = CertificatesPost::client("QUJD");
        r.trust_token = Some("tok".into());
        assert_eq!(serde_json::to_value(&r).unwrap()["trust_token"], "tok");
        assert!(serde_json::to_value(&r).unwrap().get("password").is_none());
    }
}
