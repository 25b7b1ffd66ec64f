//! Ruby regular expressions as test-kitchen uses them: suite `includes`/`excludes` entries
//! written `/pattern/flags` (lib/kitchen/platform_filter.rb) and instance selection patterns
//! (`Regexp.new(arg)` matched unanchored against instance names).

use regex::Regex;

/// Which platforms a suite or a lifecycle hook applies to: its `includes` and `excludes`
/// (lib/kitchen/config.rb#filter_instances). With includes, only platforms an include
/// matches; else, without excludes, every platform; else those no exclude matches.
///
/// Suites and hooks share this one rule. (test-kitchen 4.1.0 compares a hook's entries with
/// `Array#include?`, exact names only; kitchen-driver also accepts `/regex/` there, read as
/// for suites.)
///
/// ```
/// use kitchen_driver::config::filter::{NameKind, PlatformFilter};
///
/// let f = PlatformFilter::parse(&["/^ubuntu/i"], &["centos-7"]).expect("valid regex");
/// assert!(f.matches("Ubuntu-22.04", NameKind::String));
/// assert!(!f.matches("debian-12", NameKind::String));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlatformFilter {
    /// Only these platforms, when non-empty.
    pub includes: Vec<PlatformPattern>,
    /// Not these platforms, when `includes` is empty.
    pub excludes: Vec<PlatformPattern>,
}

