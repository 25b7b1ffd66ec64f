//! Streamed bodies in both directions.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use hyper::body::Incoming;
use tokio::io::{AsyncRead, AsyncWriteExt};

use crate::error::{BoxError, Error, Result};

/// The request body type used on the wire.
pub(crate) type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// Size of the chunks read from local files when streaming uploads.
const CHUNK: usize = 256 * 1024;

/// A response body delivered chunk by chunk (file pulls, image exports).
pub struct ByteStream {
    inner: Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>>,
}

impl std::fmt::Debug for ByteStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ByteStream")
    }
}

impl ByteStream {
    pub(crate) fn from_incoming(body: Incoming, what: String) -> Self {
        let stream = http_body_util::BodyDataStream::new(body).map(move |r| {
            r.map_err(|e| Error::Transport {
                method: "GET".into(),
                path: what.clone(),
                source: e.into(),
            })
        });
        ByteStream {
            inner: Box::pin(stream),
        }
    }

    /// From any stream of chunks.
    #[cfg(test)]
    pub(crate) fn from_stream<S>(stream: S) -> Self
    where
        S: Stream<Item = Result<Bytes>> + Send + 'static,
    {
        ByteStream {
            inner: Box::pin(stream),
        }
    }

    /// Collects the whole body into memory.
    ///
    /// # Errors
    /// Transport errors while reading.
    pub async fn bytes(mut self) -> Result<Bytes> {
        let mut out = bytes::BytesMut::new();
        while let Some(chunk) = self.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out.freeze())
    }

    /// Writes the body to a local file (created or truncated), chunk by chunk.
    ///
    /// # Errors
    /// Transport errors, or [`Error::Io`] for the local file.
    pub async fn write_to_file(mut self, path: &Path) -> Result<u64> {
        let io_err = |what: &str, source| Error::Io {
            what: what.into(),
            path: path.to_path_buf(),
            source,
        };
        let mut file = tokio::fs::File::create(path)
            .await
            .map_err(|e| io_err("cannot create", e))?;
        let mut total = 0u64;
        while let Some(chunk) = self.next().await {
            let chunk = chunk?;
            total += chunk.len() as u64;
            file.write_all(&chunk)
                .await
                .map_err(|e| io_err("cannot write", e))?;
        }
        file.flush().await.map_err(|e| io_err("cannot write", e))?;
        Ok(total)
    }

    /// The body as an [`AsyncRead`].
    pub fn into_async_read(self) -> impl AsyncRead + Send + Unpin {
        tokio_util::io::StreamReader::new(self.map(|r| r.map_err(io::Error::other)))
    }
}

impl Stream for ByteStream {
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// A request body for uploads: bytes in memory (owned or borrowed, which is copied), a local
/// file (streamed, never held in memory as a whole) or any stream.
///
/// Everything that converts into it can be passed straight to [`crate::Files::push`]:
///
/// ```no_run
/// # async fn demo(files: lxd_client::Files) -> lxd_client::Result<()> {
/// use lxd_client::FileOptions;
/// use std::path::{Path, PathBuf};
/// let config = format!("port={}\n", 8080);
/// files.push("/etc/app.conf", &config, FileOptions::default()).await?; // borrowed String
/// let buf = vec![0u8; 16];
/// files.push("/root/zeros", buf.as_slice(), FileOptions::default()).await?; // borrowed bytes
/// files.push("/root/hosts", Path::new("/etc/hosts"), FileOptions::default()).await?; // a local file
/// # Ok(())
/// # }
/// ```
pub struct UploadBody {
    source: Source,
    len: Option<u64>,
    progress: Option<Box<dyn FnMut(u64) + Send>>,
}

enum Source {
    Ready(Body),
    /// A local file, opened when the request is sent (so opening can fail with a
    /// [`Error::Io`] that names it).
    Path(PathBuf),
}

impl std::fmt::Debug for UploadBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = f.debug_struct("UploadBody");
        if let Source::Path(p) = &self.source {
            s.field("path", p);
        }
        s.field("len", &self.len).finish()
    }
}

impl UploadBody {
    fn ready(body: Body, len: Option<u64>) -> Self {
        UploadBody {
            source: Source::Ready(body),
            len,
            progress: None,
        }
    }

    /// From bytes in memory.
    pub fn bytes(data: impl Into<Bytes>) -> Self {
        let data: Bytes = data.into();
        let len = data.len() as u64;
        Self::ready(
            stream_body(futures::stream::once(async move { Ok(data) })),
            Some(len),
        )
    }

    /// From an open file, streamed.
    pub fn file(file: tokio::fs::File) -> Self {
        Self::ready(
            stream_body(tokio_util::io::ReaderStream::with_capacity(file, CHUNK)),
            None,
        )
    }

    /// Opens and streams the local file at `path` now.
    ///
    /// # Errors
    /// [`Error::Io`] when it cannot be opened.
    pub async fn path(path: &Path) -> Result<Self> {
        let file = open(path).await?;
        let len = file.metadata().await.ok().map(|m| m.len());
        Ok(UploadBody {
            len,
            ..Self::file(file)
        })
    }

    /// The local file at `path`, opened only when the request is sent (what `From<&Path>`
    /// makes); its length is unknown until then.
    pub fn lazy_path(path: impl Into<PathBuf>) -> Self {
        UploadBody {
            source: Source::Path(path.into()),
            len: None,
            progress: None,
        }
    }

    /// From any stream of chunks.
    pub fn stream<S>(stream: S) -> Self
    where
        S: Stream<Item = io::Result<Bytes>> + Send + 'static,
    {
        Self::ready(stream_body(stream), None)
    }

