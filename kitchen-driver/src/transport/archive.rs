//! [`TarBuilder`]: tar archives built in memory, for small archives that leave the host as a
//! whole (ecs-runner's image contexts and bundles). Uploads into instances are streamed
//! instead: see [`super::UploadSet`].

use std::path::Path;

use crate::error::{Error, Result};

/// Builds a tar archive in memory from host files, directories and generated content.
pub struct TarBuilder<W: std::io::Write = Vec<u8>> {
    builder: tar::Builder<W>,
}

impl<W: std::io::Write> std::fmt::Debug for TarBuilder<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TarBuilder").finish_non_exhaustive()
    }
}

impl Default for TarBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl TarBuilder {
    /// An empty archive, in memory.
    pub fn new() -> Self {
        Self::writing_to(Vec::new())
    }
}

impl<W: std::io::Write> TarBuilder<W> {
    fn writing_to(out: W) -> Self {
        let mut builder = tar::Builder::new(out);
        // ecs-runner's bundles carry the project as the user sees it: a link inside is followed.
        builder.follow_symlinks(true);
        builder.mode(tar::HeaderMode::Deterministic);
        Self { builder }
    }

    /// Adds a file or a directory (recursively) under `name`.
    ///
    /// # Errors
    /// [`Error::Io`] when the path cannot be read.
    pub fn add_path(&mut self, local: &Path, name: &str) -> Result<()> {
        let meta = std::fs::metadata(local).map_err(|e| Error::io("reading", local, e))?;
        let r = if meta.is_dir() {
            self.builder.append_dir_all(name, local)
        } else {
            self.builder.append_path_with_name(local, name)
        };
        r.map_err(|e| Error::io("archiving", local, e))
    }

    /// Adds a file with the given content and mode.
    ///
    /// # Errors
    /// [`Error::Io`] on an invalid name.
    pub fn add_bytes(&mut self, name: &str, data: &[u8], mode: u32) -> Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        self.builder
            .append_data(&mut header, name, data)
            .map_err(|e| Error::io("archiving", name, e))
    }

    /// The finished archive (the bytes, or the file to read from its start).
    ///
    /// # Errors
    /// [`Error::Io`] if the archive cannot be completed.
    pub fn finish(self) -> Result<W> {
        self.builder
            .into_inner()
            .map_err(|e| Error::io("finishing archive", "<archive>", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_builder_archives_files_dirs_and_bytes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        std::fs::write(dir.path().join("data/a.txt"), "A").unwrap();
        let mut b = TarBuilder::new();
        b.add_path(&dir.path().join("data"), "data").unwrap();
        b.add_bytes("run.sh", b"echo hi\n", 0o755).unwrap();
        let tar = b.finish().unwrap();
        let mut ar = tar::Archive::new(std::io::Cursor::new(tar));
        let mut names: Vec<(String, u32)> = ar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    e.header().mode().unwrap(),
                )
            })
            .collect();
        names.sort();
        assert!(names.iter().any(|(n, _)| n == "data/a.txt"), "{names:?}");
        assert!(names.contains(&("run.sh".into(), 0o755)), "{names:?}");
    }
}