impl PlatformFilter {
    /// A filter from the entries as written.
    ///
    /// # Errors
    /// The entry and the regex engine's message when a `/.../` entry is not a valid regular
    /// expression here.
    pub fn parse<S: AsRef<str>>(
        includes: &[S],
        excludes: &[S],
    ) -> Result<Self, (String, regex::Error)> {
        let parse = |entries: &[S]| {
            entries
                .iter()
                .map(|e| {
                    let e = e.as_ref();
                    PlatformPattern::parse(e).map_err(|err| (e.to_owned(), err))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Self {
            includes: parse(includes)?,
            excludes: parse(excludes)?,
        })
    }

    /// Whether the platform named `name` (written as `kind`) passes the filter.
    pub fn matches(&self, name: &str, kind: NameKind) -> bool {
        if !self.includes.is_empty() {
            self.includes.iter().any(|f| f.matches(name, kind))
        } else if !self.excludes.is_empty() {
            !self.excludes.iter().any(|f| f.matches(name, kind))
        } else {
            true
        }
    }
}

/// One `includes`/`excludes` entry (test-kitchen's `PlatformFilter`): an exact platform name
/// or a `/regex/[ix]*`.
#[derive(Debug, Clone)]
pub enum PlatformPattern {
    /// Matches a platform whose name is exactly this string.
    Exact(String),
    /// Matches platforms whose name (String or Symbol) matches, unanchored.
    Regex(Regex),
}

impl PartialEq for PlatformPattern {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Exact(a), Self::Exact(b)) => a == b,
            (Self::Regex(a), Self::Regex(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

impl PlatformPattern {
    /// Parses an entry as `PlatformFilter.convert` does.
    ///
    /// # Errors
    /// The regex engine's message when a `/.../` entry is not a valid regular expression here.
    pub fn parse(entry: &str) -> Result<Self, regex::Error> {
        // REGEXP_LIKE_PATTERN = %r{^/(?<pattern>.*)/(?<options>[ix]*)$}
        if let Some(body) = entry.strip_prefix('/') {
            let flags_start = body.rfind('/');
            if let Some(end) = flags_start {
                let flags = &body[end + 1..];
                let pattern = &body[..end];
                if flags.chars().all(|c| c == 'i' || c == 'x') && !pattern.contains('\n') {
                    return ruby_regex(pattern, flags.contains('i'), flags.contains('x'))
                        .map(PlatformPattern::Regex);
                }
            }
        }
        Ok(PlatformPattern::Exact(entry.to_owned()))
    }

    /// Whether the platform named `name` matches. `kind` is how the name was written: an
    /// exact entry equals only a String name, a regex matches String and Symbol names.
    pub fn matches(&self, name: &str, kind: NameKind) -> bool {
        match self {
            PlatformPattern::Exact(s) => kind == NameKind::String && s == name,
            PlatformPattern::Regex(re) => kind != NameKind::Other && re.is_match(name),
        }
    }
}

/// The Ruby class of a platform name, which decides what a filter can match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameKind {
    /// A String (`name: ubuntu`).
    String,
    /// A Symbol (`name: :ubuntu`).
    Symbol,
    /// Anything else (an Integer with `os_type` and `shell_type` given, ...).
    Other,
}

/// Compiles a Ruby (Onigmo) pattern with the `regex` crate: `^`/`$` match at line breaks as
/// in Ruby, `\h` is a hex digit, `\Z` is end of text before an optional final newline.
/// Constructs the `regex` crate lacks (look-around, back-references) are errors.
///
/// # Errors
/// The regex engine's message.
pub fn ruby_regex(pattern: &str, ignore_case: bool, extended: bool) -> Result<Regex, regex::Error> {
    let mut out = String::from("(?m");
    if ignore_case {
        out.push('i');
    }
    if extended {
        out.push('x');
    }
    out.push(')');
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('h') => out.push_str("[0-9a-fA-F]"),
            Some('H') => out.push_str("[^0-9a-fA-F]"),
            Some('Z') => out.push_str(r"(?:\n?\z)"),
            Some(n) => {
                out.push('\\');
                out.push(n);
            }
            None => out.push('\\'),
        }
    }
    regex::RegexBuilder::new(&out).size_limit(1 << 22).build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(s: &str) -> PlatformPattern {
        match PlatformPattern::parse(s) {
            Ok(f) => f,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    #[test]
    fn exact_and_regex_entries() {
        use NameKind::*;
        assert!(f("ubuntu-22.04").matches("ubuntu-22.04", String));
        assert!(!f("ubuntu").matches("ubuntu-22.04", String));
        assert!(!f("ubuntu").matches("ubuntu", Symbol));
        assert!(f("/ubuntu/").matches("my-ubuntu-22.04", String));
        assert!(f("/ubuntu/").matches("ubuntu", Symbol));
        assert!(!f("/2016/").matches("2016", Other));
        assert!(!f("2016").matches("2016", Other));
        assert!(f("/^UBU/i").matches("ubuntu", String));
        assert!(!f("/^UBU/").matches("ubuntu", String));
        assert!(f("/u b u/x").matches("ubu", String));
        // Not regex-like: flags other than i/x, or no closing slash.
        assert!(matches!(f("/foo/g"), PlatformPattern::Exact(_)));
        assert!(matches!(f("/foo"), PlatformPattern::Exact(_)));
    }

    #[test]
    fn includes_win_over_excludes_and_empty_admits_all() {
        use NameKind::String;
        let filter = |i: &[&str], e: &[&str]| PlatformFilter::parse(i, e).unwrap();
        let none: &[&str] = &[];
        assert!(filter(&[], &[]).matches("x", String));
        assert!(filter(&["/ubuntu/i"], &[]).matches("Ubuntu-22.04", String));
        assert!(!filter(&["/ubuntu/"], &[]).matches("Ubuntu-22.04", String));
        assert!(filter(&["centos-7"], &["centos-7"]).matches("centos-7", String));
        assert!(!filter(&["centos"], &[]).matches("centos-7", String));
        assert!(!filter(&[], &["/^busy/"]).matches("busybox", String));
        assert!(filter(&[], &["/^busy/"]).matches("debian-12", String));
        let (entry, _) = PlatformFilter::parse(none, &["/(/"]).unwrap_err();
        assert_eq!(entry, "/(/");
    }

    #[test]
    fn ruby_specific_syntax() {
        let re = ruby_regex(r"^\h+\Z", false, false).ok();
        assert!(re.as_ref().is_some_and(|r| r.is_match("beef\n")));
        assert!(ruby_regex("(?=x)", false, false).is_err());
        // ^ matches after a newline, as in Ruby.
        assert!(ruby_regex("^b", false, false).is_ok_and(|r| r.is_match("a\nb")));
    }
}
