//! Connection handling and the request/response envelope.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::net::UnixStream;

use crate::error::{Error, Result};
use crate::models::Server;

/// A handle on one LXD daemon.
#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
}

/// The LXD response envelope; every field optional because servers differ.
#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    metadata: serde_json::Value,
}

/// Socket paths tried in order when no explicit path is given.
pub(crate) fn candidate_sockets() -> Vec<PathBuf> {
    let mut paths = Vec::new();
    if let Some(p) = std::env::var_os("LXD_SOCKET") {
        paths.push(PathBuf::from(p));
    }
    if let Some(dir) = std::env::var_os("LXD_DIR") {
        paths.push(Path::new(&dir).join("unix.socket"));
    }
    paths.push("/var/snap/lxd/common/lxd/unix.socket".into());
    paths.push("/var/lib/lxd/unix.socket".into());
    paths
}

impl Client {
    /// Connects to the local daemon, finding its unix socket as `lxc` does.
    ///
    /// # Errors
    /// [`Error::SocketNotFound`] when no socket exists at a known path.
    pub async fn connect_local() -> Result<Self> {
        let searched = candidate_sockets();
        match searched.iter().find(|p| p.exists()) {
            Some(p) => Ok(Self::with_socket(p)),
            None => Err(Error::SocketNotFound { searched }),
        }
    }

    /// A client for the unix socket at `path` (not contacted until the first request).
    pub fn with_socket(path: impl Into<PathBuf>) -> Self {
        Client {
            socket: path.into(),
        }
    }

    /// `GET /1.0`: the server's API version, extensions and environment.
    ///
    /// # Errors
    /// Connection, API or decode errors.
    pub async fn server(&self) -> Result<Server> {
        self.get("/1.0").await
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let transport = |source: Box<dyn std::error::Error + Send + Sync>| Error::Transport {
            method: "GET".into(),
            path: path.into(),
            source,
        };
        let stream = UnixStream::connect(&self.socket)
            .await
            .map_err(|source| Error::Connect {
                path: self.socket.clone(),
                source,
            })?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| transport(e.into()))?;
        tokio::spawn(conn);
        let request = http::Request::get(path)
            .header(http::header::HOST, "lxd")
            .body(Full::new(Bytes::new()))
            .map_err(|e| transport(e.into()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| transport(e.into()))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| transport(e.into()))?
            .to_bytes();
        decode(status, "GET", path, &body)
    }
}

fn decode<T: DeserializeOwned>(status: u16, method: &str, path: &str, body: &[u8]) -> Result<T> {
    let envelope: Envelope = serde_json::from_slice(body).map_err(|source| Error::Decode {
        path: path.into(),
        field: String::from("<envelope>"),
        source,
    })?;
    if envelope.kind == "error" || status >= 400 {
        return Err(Error::Api {
            status,
            method: method.into(),
            path: path.into(),
            message: envelope.error.unwrap_or_default(),
        });
    }
    serde_path_to_error::deserialize(envelope.metadata).map_err(|e| Error::Decode {
        path: path.into(),
        field: e.path().to_string(),
        source: e.into_inner(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_envelope_becomes_api_error() {
        let body = br#"{"type":"error","error":"Instance not found","error_code":404,"status":"","status_code":0,"operation":"","metadata":null}"#;
        let err = decode::<Server>(404, "GET", "/1.0/instances/x", body).unwrap_err();
        assert!(err.is_not_found(), "{err}");
        assert!(err.to_string().contains("Instance not found"));
    }

    #[test]
    fn decode_error_names_field_path() {
        let body = br#"{"type":"sync","status":"Success","status_code":200,"metadata":{"api_version":"1.0","auth":"trusted","environment":{"server_version":5}}}"#;
        let err = decode::<Server>(200, "GET", "/1.0", body).unwrap_err();
        assert!(
            err.to_string().contains("environment.server_version"),
            "{err}"
        );
    }
}
