//! ERB in kitchen.yml, as test-kitchen runs it (`ERB.new(str).result`, no trim mode, cwd the
//! project directory).
//!
//! Files whose tags are all `<%= expr %>` with a simple expression (`ENV['X']`,
//! `ENV.fetch('X', 'default')`, `a || b`, string/integer literals, `nil`, `true`, `false`)
//! and `<%# comments %>` are evaluated here. Anything else (loops, method calls, backticks)
//! runs through Ruby's own ERB, once per file, so the output is exactly test-kitchen's.
//! Without Ruby, such a file is an error naming the first expression that needs it.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::error::ConfigError;

/// What ERB evaluation needs from the outside world.
pub(crate) struct ErbEnv<'a> {
    /// The environment ERB sees (`ENV`), also given to Ruby.
    pub env: &'a BTreeMap<String, String>,
    /// The project directory (Ruby's cwd).
    pub cwd: &'a Path,
}

/// One piece of an ERB template.
#[derive(Debug, PartialEq)]
enum Piece<'t> {
    Text(std::borrow::Cow<'t, str>),
    /// `<%= ... %>` with its 1-based line.
    Expr(&'t str, u32),
    /// `<% ... %>` with its 1-based line.
    Code(&'t str, u32),
}

/// Renders `text` (read from `file`).
///
/// # Errors
/// [`ConfigError::Erb`] when evaluation fails, [`ConfigError::RubyMissing`] when the file
/// needs Ruby and none is on `PATH`.
pub(crate) fn render(text: &str, file: &Path, env: &ErbEnv<'_>) -> Result<String, ConfigError> {
    if !text.contains("<%") {
        return Ok(text.to_owned());
    }
    let pieces = scan(text);
    match render_native(&pieces, file, env)? {
        Native::Done(out) => Ok(out),
        Native::NeedsRuby { line, expr } => match find_ruby(env.env) {
            // RubyGems is not needed by ERB and costs most of Ruby's start-up; a template that
            // needs it (a `require` of a gem, `Gem::Version`) fails fast and runs again with it.
            Some(ruby) => run_ruby(&ruby, text, file, env, true)
                .or_else(|_| run_ruby(&ruby, text, file, env, false)),
            None => Err(ConfigError::RubyMissing {
                file: file.to_path_buf(),
                line,
                expr,
            }),
        },
    }
}

/// Splits a template into text and tags (`<%%` is a literal `<%`, `%%>` inside a tag is `%>`).
fn scan(text: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = text;
    let mut line: u32 = 1;
    let mut pending = String::new();
    while let Some(i) = rest.find("<%") {
        let (before, after) = rest.split_at(i);
        pending.push_str(before);
        line += count_lines(before);
        if let Some(after_lit) = after.strip_prefix("<%%") {
            pending.push_str("<%");
            rest = after_lit;
            continue;
        }
        let body_start = &after[2..];
        let Some(end) = body_start.find("%>") else {
            // Ruby's ERB leaves an unterminated tag to the Ruby compiler, which fails on it.
            if !pending.is_empty() {
                out.push(Piece::Text(std::mem::take(&mut pending).into()));
            }
            out.push(Piece::Code(body_start, line));
            return out;
        };
        let body = &body_start[..end];
        if !pending.is_empty() {
            out.push(Piece::Text(std::mem::take(&mut pending).into()));
        }
        if let Some(e) = body.strip_prefix('=') {
            out.push(Piece::Expr(e, line));
        } else if body.starts_with('#') {
            // comment: no output
        } else {
            out.push(Piece::Code(body, line));
        }
        line += count_lines(body);
        rest = &body_start[end + 2..];
    }
    pending.push_str(rest);
    if !pending.is_empty() {
        out.push(Piece::Text(pending.into()));
    }
    out
}

fn count_lines(s: &str) -> u32 {
    u32::try_from(s.bytes().filter(|b| *b == b'\n').count()).unwrap_or(u32::MAX)
}

enum Native {
    Done(String),
    NeedsRuby { line: u32, expr: String },
}

fn render_native(
    pieces: &[Piece<'_>],
    file: &Path,
    env: &ErbEnv<'_>,
) -> Result<Native, ConfigError> {
    let mut out = String::new();
    for p in pieces {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::Code(code, line) => {
                return Ok(Native::NeedsRuby {
                    line: *line,
                    expr: format!("<%{code}%>"),
                });
            }
            Piece::Expr(expr, line) => match eval(expr, env.env) {
                Ok(v) => out.push_str(&v.to_s()),
                Err(EvalError::Unsupported) => {
                    return Ok(Native::NeedsRuby {
                        line: *line,
                        expr: expr.trim().to_owned(),
                    });
                }
                Err(EvalError::Raise(message)) => {
                    return Err(ConfigError::Erb {
                        file: file.to_path_buf(),
                        line: Some(*line),
                        message,
                    });
                }
            },
        }
    }
    Ok(Native::Done(out))
}

/// A Ruby value the native evaluator produces.
#[derive(Debug, Clone, PartialEq)]
enum RVal {
    Nil,
    Bool(bool),
    Str(String),
    Int(i64),
}

impl RVal {
    fn truthy(&self) -> bool {
        !matches!(self, RVal::Nil | RVal::Bool(false))
    }

    fn to_s(&self) -> String {
        match self {
            RVal::Nil => String::new(),
            RVal::Bool(b) => b.to_string(),
            RVal::Str(s) => s.clone(),
            RVal::Int(i) => i.to_string(),
        }
    }
}

#[derive(Debug, PartialEq)]
enum EvalError {
    /// Not a form evaluated natively: hand the file to Ruby.
    Unsupported,
    /// Ruby would raise this (e.g. `ENV.fetch` of a missing key without default).
    Raise(String),
}

/// Evaluates the supported subset of Ruby expressions.
fn eval(expr: &str, env: &BTreeMap<String, String>) -> Result<RVal, EvalError> {
    let mut p = ExprParser { s: expr, i: 0, env };
    let v = p.or_expr()?;
    p.ws();
    if p.i != p.s.len() {
        return Err(EvalError::Unsupported);
    }
    Ok(v)
}

struct ExprParser<'a> {
    s: &'a str,
    i: usize,
    env: &'a BTreeMap<String, String>,
}

impl ExprParser<'_> {
    fn ws(&mut self) {
        while self.s[self.i..].starts_with([' ', '\t', '\n', '\r']) {
            self.i += 1;
        }
    }

    fn eat(&mut self, tok: &str) -> bool {
        self.ws();
        if self.s[self.i..].starts_with(tok) {
            self.i += tok.len();
            true
        } else {
            false
        }
    }

    fn or_expr(&mut self) -> Result<RVal, EvalError> {
        let mut v = self.primary()?;
        while self.eat("||") {
            let rhs = self.primary()?;
            if !v.truthy() {
                v = rhs;
            }
        }
        Ok(v)
    }

    fn primary(&mut self) -> Result<RVal, EvalError> {
        self.ws();
        let rest = &self.s[self.i..];
        if rest.starts_with('\'') || rest.starts_with('"') {
            return self.string().map(RVal::Str);
        }
        if self.eat("(") {
            let v = self.or_expr()?;
            if !self.eat(")") {
                return Err(EvalError::Unsupported);
            }
            return Ok(v);
        }
        let ident: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        match ident.as_str() {
            "nil" => {
                self.i += 3;
                Ok(RVal::Nil)
            }
            "true" => {
                self.i += 4;
                Ok(RVal::Bool(true))
            }
            "false" => {
                self.i += 5;
                Ok(RVal::Bool(false))
            }
            "ENV" => {
                self.i += 3;
                if self.eat("[") {
                    let key = self.string()?;
                    if !self.eat("]") {
                        return Err(EvalError::Unsupported);
                    }
                    Ok(self.env.get(&key).cloned().map_or(RVal::Nil, RVal::Str))
                } else if self.eat(".fetch(") {
                    let key = self.string()?;
                    let default = if self.eat(",") {
                        Some(self.or_expr()?)
                    } else {
                        None
                    };
                    if !self.eat(")") {
                        return Err(EvalError::Unsupported);
                    }
                    match (self.env.get(&key), default) {
                        (Some(v), _) => Ok(RVal::Str(v.clone())),
                        (None, Some(d)) => Ok(d),
                        (None, None) => Err(EvalError::Raise(format!(
                            "KeyError: key not found: {key:?}"
                        ))),
                    }
                } else {
                    Err(EvalError::Unsupported)
                }
            }
            s if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                let n = s.parse().map_err(|_| EvalError::Unsupported)?;
                self.i += s.len();
                Ok(RVal::Int(n))
            }
            _ => Err(EvalError::Unsupported),
        }
    }

    /// A single- or double-quoted literal without interpolation.
    fn string(&mut self) -> Result<String, EvalError> {
        self.ws();
        let rest = &self.s[self.i..];
        let quote = rest.chars().next().ok_or(EvalError::Unsupported)?;
        if quote != '\'' && quote != '"' {
            return Err(EvalError::Unsupported);
        }
        let mut out = String::new();
        let mut chars = rest[1..].char_indices();
        while let Some((j, c)) = chars.next() {
            match c {
                c if c == quote => {
                    self.i += 1 + j + 1;
                    return Ok(out);
                }
                '\\' => {
                    let (_, n) = chars.next().ok_or(EvalError::Unsupported)?;
                    match (quote, n) {
                        ('\'', '\\' | '\'') => out.push(n),
                        ('\'', other) => {
                            out.push('\\');
                            out.push(other);
                        }
                        ('"', '\\' | '"') => out.push(n),
                        ('"', 'n') => out.push('\n'),
                        ('"', 't') => out.push('\t'),
                        _ => return Err(EvalError::Unsupported),
                    }
                }
                '#' if quote == '"' && rest[1 + j..].starts_with("#{") => {
                    return Err(EvalError::Unsupported);
                }
                c => out.push(c),
            }
        }
        Err(EvalError::Unsupported)
    }
}

