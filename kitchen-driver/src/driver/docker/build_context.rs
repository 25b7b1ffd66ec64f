//! The files a Dockerfile build sees: the directory holding the Dockerfile, as `docker build`
//! sends it. `.dockerignore` is honoured (moby's rules: patterns relative to the context,
//! `*` and `?` within one path segment, `**` across segments, `!` to re-include, the last
//! matching line wins, and a matched directory excludes everything under it), and symlinks
//! are sent as symlinks, never followed, so a link to `/` or `~/.ssh` in the project never
//! carries host files into an image.

use std::path::{Path, PathBuf};

use regex::Regex;

use crate::error::{Error, Result};

/// One entry of the context.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum ContextEntry {
    /// A regular file at this host path.
    File(PathBuf),
    /// A symlink with this target, sent as is.
    Symlink(PathBuf),
}

/// The parsed `.dockerignore`.
#[derive(Debug, Default)]
pub(super) struct DockerIgnore {
    /// `(pattern, is_exception)` in file order.
    rules: Vec<(Regex, bool)>,
}

impl DockerIgnore {
    /// Reads `<dir>/.dockerignore` (none: nothing ignored).
    ///
    /// # Errors
    /// [`Error::Io`] when it exists but cannot be read, or holds a pattern that is not a
    /// valid glob.
    pub(super) fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(".dockerignore");
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text).map_err(|m| {
                Error::io(
                    "reading",
                    &path,
                    std::io::Error::new(std::io::ErrorKind::InvalidData, m),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(Error::io("reading", &path, e)),
        }
    }

    /// Parses `.dockerignore` text.
    ///
    /// # Errors
    /// The offending line when a pattern is not a valid glob.
    pub(super) fn parse(text: &str) -> std::result::Result<Self, String> {
        let mut rules = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exception, pattern) = match line.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, line),
            };
            let pattern = clean(pattern);
            if pattern.is_empty() {
                continue;
            }
            let re = Regex::new(&glob_to_regex(&pattern))
                .map_err(|e| format!("the pattern {line:?} is not valid: {e}"))?;
            rules.push((re, exception));
        }
        Ok(Self { rules })
    }

    /// Whether the context-relative path `rel` (`/`-separated) is left out: the last rule
    /// that matches it or one of its parent directories decides.
    pub(super) fn excludes(&self, rel: &str) -> bool {
        let mut excluded = false;
        for (re, exception) in &self.rules {
            let matches =
                re.is_match(rel) || rel.match_indices('/').any(|(i, _)| re.is_match(&rel[..i]));
            if matches {
                excluded = !exception;
            }
        }
        excluded
    }
}

/// A pattern as moby cleans it: no leading `/` or `./`, no trailing `/`, no empty segments.
fn clean(pattern: &str) -> String {
    pattern
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// A dockerignore glob as an anchored regex.
fn glob_to_regex(pattern: &str) -> String {
    let mut re = String::from("^");
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' if chars.get(i + 1) == Some(&'*') => {
                // `**/` matches zero or more directories; a final `**` everything below.
                if chars.get(i + 2) == Some(&'/') {
                    re.push_str("(?:.*/)?");
                    i += 3;
                } else {
                    re.push_str(".*");
                    i += 2;
                }
                continue;
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '[' => {
                // A character class passes through up to its `]` (`[!a]` negates, as in Go).
                let end = chars[i + 1..].iter().position(|&c| c == ']');
                match end {
                    Some(n) => {
                        let class: String = chars[i + 1..i + 1 + n].iter().collect();
                        let class = class
                            .strip_prefix('!')
                            .map_or(class.clone(), |c| format!("^{c}"));
                        re.push('[');
                        re.push_str(&class.replace('\\', "\\\\"));
                        re.push(']');
                        i += n + 2;
                        continue;
                    }
                    None => re.push_str("\\["),
                }
            }
            '\\' if i + 1 < chars.len() => {
                re.push_str(&regex::escape(&chars[i + 1].to_string()));
                i += 2;
                continue;
            }
            c => re.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    re.push('$');
    re
}

/// Every entry of the context under `root` that `.dockerignore` keeps, as
/// `(relative path, entry)`, sorted. Directories are walked without following symlinks.
///
/// # Errors
/// [`Error::Io`] for an unreadable directory, link or `.dockerignore`.
pub(super) fn collect(root: &Path) -> Result<Vec<(String, ContextEntry)>> {
    let ignore = DockerIgnore::load(root)?;
    let mut out = Vec::new();
    walk(root, root, &ignore, &mut out)?;
    out.sort();
    Ok(out)
}

fn walk(
    root: &Path,
    dir: &Path,
    ignore: &DockerIgnore,
    out: &mut Vec<(String, ContextEntry)>,
) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("reading directory", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("reading directory", dir, e))?;
        let path = entry.path();
        let name = entry.file_name();
        if name == ".kitchen" || name == ".git" || name == "target" {
            continue;
        }
        let Ok(rel) = path.strip_prefix(root) else {
            continue;
        };
        let rel = rel.to_string_lossy().into_owned();
        // `file_type` does not follow links.
        let kind = entry
            .file_type()
            .map_err(|e| Error::io("reading directory", &path, e))?;
        if kind.is_dir() {
            // A directory is walked even when excluded: an exception below may re-include
            // one of its files, as in moby.
            walk(root, &path, ignore, out)?;
        } else if ignore.excludes(&rel) {
            continue;
        } else if kind.is_symlink() {
            let target =
                std::fs::read_link(&path).map_err(|e| Error::io("reading link", &path, e))?;
            out.push((rel, ContextEntry::Symlink(target)));
        } else if kind.is_file() {
            out.push((rel, ContextEntry::File(path)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerignore_follows_mobys_rules() {
        let ig = DockerIgnore::parse(
            "# comment\n/secrets\n*.log\n**/*.tmp\n!keep.log\ndocs/**\n!docs/README.md\nnode_modules/\nab?\n[!x]y\n",
        )
        .unwrap();
        for (path, excluded) in [
            ("secrets", true),
            ("secrets/key", true),
            ("a.log", true),
            ("sub/a.log", false), // `*` stays in its segment
            ("keep.log", false),
            ("x.tmp", true),
            ("deep/er/x.tmp", true),
            ("docs/guide/a.md", true),
            ("docs/README.md", false),
            ("node_modules/x/y.js", true),
            ("abc", true),
            ("ay", true),
            ("xy", false),
            ("Dockerfile", false),
        ] {
            assert_eq!(ig.excludes(path), excluded, "{path}");
        }
        assert!(DockerIgnore::parse("a[").is_ok());
    }

    #[test]
    fn symlinks_are_kept_as_links_and_never_walked() {
        let dir = tempfile::tempdir().unwrap();
        let host = tempfile::tempdir().unwrap();
        std::fs::write(host.path().join("id_rsa"), "HOST KEY").unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(dir.path().join(".dockerignore"), "*.secret\n").unwrap();
        std::fs::write(dir.path().join("db.secret"), "pw").unwrap();
        std::os::unix::fs::symlink(host.path(), dir.path().join("ssh")).unwrap();
        std::os::unix::fs::symlink("/", dir.path().join("root")).unwrap();
        let got = collect(dir.path()).unwrap();
        let names: Vec<&str> = got.iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(names, [".dockerignore", "Dockerfile", "root", "ssh"]);
        assert_eq!(got[2].1, ContextEntry::Symlink("/".into()));
        assert_eq!(got[3].1, ContextEntry::Symlink(host.path().to_path_buf()));
    }
}
