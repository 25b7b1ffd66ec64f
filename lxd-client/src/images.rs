//! Images: import (unified or split, streamed), aliases, list, get, delete, export.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use http::{HeaderName, HeaderValue, Method};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use tokio::io::AsyncWriteExt;

use crate::body::stream_body;
use crate::body::{ByteStream, UploadBody};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::models::{Image, ImageAliasPost, ImageAliasTarget, name_from_url};
use crate::operations::OperationHandle;
use crate::request::{RequestBody, RequestSpec, seg};

/// Options for [`Images::import`] and [`Images::import_split`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ImportOptions {
    /// Make the image public.
    pub public: bool,
    /// Original file name to record.
    pub filename: Option<String>,
    /// Extra properties (merged with those in the tarball's `metadata.yaml`).
    pub properties: Vec<(String, String)>,
}

impl ImportOptions {
    /// Adds a property.
    pub fn property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.push((key.into(), value.into()));
        self
    }

    /// Sets the public flag.
    pub fn public(mut self, public: bool) -> Self {
        self.public = public;
        self
    }

    /// Sets the recorded file name.
    pub fn filename(mut self, name: impl Into<String>) -> Self {
        self.filename = Some(name.into());
        self
    }

    fn apply(&self, mut spec: RequestSpec) -> RequestSpec {
        let h = HeaderName::from_static;
        spec = spec.header(
            h("x-lxd-public"),
            HeaderValue::from_static(if self.public { "1" } else { "0" }),
        );
        if let Some(name) = &self.filename
            && let Ok(v) = HeaderValue::from_str(name)
        {
            spec = spec.header(h("x-lxd-filename"), v);
        }
        if !self.properties.is_empty() {
            let encoded = self
                .properties
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{}={}",
                        utf8_percent_encode(k, NON_ALPHANUMERIC),
                        utf8_percent_encode(v, NON_ALPHANUMERIC)
                    )
                })
                .collect::<Vec<_>>()
                .join("&");
            // Percent-encoded text is ASCII, always a valid header value.
            if let Ok(v) = HeaderValue::from_str(&encoded) {
                spec = spec.header(h("x-lxd-properties"), v);
            }
        }
        spec
    }
}

/// An exported image.
#[derive(Debug)]
#[non_exhaustive]
pub struct ImageExport {
    /// `application/octet-stream` for a unified tarball, `multipart/form-data; boundary=...`
    /// for a split image.
    pub content_type: String,
    /// The file name from `Content-Disposition` (unified images).
    pub filename: Option<String>,
    /// The content, streamed.
    pub body: ByteStream,
}

impl ImageExport {
    /// True for a split image (a multipart body with `metadata` and `rootfs` parts).
    pub fn is_split(&self) -> bool {
        self.content_type.starts_with("multipart/")
    }

    /// Writes the image into the directory `dir`, streamed, as `lxc image export` does: a
    /// unified image as one file, a split image as its metadata and rootfs files, named as
    /// the server names them (or `default_name` / the part name when it does not). Returns
    /// the files written, in order.
    ///
    /// # Errors
    /// [`Error::Io`] for local files; transport errors; a malformed multipart body.
    pub async fn write_to_dir(self, dir: &Path, default_name: &str) -> Result<Vec<PathBuf>> {
        if !self.is_split() {
            let name = safe_name(self.filename.as_deref().unwrap_or(default_name));
            let path = dir.join(name);
            self.body.write_to_file(&path).await?;
            return Ok(vec![path]);
        }
        let boundary =
            multer::parse_boundary(&self.content_type).map_err(|e| Error::UnexpectedResponse {
                method: "GET".into(),
                path: "image export".into(),
                detail: format!("bad multipart content type: {e}"),
            })?;
        let bad = |e: multer::Error| Error::UnexpectedResponse {
            method: "GET".into(),
            path: "image export".into(),
            detail: format!("malformed multipart body: {e}"),
        };
        let mut parts = multer::Multipart::new(self.body, boundary);
        let mut written = Vec::new();
        while let Some(mut field) = parts.next_field().await.map_err(bad)? {
            let name = field
                .file_name()
                .or(field.name())
                .map(safe_name)
                .unwrap_or_else(|| format!("part{}", written.len()));
            let path = dir.join(name);
            let mut file = tokio::fs::File::create(&path)
                .await
                .map_err(|source| Error::Io {
                    what: "cannot create".into(),
                    path: path.clone(),
                    source,
                })?;
            while let Some(chunk) = field.chunk().await.map_err(bad)? {
                file.write_all(&chunk).await.map_err(|source| Error::Io {
                    what: "cannot write".into(),
                    path: path.clone(),
                    source,
                })?;
            }
            file.flush().await.map_err(|source| Error::Io {
                what: "cannot write".into(),
                path: path.clone(),
                source,
            })?;
            written.push(path);
        }
        Ok(written)
    }
}

