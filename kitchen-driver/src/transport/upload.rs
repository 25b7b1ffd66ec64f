//! [`UploadSet`]: what an upload puts into an instance, read from the host as it is sent.
//!
//! Nothing here holds a whole tree in memory. [`UploadSet::entries`] walks the host trees
//! lazily, one directory listing at a time; a transport either sends each entry by itself
//! (LXD's file API, each file streamed from disk) or streams them as one tar archive
//! ([`UploadSet::into_tar_stream`], Docker's archive API), built on a blocking thread into a
//! small bounded channel. Both transports consume the same walk, so an upload has the same
//! content on either.
//!
//! What arrives: directories and files under their names, with the modes tar's
//! deterministic mode gives (0755 for directories and files the owner can execute, 0644
//! otherwise). Symlinks are followed, as test-kitchen's SSH transport (scp) follows them: the
//! instance gets the file or directory behind a link, so a data directory or a bats suite may
//! link to shared files elsewhere in the project. A link that leads back to a directory it is
//! in (`/`, `..`, two directories linking to each other) is refused, naming it: following it
//! would never end, or would upload the host. A link to nothing arrives as that link.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::Stream;

use crate::error::{Error, Result};

/// Chunks of the tar stream: large enough for few channel sends, small enough that
/// [`TAR_CHANNEL_CHUNKS`] of them bound memory at a few MiB whatever the upload's size.
const TAR_CHUNK: usize = 256 * 1024;
/// How many chunks may wait for the transport before the archiving thread blocks.
const TAR_CHANNEL_CHUNKS: usize = 4;

/// One thing an upload creates, named relative to the remote directory (`/`-separated).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UploadEntry {
    /// A directory; it comes before anything inside it.
    Dir {
        /// Name under the remote directory.
        name: String,
        /// Its mode.
        mode: u32,
    },
    /// A host file, read when it is sent.
    File {
        /// Name under the remote directory.
        name: String,
        /// Where it is on the host.
        local: PathBuf,
        /// Its mode.
        mode: u32,
    },
    /// A symlink that points to nothing on the host, created as the same link.
    Symlink {
        /// Name under the remote directory.
        name: String,
        /// The link's target, as is.
        target: PathBuf,
    },
    /// Generated content (a script).
    Bytes {
        /// Name under the remote directory.
        name: String,
        /// The content.
        data: Bytes,
        /// Its mode.
        mode: u32,
    },
}

impl UploadEntry {
    /// The entry's name under the remote directory.
    pub fn name(&self) -> &str {
        match self {
            Self::Dir { name, .. }
            | Self::File { name, .. }
            | Self::Symlink { name, .. }
            | Self::Bytes { name, .. } => name,
        }
    }
}

#[derive(Debug, Clone)]
enum Source {
    Path {
        local: PathBuf,
        name: String,
    },
    Bytes {
        name: String,
        data: Bytes,
        mode: u32,
    },
}

/// Host files, directories and generated files to upload into one remote directory, each
/// under its own name. It records only what to send; the trees are read while they are sent.
///
/// ```
/// use kitchen_driver::transport::{UploadEntry, UploadSet};
///
/// let dir = tempfile::tempdir()?;
/// std::fs::write(dir.path().join("a.txt"), "A")?;
/// let mut upload = UploadSet::new();
/// upload.add_path(dir.path(), "data")?;
/// upload.add_bytes("run.sh", "echo hi\n", 0o755);
/// let names: Vec<String> = upload
///     .entries()
///     .map(|e| e.map(|e| e.name().to_string()))
///     .collect::<Result<_, _>>()?;
/// assert_eq!(names, ["data", "data/a.txt", "run.sh"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct UploadSet {
    sources: Vec<Source>,
}

impl UploadSet {
    /// Nothing to upload yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a file or a directory (with everything under it) as `name`; `.` puts a
    /// directory's content straight into the remote directory.
    ///
    /// # Errors
    /// [`Error::Io`] when `local` cannot be read.
    pub fn add_path(&mut self, local: &Path, name: &str) -> Result<()> {
        std::fs::metadata(local).map_err(|e| Error::io("reading", local, e))?;
        self.sources.push(Source::Path {
            local: local.to_path_buf(),
            name: name.to_string(),
        });
        Ok(())
    }

