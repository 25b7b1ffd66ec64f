//! CI systems whose log viewers understand markers: GitHub Actions' workflow commands and
//! GitLab's collapsible sections.

use std::time::SystemTime;

/// A CI system we write markers for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CiKind {
    /// GitHub Actions (`GITHUB_ACTIONS=true`): `::group::`, `::error`.
    GitHub,
    /// GitLab CI (`GITLAB_CI=true`): `section_start`/`section_end`.
    GitLab,
}

impl CiKind {
    /// Which CI `var` describes, if one we know.
    pub fn detect(var: impl Fn(&str) -> Option<String>) -> Option<CiKind> {
        if var("GITHUB_ACTIONS").as_deref() == Some("true") {
            Some(CiKind::GitHub)
        } else if var("GITLAB_CI").as_deref() == Some("true") {
            Some(CiKind::GitLab)
        } else {
            None
        }
    }

    /// The line opening a collapsible block titled `title`. `id` must be unique in the run;
    /// `collapsed` folds it by default (GitLab; GitHub always folds groups).
    pub fn open(self, id: &str, title: &str, collapsed: bool, at: SystemTime) -> String {
        match self {
            CiKind::GitHub => format!("::group::{}", escape_github_data(title)),
            CiKind::GitLab => format!(
                "\x1b[0Ksection_start:{}:{}{}\r\x1b[0K{title}",
                unix(at),
                section_id(id),
                if collapsed { "[collapsed=true]" } else { "" }
            ),
        }
    }

    /// The line closing the block [`CiKind::open`] opened.
    pub fn close(self, id: &str, at: SystemTime) -> String {
        match self {
            CiKind::GitHub => "::endgroup::".to_string(),
            CiKind::GitLab => format!(
                "\x1b[0Ksection_end:{}:{}\r\x1b[0K",
                unix(at),
                section_id(id)
            ),
        }
    }

    /// An annotation for a failure (GitHub's `::error title=...::message`); GitLab has none.
    pub fn error_annotation(self, title: &str, message: &str) -> Option<String> {
        match self {
            CiKind::GitHub => Some(format!(
                "::error title={}::{}",
                escape_github_property(title),
                escape_github_data(message)
            )),
            CiKind::GitLab => None,
        }
    }
}

fn unix(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// GitLab section names may hold letters, digits, `_`, `.` and `-`.
fn section_id(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// GitHub's escaping for a workflow command's message.
fn escape_github_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// GitHub's escaping for a workflow command's property value.
fn escape_github_property(s: &str) -> String {
    escape_github_data(s)
        .replace(':', "%3A")
        .replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_follows_the_documented_variables() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            CiKind::detect(env(&[("GITHUB_ACTIONS", "true")])),
            Some(CiKind::GitHub)
        );
        assert_eq!(
            CiKind::detect(env(&[("GITLAB_CI", "true")])),
            Some(CiKind::GitLab)
        );
        assert_eq!(CiKind::detect(env(&[("CI", "true")])), None);
        assert_eq!(CiKind::detect(env(&[("GITHUB_ACTIONS", "false")])), None);
    }

    #[test]
    fn markers_are_the_ones_the_ci_documents() {
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        assert_eq!(
            CiKind::GitHub.open("x", "[a] Converging <a>", true, at),
            "::group::[a] Converging <a>"
        );
        assert_eq!(CiKind::GitHub.close("x", at), "::endgroup::");
        assert_eq!(
            CiKind::GitHub
                .error_annotation("a-b: converge, errored", "line 1\nline 2 100%")
                .unwrap(),
            "::error title=a-b%3A converge%2C errored::line 1%0Aline 2 100%25"
        );
        assert_eq!(
            CiKind::GitLab.open("a-b converge/1", "Converging", true, at),
            "\x1b[0Ksection_start:1700000000:a-b_converge_1[collapsed=true]\r\x1b[0KConverging"
        );
        assert_eq!(
            CiKind::GitLab.close("a-b converge/1", at),
            "\x1b[0Ksection_end:1700000000:a-b_converge_1\r\x1b[0K"
        );
        assert_eq!(CiKind::GitLab.error_annotation("t", "m"), None);
    }
}