/// The last path component of a server-provided name, so it cannot escape the directory.
fn safe_name(name: &str) -> String {
    let base = name.rsplit('/').next().unwrap_or(name);
    match base {
        "" | "." | ".." => "image".to_string(),
        other => other.to_string(),
    }
}

/// The `filename=` of a `Content-Disposition` header.
fn disposition_filename(value: &str) -> Option<String> {
    value.split(';').map(str::trim).find_map(|p| {
        p.strip_prefix("filename=")
            .map(|f| f.trim_matches('"').to_string())
    })
}

/// `/1.0/images`.
///
/// ```no_run
/// # async fn demo(client: lxd_client::Client) -> lxd_client::Result<()> {
/// use lxd_client::{ImportOptions, UploadBody};
/// let body = UploadBody::path(std::path::Path::new("busybox.tar.gz")).await?;
/// let done = client.images().import(body, ImportOptions::default()).await?.wait().await?;
/// let fingerprint = done.metadata_str("fingerprint").unwrap_or_default().to_string();
/// client.images().create_alias("my/busybox", &fingerprint, "").await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Images {
    client: Client,
}

fn image_path(fingerprint: &str) -> String {
    format!("/1.0/images/{}", seg(fingerprint))
}

fn alias_path(name: &str) -> String {
    format!("/1.0/images/aliases/{}", seg(name))
}

impl Images {
    pub(crate) fn new(client: Client) -> Self {
        Images { client }
    }

    /// Image fingerprints.
    ///
    /// # Errors
    /// API or decode errors.
    pub async fn fingerprints(&self) -> Result<Vec<String>> {
        let urls: Vec<String> = self.client.sync(RequestSpec::get("/1.0/images")).await?;
        Ok(urls.iter().map(|u| name_from_url(u)).collect())
    }

    /// All images (`recursion=1`).
    ///
    /// # Errors
    /// API or decode errors.
    pub async fn list(&self) -> Result<Vec<Image>> {
        self.client
            .sync(RequestSpec::get("/1.0/images").query("recursion", "1"))
            .await
    }

    /// One image by fingerprint (or unique prefix).
    ///
    /// # Errors
    /// [`crate::Error::is_not_found`]; API errors.
    pub async fn get(&self, fingerprint: &str) -> Result<Image> {
        self.client
            .sync(RequestSpec::get(image_path(fingerprint)))
            .await
    }

    /// Deletes an image.
    ///
    /// # Errors
    /// [`crate::Error::is_not_found`]; API errors.
    pub async fn delete(&self, fingerprint: &str) -> Result<OperationHandle> {
        self.client
            .operation(RequestSpec::new(Method::DELETE, image_path(fingerprint)))
            .await
    }

    /// All aliases (`recursion=1`).
    ///
    /// # Errors
    /// API or decode errors.
    pub async fn aliases(&self) -> Result<Vec<ImageAliasTarget>> {
        self.client
            .sync(RequestSpec::get("/1.0/images/aliases").query("recursion", "1"))
            .await
    }

    /// One alias (`kitchen/busybox` and the like).
    ///
    /// # Errors
    /// [`crate::Error::is_not_found`]; API errors.
    pub async fn get_alias(&self, name: &str) -> Result<ImageAliasTarget> {
        self.client.sync(RequestSpec::get(alias_path(name))).await
    }

    /// Creates alias `name` for image `fingerprint`.
    ///
    /// # Errors
    /// API errors (409 when it exists).
    pub async fn create_alias(
        &self,
        name: &str,
        fingerprint: &str,
        description: &str,
    ) -> Result<()> {
        let body = ImageAliasPost {
            name: name.into(),
            target: fingerprint.into(),
            description: description.into(),
        };
        self.client
            .send_collect(RequestSpec::new(Method::POST, "/1.0/images/aliases").json(&body))
            .await?;
        Ok(())
    }

    /// Deletes an alias (not the image).
    ///
    /// # Errors
    /// [`crate::Error::is_not_found`]; API errors.
    pub async fn delete_alias(&self, name: &str) -> Result<()> {
        self.client
            .send_collect(RequestSpec::new(Method::DELETE, alias_path(name)))
            .await?;
        Ok(())
    }

    /// Uploads a unified image tarball (metadata.yaml, templates and rootfs in one file),
    /// streamed. When done the operation's metadata holds `fingerprint` and `size`.
    ///
    /// # Errors
    /// API errors; a duplicate image fails the operation ("Image with same fingerprint
    /// already exists").
    pub async fn import(
        &self,
        tarball: impl Into<UploadBody>,
        opts: ImportOptions,
    ) -> Result<OperationHandle> {
        let spec = RequestSpec::new(Method::POST, "/1.0/images").body(RequestBody::Stream(
            tarball.into().into_body().await?,
            "application/octet-stream".into(),
        ));
        self.client.operation(opts.apply(spec)).await
    }