    /// Adds a file with the given content and mode.
    pub fn add_bytes(&mut self, name: &str, data: impl Into<Bytes>, mode: u32) {
        self.sources.push(Source::Bytes {
            name: name.to_string(),
            data: data.into(),
            mode,
        });
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// Everything the upload creates, parents before children, each directory's content in
    /// name order. The walk reads the host as it goes.
    ///
    /// Each item is an [`Error::Io`] when a host path cannot be read, or is neither a file,
    /// a directory nor a symlink (a socket, a device).
    pub fn entries(&self) -> impl Iterator<Item = Result<UploadEntry>> + Send + 'static {
        Walk {
            sources: self.sources.clone().into(),
            pending: Vec::new(),
        }
    }

    /// The upload as a tar archive, streamed: a blocking thread walks the trees and writes
    /// the archive in chunks into a bounded channel, so memory stays at a few MiB whatever
    /// the size of the trees. Must be called inside a Tokio runtime.
    ///
    /// An item is an error when a host file cannot be read; the stream ends there (the
    /// transport's request fails with it).
    pub fn into_tar_stream(self) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
        let (tx, rx) = tokio::sync::mpsc::channel(TAR_CHANNEL_CHUNKS);
        tokio::task::spawn_blocking(move || {
            let errors = tx.clone();
            let out = ChannelWriter {
                tx,
                buf: Vec::with_capacity(TAR_CHUNK),
            };
            if let Err(e) = write_tar(&self, out) {
                // The receiver may be gone already (the transport gave up): nothing to tell.
                let _ = errors.blocking_send(Err(e));
            }
        });
        futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        })
    }
}

/// The archive format of an upload: one tar entry per [`UploadEntry`].
fn write_tar(upload: &UploadSet, out: ChannelWriter) -> std::io::Result<()> {
    let mut tar = tar::Builder::new(out);
    for entry in upload.entries() {
        let entry = entry.map_err(std::io::Error::other)?;
        let mut header = tar::Header::new_gnu();
        header.set_mtime(tar::DETERMINISTIC_TIMESTAMP);
        header.set_uid(0);
        header.set_gid(0);
        match entry {
            UploadEntry::Dir { name, mode } => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(mode);
                header.set_size(0);
                tar.append_data(&mut header, format!("{name}/"), std::io::empty())?;
            }
            UploadEntry::File { name, local, mode } => {
                let file = std::fs::File::open(&local).map_err(|e| with_path(&local, e))?;
                let size = file.metadata().map_err(|e| with_path(&local, e))?.len();
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(mode);
                header.set_size(size);
                // `take` keeps the entry at the size in its header even if the file grows.
                tar.append_data(&mut header, &name, file.take(size))?;
            }
            UploadEntry::Symlink { name, target } => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                tar.append_link(&mut header, &name, &target)?;
            }
            UploadEntry::Bytes { name, data, mode } => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(mode);
                header.set_size(data.len() as u64);
                tar.append_data(&mut header, &name, &data[..])?;
            }
        }
    }
    tar.into_inner()?.flush()
}

fn with_path(path: &Path, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// Sends what tar writes to the transport in [`TAR_CHUNK`]-sized pieces; a send blocks while
/// the channel is full, which is what bounds memory.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(TAR_CHUNK));
        self.tx.blocking_send(Ok(Bytes::from(chunk))).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the transport stopped reading the upload",
            )
        })
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = data.len().min(TAR_CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= TAR_CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// A directory's identity on the host (device, inode), whatever path reaches it.
type DirId = (u64, u64);

/// The lazy walk behind [`UploadSet::entries`]: a stack of host paths still to visit.
struct Walk {
    sources: VecDeque<Source>,
    /// `(host path, remote name, the directories above it in this walk)`, the next one last.
    pending: Vec<(PathBuf, String, Arc<Vec<DirId>>)>,
}

/// Why following the link `local` (to the directory `id`) would never end, or would walk
/// the host from above the upload, or `None`.
fn loops_back(local: &Path, id: DirId, above: &[DirId]) -> Option<&'static str> {
    if above.contains(&id) {
        return Some("it leads back to a directory above it in the upload");
    }
    let is_link = std::fs::symlink_metadata(local).is_ok_and(|m| m.file_type().is_symlink());
    if !is_link {
        return None;
    }
    let (Ok(target), Some(Ok(parent))) = (
        std::fs::canonicalize(local),
        local.parent().map(std::fs::canonicalize),
    ) else {
        return None;
    };
    parent
        .starts_with(&target)
        .then_some("it points to a directory that contains it")
}

