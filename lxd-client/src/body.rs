//! Streamed bodies in both directions.

use std::io;
use std::path::Path;
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

/// A request body for uploads: bytes in memory, or a stream (a local file is read chunk by
/// chunk and never held in memory as a whole).
pub struct UploadBody {
    pub(crate) body: Body,
    pub(crate) len: Option<u64>,
}

impl std::fmt::Debug for UploadBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadBody")
            .field("len", &self.len)
            .finish()
    }
}

impl UploadBody {
    /// From bytes in memory.
    pub fn bytes(data: impl Into<Bytes>) -> Self {
        let data: Bytes = data.into();
        let len = data.len() as u64;
        UploadBody {
            body: stream_body(futures::stream::once(async move { Ok(data) })),
            len: Some(len),
        }
    }

    /// From an open file, streamed.
    pub fn file(file: tokio::fs::File) -> Self {
        UploadBody {
            body: stream_body(tokio_util::io::ReaderStream::with_capacity(file, CHUNK)),
            len: None,
        }
    }

    /// Opens and streams the local file at `path`.
    ///
    /// # Errors
    /// [`Error::Io`] when it cannot be opened.
    pub async fn path(path: &Path) -> Result<Self> {
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|source| Error::Io {
                what: "cannot open".into(),
                path: path.to_path_buf(),
                source,
            })?;
        let len = file.metadata().await.ok().map(|m| m.len());
        Ok(UploadBody {
            len,
            ..Self::file(file)
        })
    }

    /// From any stream of chunks.
    pub fn stream<S>(stream: S) -> Self
    where
        S: Stream<Item = io::Result<Bytes>> + Send + 'static,
    {
        UploadBody {
            body: stream_body(stream),
            len: None,
        }
    }

    /// From any [`AsyncRead`], streamed.
    pub fn reader<R: AsyncRead + Send + 'static>(reader: R) -> Self {
        Self::stream(tokio_util::io::ReaderStream::with_capacity(reader, CHUNK))
    }

    /// Calls `progress` with the total number of bytes handed to the connection so far,
    /// after every chunk (for upload progress bars).
    pub fn on_progress<F>(self, progress: F) -> Self
    where
        F: Fn(u64) + Send + 'static,
    {
        use futures::TryStreamExt;
        let mut sent = 0u64;
        let stream = http_body_util::BodyDataStream::new(self.body)
            .map_err(io::Error::other)
            .inspect_ok(move |chunk| {
                sent += chunk.len() as u64;
                progress(sent);
            });
        UploadBody {
            body: stream_body(stream),
            len: self.len,
        }
    }

    /// The length, when known.
    pub fn len(&self) -> Option<u64> {
        self.len
    }

    /// True when known to be empty.
    pub fn is_empty(&self) -> bool {
        self.len == Some(0)
    }

    pub(crate) fn into_body(self) -> Body {
        self.body
    }
}

impl From<Bytes> for UploadBody {
    fn from(data: Bytes) -> Self {
        UploadBody::bytes(data)
    }
}

impl From<Vec<u8>> for UploadBody {
    fn from(data: Vec<u8>) -> Self {
        UploadBody::bytes(data)
    }
}

impl From<&'static [u8]> for UploadBody {
    fn from(data: &'static [u8]) -> Self {
        UploadBody::bytes(data)
    }
}

impl From<&'static str> for UploadBody {
    fn from(data: &'static str) -> Self {
        UploadBody::bytes(data)
    }
}

impl From<String> for UploadBody {
    fn from(data: String) -> Self {
        UploadBody::bytes(data)
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
        let all = body.into_body().collect().await.unwrap().to_bytes();
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
        let all = body.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(all.len(), 700_000);
    }
}