    /// Uploads a split image (a metadata tarball and a rootfs tarball or squashfs) as one
    /// streamed `multipart/form-data` body.
    ///
    /// # Errors
    /// As [`Images::import`].
    pub async fn import_split(
        &self,
        metadata: impl Into<UploadBody>,
        rootfs: impl Into<UploadBody>,
        opts: ImportOptions,
    ) -> Result<OperationHandle> {
        let boundary = boundary();
        let metadata = metadata.into().into_body().await?;
        let rootfs = rootfs.into().into_body().await?;
        let body = multipart(&boundary, metadata, rootfs);
        let spec = RequestSpec::new(Method::POST, "/1.0/images").body(RequestBody::Stream(
            body,
            format!("multipart/form-data; boundary={boundary}"),
        ));
        self.client.operation(opts.apply(spec)).await
    }

    /// Downloads an image (`GET /1.0/images/{fingerprint}/export`), streamed.
    ///
    /// # Errors
    /// [`crate::Error::is_not_found`]; API errors.
    pub async fn export(&self, fingerprint: &str) -> Result<ImageExport> {
        let path = format!("{}/export", image_path(fingerprint));
        let response = self.client.send(RequestSpec::get(path.clone())).await?;
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_string();
        let filename = response
            .headers()
            .get(http::header::CONTENT_DISPOSITION)
            .and_then(|v| v.to_str().ok())
            .and_then(disposition_filename);
        Ok(ImageExport {
            content_type,
            filename,
            body: ByteStream::from_incoming(response.into_body(), path),
        })
    }
}

fn boundary() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("lxd-client-{:x}-{nanos:x}", std::process::id())
}

/// The multipart body: part `metadata`, then part `rootfs`, each streamed.
pub(crate) fn multipart(
    boundary: &str,
    metadata: crate::body::Body,
    rootfs: crate::body::Body,
) -> crate::body::Body {
    let head = |name: &str| {
        Bytes::from(format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        ))
    };
    let data = |b: crate::body::Body| {
        http_body_util::BodyDataStream::new(b).map_err(std::io::Error::other)
    };
    let once = |b: Bytes| futures::stream::once(async move { Ok::<_, std::io::Error>(b) });
    let stream = once(head("metadata"))
        .chain(data(metadata))
        .chain(once(Bytes::from_static(b"\r\n")))
        .chain(once(head("rootfs")))
        .chain(data(rootfs))
        .chain(once(Bytes::from(format!("\r\n--{boundary}--\r\n"))));
    stream_body(stream)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body(data: &'static str) -> crate::body::Body {
        UploadBody::bytes(data).into_body().await.unwrap()
    }

    #[tokio::test]
    async fn multipart_layout() {
        let body = multipart("B", body("META").await, body("ROOT").await);
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            "--B\r\nContent-Disposition: form-data; name=\"metadata\"; filename=\"metadata\"\r\nContent-Type: application/octet-stream\r\n\r\nMETA\r\n\
             --B\r\nContent-Disposition: form-data; name=\"rootfs\"; filename=\"rootfs\"\r\nContent-Type: application/octet-stream\r\n\r\nROOT\r\n--B--\r\n"
        );
    }

    #[test]
    fn import_headers() {
        let spec = ImportOptions::default()
            .property("os", "busy box")
            .filename("b.tar.gz")
            .apply(RequestSpec::new(Method::POST, "/1.0/images"));
        let get = |k: &str| {
            spec.headers
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.to_str().unwrap().to_string())
        };
        assert_eq!(get("x-lxd-public").as_deref(), Some("0"));
        assert_eq!(get("x-lxd-filename").as_deref(), Some("b.tar.gz"));
        assert_eq!(get("x-lxd-properties").as_deref(), Some("os=busy%20box"));
    }

    #[test]
    fn names_from_server_cannot_escape() {
        assert_eq!(safe_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_name(".."), "image");
        assert_eq!(
            disposition_filename("inline;filename=busybox.tar.gz").as_deref(),
            Some("busybox.tar.gz")
        );
        assert_eq!(
            disposition_filename("attachment; filename=\"a b.tar\"").as_deref(),
            Some("a b.tar")
        );
    }

    #[tokio::test]
    async fn multipart_round_trip_through_parser() {
        // What this crate uploads, the export parser reads back part by part.
        let body = multipart("XyZ", body("META").await, body("ROOT").await);
        let bytes = body.collect().await.unwrap().to_bytes();
        let dir = tempfile::tempdir().unwrap();
        let export = ImageExport {
            content_type: "multipart/form-data; boundary=XyZ".into(),
            filename: None,
            body: ByteStream::from_stream(futures::stream::once(async move { Ok(bytes) })),
        };
        let files = export.write_to_dir(dir.path(), "x").await.unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["metadata", "rootfs"]);
        assert_eq!(std::fs::read(&files[0]).unwrap(), b"META");
        assert_eq!(std::fs::read(&files[1]).unwrap(), b"ROOT");
    }

    #[test]
    fn alias_path_escapes_slash() {
        assert_eq!(
            alias_path("kitchen/busybox"),
            "/1.0/images/aliases/kitchen%2Fbusybox"
        );
    }
}