impl Walk {
    fn visit(
        &mut self,
        local: PathBuf,
        name: String,
        above: Arc<Vec<DirId>>,
    ) -> Result<Option<UploadEntry>> {
        let meta = match std::fs::metadata(&local) {
            Ok(meta) => meta,
            // A link to nothing: the instance gets the same dangling link.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let target =
                    std::fs::read_link(&local).map_err(|_| Error::io("reading", &local, e))?;
                return Ok(Some(UploadEntry::Symlink { name, target }));
            }
            Err(e) => return Err(Error::io("reading", &local, e)),
        };
        let kind = meta.file_type();
        // tar's deterministic mode: the owner's execute bit decides, nothing else is kept.
        let mode = if kind.is_dir() || meta.mode() & 0o100 != 0 {
            0o755
        } else {
            0o644
        };
        if kind.is_file() {
            return Ok(Some(UploadEntry::File { name, local, mode }));
        }
        if !kind.is_dir() {
            return Err(Error::io(
                "uploading",
                &local,
                std::io::Error::other("it is neither a file, a directory nor a symlink"),
            ));
        }
        let id = (meta.dev(), meta.ino());
        if let Some(why) = loops_back(&local, id, &above) {
            return Err(Error::io(
                "uploading the symlink",
                &local,
                std::io::Error::other(format!(
                    "{why}; remove it, or point it at the files to upload"
                )),
            ));
        }
        let mut chain = Vec::with_capacity(above.len() + 1);
        chain.extend_from_slice(&above);
        chain.push(id);
        let chain = Arc::new(chain);
        let mut children = Vec::new();
        for child in std::fs::read_dir(&local).map_err(|e| Error::io("reading", &local, e))? {
            let child = child.map_err(|e| Error::io("reading", &local, e))?;
            children.push(child.file_name());
        }
        // Reverse name order on the stack: the walk pops them in name order.
        children.sort_by(|a, b| b.cmp(a));
        for child in children {
            let child_name = child.to_string_lossy();
            let remote = if name == "." || name.is_empty() {
                child_name.into_owned()
            } else {
                format!("{name}/{child_name}")
            };
            self.pending
                .push((local.join(&child), remote, Arc::clone(&chain)));
        }
        // `.` is the remote directory itself, which exists.
        Ok((name != "." && !name.is_empty()).then_some(UploadEntry::Dir { name, mode }))
    }
}