/// `ruby` on the `PATH` of `env` (the environment the loader was given; no `PATH`, no Ruby).
pub(crate) fn find_ruby(env: &BTreeMap<String, String>) -> Option<PathBuf> {
    let path = env.get("PATH")?;
    std::env::split_paths(path)
        .map(|d| d.join("ruby"))
        .find(|p| p.is_file())
}

/// The Ruby side: read the template from stdin, evaluate it as test-kitchen does, write the
/// result to stdout; on failure write a marker line and exit 3. Ruby's (and its children's)
/// stderr goes to ours, as with test-kitchen.
const RUBY_SCRIPT: &str = r#"
require "erb"
src = STDIN.read
begin
  tpl = ERB.new(src)
  tpl.filename = ARGV[0]
  STDOUT.write(tpl.result)
rescue Exception => e
  loc = (e.backtrace_locations || []).find { |l| l.path == ARGV[0] }
  STDOUT.write("\0KITCHEN_DRIVER_ERB_ERROR #{loc ? loc.lineno : 0} #{e.class}: #{e.message}")
  exit 3
end
"#;

fn run_ruby(
    ruby: &Path,
    text: &str,
    file: &Path,
    env: &ErbEnv<'_>,
    disable_gems: bool,
) -> Result<String, ConfigError> {
    let erb_err = |line: Option<u32>, message: String| ConfigError::Erb {
        file: file.to_path_buf(),
        line,
        message,
    };
    tracing::debug!(file = %file.display(), ruby = %ruby.display(), "evaluating ERB with Ruby");
    let mut cmd = Command::new(ruby);
    if disable_gems {
        cmd.arg("--disable-gems");
    }
    let mut child = cmd
        .arg("-E")
        .arg("UTF-8:UTF-8")
        .arg("-e")
        .arg(RUBY_SCRIPT)
        .arg(file)
        .current_dir(env.cwd)
        .env_clear()
        .envs(env.env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| erb_err(None, format!("cannot run {}: {e}", ruby.display())))?;
    let stdin = child.stdin.take();
    let text_owned = text.to_owned();
    // Write on a thread so a large template cannot deadlock against a full stdout pipe.
    let writer = std::thread::spawn(move || {
        if let Some(mut stdin) = stdin {
            let _ = stdin.write_all(text_owned.as_bytes());
        }
    });
    let out = child
        .wait_with_output()
        .map_err(|e| erb_err(None, format!("waiting for ruby: {e}")))?;
    let _ = writer.join();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        return Ok(stdout);
    }
    if let Some((_, msg)) = stdout.split_once("\0KITCHEN_DRIVER_ERB_ERROR ") {
        let (line, msg) = msg.split_once(' ').unwrap_or(("0", msg));
        let line = line.parse().ok().filter(|l| *l > 0);
        return Err(erb_err(line, msg.to_owned()));
    }
    Err(erb_err(None, format!("ruby exited with {}", out.status)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn native_forms() {
        let e = env(&[("A", "a"), ("EMPTY", "")]);
        let ev = |s: &str| eval(s, &e).map(|v| v.to_s());
        assert_eq!(ev(" ENV['A'] "), Ok("a".into()));
        assert_eq!(ev("ENV[\"A\"]"), Ok("a".into()));
        assert_eq!(ev("ENV['B']"), Ok(String::new()));
        assert_eq!(ev("ENV['B'] || 'y'"), Ok("y".into()));
        assert_eq!(ev("ENV['EMPTY'] || 'y'"), Ok(String::new()));
        assert_eq!(ev("ENV['B'] || nil"), Ok(String::new()));
        assert_eq!(ev("ENV['B'] || true"), Ok("true".into()));
        assert_eq!(ev("ENV['B'] || 2"), Ok("2".into()));
        assert_eq!(ev("ENV.fetch('A', 'd')"), Ok("a".into()));
        assert_eq!(ev("ENV.fetch('B', 'd')"), Ok("d".into()));
        assert_eq!(ev("ENV.fetch(\"B\", ENV['A'])"), Ok("a".into()));
        assert_eq!(ev("'it''s'"), Err(EvalError::Unsupported));
        assert_eq!(ev("'a\\'b'"), Ok("a'b".into()));
        assert!(matches!(ev("ENV.fetch('B')"), Err(EvalError::Raise(_))));
        assert_eq!(ev("\"#{x}\""), Err(EvalError::Unsupported));
        assert_eq!(ev("`git rev-parse HEAD`"), Err(EvalError::Unsupported));
        assert_eq!(
            ev("ENV['A'] == 'a' ? 'x' : 'y'"),
            Err(EvalError::Unsupported)
        );
    }

    #[test]
    fn scan_tags_and_lines() {
        let p = scan("a <%= 1 %>\n<%# c %>b\n<%% x\n<% y %>");
        assert_eq!(
            p,
            vec![
                Piece::Text("a ".into()),
                Piece::Expr(" 1 ", 1),
                Piece::Text("\n".into()),
                Piece::Text("b\n<% x\n".into()),
                Piece::Code(" y ", 4),
            ]
        );
    }

    #[test]
    fn code_tags_without_ruby_name_file_line_and_expression() {
        let e = env(&[("PATH", "/nonexistent")]);
        let cwd = Path::new("/");
        let err = render(
            "a: 1\nb: <%= File.read('x') %>\n",
            Path::new("/p/kitchen.yml"),
            &ErbEnv { env: &e, cwd },
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.starts_with("/p/kitchen.yml:2:"), "{err}");
        assert!(err.contains("File.read('x')"), "{err}");
        assert!(err.contains("install Ruby"), "{err}");
    }

    /// The native evaluator against Ruby's own ERB on every expression of a generated set.
    #[test]
    fn native_evaluation_matches_ruby() {
        let path = std::env::var("PATH").unwrap_or_default();
        let e = env(&[("A", "a"), ("E", ""), ("PATH", &path)]);
        let Some(ruby) = find_ruby(&e) else {
            panic!("ruby is not installed: run scripts/setup-host");
        };
        let atoms = [
            "ENV['A']",
            "ENV[\"B\"]",
            "ENV['E']",
            "ENV.fetch('A', 'd')",
            "ENV.fetch(\"B\", 'd')",
            "ENV.fetch('B', ENV['A'])",
            "ENV.fetch('E')",
            "'lit'",
            "\"dq\\tx\"",
            "'it\\'s'",
            "nil",
            "true",
            "false",
            "42",
        ];
        let mut exprs: Vec<String> = atoms.iter().map(|a| (*a).to_owned()).collect();
        for a in &atoms {
            for b in &atoms {
                exprs.push(format!("{a} || {b}"));
                exprs.push(format!("({a} || nil) || {b}"));
            }
        }
        let template: String = exprs.iter().map(|x| format!("<%= {x} %>|\n")).collect();
        let cwd = std::env::temp_dir();
        let erb_env = ErbEnv { env: &e, cwd: &cwd };
        let file = Path::new("/kdtest/kitchen.yml");
        let pieces = scan(&template);
        let native = match render_native(&pieces, file, &erb_env) {
            Ok(Native::Done(s)) => s,
            Ok(Native::NeedsRuby { expr, .. }) => panic!("not native: {expr}"),
            Err(err) => panic!("{err}"),
        };
        let theirs = match run_ruby(&ruby, &template, file, &erb_env, true) {
            Ok(s) => s,
            Err(err) => panic!("{err}"),
        };
        for ((x, n), r) in exprs.iter().zip(native.lines()).zip(theirs.lines()) {
            assert_eq!(n, r, "`{x}`");
        }
        assert_eq!(native, theirs);
    }
}