    /// From any [`AsyncRead`], streamed.
    pub fn reader<R: AsyncRead + Send + 'static>(reader: R) -> Self {
        Self::stream(tokio_util::io::ReaderStream::with_capacity(reader, CHUNK))
    }

    /// Calls `progress` with the total number of bytes handed to the connection so far,
    /// after every chunk (for upload progress bars).
    pub fn on_progress<F>(mut self, mut progress: F) -> Self
    where
        F: FnMut(u64) + Send + 'static,
    {
        self.progress = Some(match self.progress.take() {
            Some(mut earlier) => Box::new(move |n| {
                earlier(n);
                progress(n);
            }),
            None => Box::new(progress),
        });
        self
    }

    /// The length, when known.
    pub fn len(&self) -> Option<u64> {
        self.len
    }

    /// True when known to be empty.
    pub fn is_empty(&self) -> bool {
        self.len == Some(0)
    }

    /// The body to send: opens a lazy path, attaches the progress callback.
    pub(crate) async fn into_body(self) -> Result<Body> {
        let body = match self.source {
            Source::Ready(body) => body,
            Source::Path(path) => stream_body(tokio_util::io::ReaderStream::with_capacity(
                open(&path).await?,
                CHUNK,
            )),
        };
        let Some(mut progress) = self.progress else {
            return Ok(body);
        };
        use futures::TryStreamExt;
        let mut sent = 0u64;
        let stream = http_body_util::BodyDataStream::new(body)
            .map_err(io::Error::other)
            .inspect_ok(move |chunk| {
                sent += chunk.len() as u64;
                progress(sent);
            });
        Ok(stream_body(stream))
    }
}

async fn open(path: &Path) -> Result<tokio::fs::File> {
    tokio::fs::File::open(path)
        .await
        .map_err(|source| Error::Io {
            what: "cannot open".into(),
            path: path.to_path_buf(),
            source,
        })
}

impl From<Bytes> for UploadBody {
    fn from(data: Bytes) -> Self {
        UploadBody::bytes(data)
    }
}

impl From<&Bytes> for UploadBody {
    fn from(data: &Bytes) -> Self {
        UploadBody::bytes(data.clone())
    }
}

impl From<Vec<u8>> for UploadBody {
    fn from(data: Vec<u8>) -> Self {
        UploadBody::bytes(data)
    }
}

impl From<&Vec<u8>> for UploadBody {
    fn from(data: &Vec<u8>) -> Self {
        UploadBody::bytes(Bytes::copy_from_slice(data))
    }
}

impl From<&[u8]> for UploadBody {
    fn from(data: &[u8]) -> Self {
        UploadBody::bytes(Bytes::copy_from_slice(data))
    }
}

impl<const N: usize> From<&[u8; N]> for UploadBody {
    fn from(data: &[u8; N]) -> Self {
        UploadBody::bytes(Bytes::copy_from_slice(data))
    }
}

impl From<String> for UploadBody {
    fn from(data: String) -> Self {
        UploadBody::bytes(data)
    }
}

impl From<&String> for UploadBody {
    fn from(data: &String) -> Self {
        UploadBody::bytes(Bytes::copy_from_slice(data.as_bytes()))
    }
}

impl From<&str> for UploadBody {
    fn from(data: &str) -> Self {
        UploadBody::bytes(Bytes::copy_from_slice(data.as_bytes()))
    }
}

/// The local file at this path, opened when the request is sent ([`UploadBody::lazy_path`]).
impl From<&Path> for UploadBody {
    fn from(path: &Path) -> Self {
        UploadBody::lazy_path(path)
    }
}

/// The local file at this path ([`UploadBody::lazy_path`]).
impl From<PathBuf> for UploadBody {
    fn from(path: PathBuf) -> Self {
        UploadBody::lazy_path(path)
    }
}

/// The local file at this path ([`UploadBody::lazy_path`]).
impl From<&PathBuf> for UploadBody {
    fn from(path: &PathBuf) -> Self {
        UploadBody::lazy_path(path.as_path())
    }
}

impl From<tokio::fs::File> for UploadBody {
    fn from(file: tokio::fs::File) -> Self {
        UploadBody::file(file)
    }
}

/// Turns a stream of byte chunks into a request body.
pub(crate) fn stream_body<S>(stream: S) -> Body
where
    S: futures::Stream<Item = io::Result<Bytes>> + Send + 'static,
{
    use futures::TryStreamExt;
    use http_body_util::BodyExt;
    let frames = stream
        .map_ok(hyper::body::Frame::data)
        .map_err(|e| Box::new(e) as BoxError);
    http_body_util::StreamBody::new(frames).boxed_unsync()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[tokio::test]
    async fn progress_counts_every_byte() {
        let seen = Arc::new(AtomicU64::new(0));
        let s = Arc::clone(&seen);
        let chunks = futures::stream::iter(vec![
            Ok(Bytes::from_static(b"abc")),
            Ok(Bytes::from_static(b"defgh")),
        ]);
        let body = UploadBody::stream(chunks).on_progress(move |n| s.store(n, Ordering::SeqCst));
        let all = body
            .into_body()
            .await
            .unwrap()
            .collect()
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(&all[..], b"abcdefgh");
        assert_eq!(seen.load(Ordering::SeqCst), 8);
    }

    #[tokio::test]
    async fn file_body_streams_content() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, vec![7u8; 700_000]).unwrap();
        let body = UploadBody::path(&p).await.unwrap();
        assert_eq!(body.len(), Some(700_000));
        let all = body
            .into_body()
            .await
            .unwrap()
            .collect()
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(all.len(), 700_000);
    }
}