impl Iterator for Walk {
    type Item = Result<UploadEntry>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let visited = if let Some((local, name, above)) = self.pending.pop() {
                self.visit(local, name, above)
            } else {
                match self.sources.pop_front()? {
                    Source::Bytes { name, data, mode } => {
                        return Some(Ok(UploadEntry::Bytes { name, data, mode }));
                    }
                    Source::Path { local, name } => self.visit(local, name, Arc::default()),
                }
            };
            match visited {
                Ok(Some(entry)) => return Some(Ok(entry)),
                Ok(None) => {}
                Err(e) => {
                    // One error ends the walk.
                    self.pending.clear();
                    self.sources.clear();
                    return Some(Err(e));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{PermissionsExt, symlink};

    use futures::StreamExt;

    use super::*;

    /// A tree with an executable, a private file, a link inside it and a link out of it.
    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        std::fs::create_dir_all(root.join("sub/deep")).unwrap();
        std::fs::write(root.join("sub/a.txt"), "A").unwrap();
        std::fs::write(root.join("run.sh"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(root.join("run.sh"), PermissionsExt::from_mode(0o700)).unwrap();
        std::fs::write(root.join("secret"), "s").unwrap();
        std::fs::set_permissions(root.join("secret"), PermissionsExt::from_mode(0o600)).unwrap();
        symlink("../a.txt", root.join("sub/deep/link.txt")).unwrap();
        std::fs::create_dir(dir.path().join("outside")).unwrap();
        std::fs::write(dir.path().join("outside/key"), "HOST-KEY").unwrap();
        symlink(dir.path().join("outside"), root.join("ssh")).unwrap();
        dir
    }

    fn upload(dir: &Path) -> UploadSet {
        let mut u = UploadSet::new();
        u.add_path(&dir.join("data"), "data").unwrap();
        u.add_bytes("bootstrap.sh", "echo hi\n", 0o755);
        u
    }

    #[test]
    fn the_walk_follows_links_and_keeps_modes_as_tar_does() {
        let dir = tree();
        let entries: Vec<UploadEntry> =
            upload(dir.path()).entries().collect::<Result<_>>().unwrap();
        let d = dir.path().join("data");
        let file = |name: &str, rel: &str, mode| UploadEntry::File {
            name: name.into(),
            local: d.join(rel),
            mode,
        };
        let dir_entry = |name: &str| UploadEntry::Dir {
            name: name.into(),
            mode: 0o755,
        };
        assert_eq!(
            entries,
            [
                dir_entry("data"),
                file("data/run.sh", "run.sh", 0o755),
                file("data/secret", "secret", 0o644),
                // What the links point to arrives, as scp gives it.
                dir_entry("data/ssh"),
                file("data/ssh/key", "ssh/key", 0o644),
                dir_entry("data/sub"),
                file("data/sub/a.txt", "sub/a.txt", 0o644),
                dir_entry("data/sub/deep"),
                file("data/sub/deep/link.txt", "sub/deep/link.txt", 0o644),
                UploadEntry::Bytes {
                    name: "bootstrap.sh".into(),
                    data: Bytes::from_static(b"echo hi\n"),
                    mode: 0o755
                },
            ]
        );
    }

    /// The error the walk of `dir/data` ends with.
    fn walk_error(dir: &Path) -> String {
        let mut u = UploadSet::new();
        u.add_path(&dir.join("data"), "data").unwrap();
        let items: Vec<Result<UploadEntry>> = u.entries().collect();
        assert_eq!(items.iter().filter(|r| r.is_err()).count(), 1, "{items:?}");
        items.last().unwrap().as_ref().unwrap_err().to_string()
    }

    #[test]
    fn links_that_lead_back_up_are_refused_by_name() {
        // A link to the root of the host, to a parent, and two directories linking to each
        // other: following any of them would upload the host or never end.
        for (link, target, why) in [
            ("rootfs", "/", "contains it"),
            ("sub/up", "..", "above it in the upload"),
        ] {
            let dir = tree();
            symlink(target, dir.path().join("data").join(link)).unwrap();
            let err = walk_error(dir.path());
            assert!(err.contains(link) && err.contains(why), "{link}: {err}");
        }
        let dir = tree();
        let other = dir.path().join("other");
        std::fs::create_dir(&other).unwrap();
        symlink(dir.path().join("data"), other.join("back")).unwrap();
        symlink(&other, dir.path().join("data/other")).unwrap();
        let err = walk_error(dir.path());
        assert!(
            err.contains("other/back") && err.contains("above it"),
            "{err}"
        );
    }

    #[test]
    fn a_link_to_nothing_arrives_as_the_same_link() {
        let dir = tree();
        symlink("nowhere", dir.path().join("data/dangling")).unwrap();
        let entries: Vec<UploadEntry> =
            upload(dir.path()).entries().collect::<Result<_>>().unwrap();
        assert!(
            entries.contains(&UploadEntry::Symlink {
                name: "data/dangling".into(),
                target: "nowhere".into()
            }),
            "{entries:?}"
        );
    }

    #[test]
    fn dot_puts_a_directory_s_content_at_the_top() {
        let dir = tree();
        let mut u = UploadSet::new();
        u.add_path(&dir.path().join("data/sub"), ".").unwrap();
        let names: Vec<String> = u.entries().map(|e| e.unwrap().name().to_string()).collect();
        assert_eq!(names, ["a.txt", "deep", "deep/link.txt"]);
    }

    #[test]
    fn a_missing_path_is_refused_when_added_and_a_vanished_one_ends_the_walk() {
        let dir = tree();
        let mut u = UploadSet::new();
        let err = u.add_path(&dir.path().join("nope"), "x").unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
        u.add_path(&dir.path().join("data"), "data").unwrap();
        u.add_bytes("after", "x", 0o644);
        let mut walk = u.entries();
        assert_eq!(walk.next().unwrap().unwrap().name(), "data");
        // Gone between the listing of `data` and its visit.
        std::fs::remove_dir_all(dir.path().join("data/sub")).unwrap();
        let rest: Vec<Result<UploadEntry>> = walk.collect();
        let err = rest.last().unwrap().as_ref().unwrap_err();
        assert!(err.to_string().contains("sub"), "{err}");
        assert_eq!(rest.iter().filter(|r| r.is_err()).count(), 1);
        assert!(
            !rest.iter().flatten().any(|e| e.name() == "after"),
            "{rest:?}"
        );
    }

    #[tokio::test]
    async fn the_tar_stream_holds_the_walk_s_entries_and_the_files_content() {
        let dir = tree();
        // A file larger than the channel holds, so the writer must wait for the reader.
        let big: Vec<u8> = (0..TAR_CHUNK * (TAR_CHANNEL_CHUNKS + 3))
            .map(|i| (i % 251) as u8)
            .collect();
        std::fs::write(dir.path().join("data/big.bin"), &big).unwrap();
        let mut tar = Vec::new();
        let mut chunks = 0;
        let mut stream = std::pin::pin!(upload(dir.path()).into_tar_stream());
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.unwrap();
            assert!(chunk.len() <= TAR_CHUNK);
            tar.extend_from_slice(&chunk);
            chunks += 1;
        }
        assert!(chunks > TAR_CHANNEL_CHUNKS, "{chunks} chunks");
        let mut archive = tar::Archive::new(std::io::Cursor::new(tar));
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            let header = entry.header();
            let kind = header.entry_type();
            let mode = header.mode().unwrap();
            let link = entry
                .link_name()
                .unwrap()
                .map(|l| l.to_string_lossy().into_owned());
            let mut content = Vec::new();
            entry.read_to_end(&mut content).unwrap();
            match name.as_str() {
                "data/big.bin" => assert!(content == big, "big.bin differs"),
                "data/sub/a.txt" => assert_eq!(content, b"A"),
                "bootstrap.sh" => {
                    assert_eq!((content.as_slice(), mode), (&b"echo hi\n"[..], 0o755))
                }
                "data/run.sh" => assert_eq!(mode, 0o755),
                "data/secret" => assert_eq!(mode, 0o644),
                "data/ssh/key" => assert_eq!(content, b"HOST-KEY"),
                "data/sub/deep/link.txt" => {
                    assert_eq!(
                        (kind, link, content.as_slice()),
                        (tar::EntryType::Regular, None, &b"A"[..])
                    )
                }
                _ => {}
            }
            seen.push(name);
        }
        assert_eq!(
            seen,
            [
                "data/",
                "data/big.bin",
                "data/run.sh",
                "data/secret",
                "data/ssh/",
                "data/ssh/key",
                "data/sub/",
                "data/sub/a.txt",
                "data/sub/deep/",
                "data/sub/deep/link.txt",
                "bootstrap.sh"
            ]
        );
    }

    #[tokio::test]
    async fn a_file_that_cannot_be_read_fails_the_stream() {
        let dir = tree();
        let mut u = UploadSet::new();
        u.add_path(&dir.path().join("data"), "data").unwrap();
        std::fs::remove_file(dir.path().join("data/secret")).unwrap();
        // A fifo: neither a file, a directory nor a link.
        let status = std::process::Command::new("mkfifo")
            .arg(dir.path().join("data/secret"))
            .status()
            .unwrap();
        assert!(status.success());
        let items: Vec<std::io::Result<Bytes>> = u.into_tar_stream().collect().await;
        let err = items.last().unwrap().as_ref().unwrap_err();
        assert!(err.to_string().contains("neither a file"), "{err}");
    }
}
