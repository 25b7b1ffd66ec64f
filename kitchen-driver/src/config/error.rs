//! [`ConfigError`]: everything that can go wrong reading a kitchen project, with locations.

use std::path::PathBuf;

use super::value::Pos;

/// An error loading kitchen.yml files or selecting instances. Every variant says what
/// happened, where (file, line, column when known) and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The project file does not exist.
    #[error(
        "Kitchen YAML file {} does not exist. Create it, or point KITCHEN_YAML at the file to use.",
        path.display()
    )]
    NotFound {
        /// The path that was looked for.
        path: PathBuf,
    },

    /// Both the dotted and the un-dotted variant of a file exist.
    #[error("Both {} and {} found. Please use the un-dotted variant: {}.", first.display(), second.display(), first.display())]
    BothPresent {
        /// The un-dotted file (the one to keep).
        first: PathBuf,
        /// The dotted file.
        second: PathBuf,
    },

    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// ERB in a file could not be evaluated (Ruby's ERB failed, or a native expression failed).
    #[error("Error parsing ERB content in {}{} ({message})", file.display(), line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Erb {
        /// The file.
        file: PathBuf,
        /// The 1-based line, when known.
        line: Option<u32>,
        /// What Ruby (or the native evaluator) said.
        message: String,
    },

    /// An ERB expression needs Ruby, and Ruby is not installed.
    #[error(
        "{}:{line}: the ERB expression `{expr}` needs Ruby, which is not installed. \
         kitchen-driver evaluates ENV['X'], ENV.fetch('X', 'default'), `||` and string literals \
         itself; for anything else install Ruby (e.g. `apt-get install ruby`) so the file is run \
         through Ruby's own ERB as test-kitchen does.",
        file.display()
    )]
    RubyMissing {
        /// The file.
        file: PathBuf,
        /// The 1-based line of the expression.
        line: u32,
        /// The expression as written.
        expr: String,
    },

    /// YAML syntax error.
    #[error("{}:{line}:{col}: YAML syntax error: {message}\n{snippet}", file.display())]
    Yaml {
        /// The file (after ERB).
        file: PathBuf,
        /// 1-based line.
        line: u32,
        /// 1-based column.
        col: u32,
        /// What the parser said.
        message: String,
        /// The offending line with a caret under the column.
        snippet: String,
    },

    /// A value has the wrong type (or is otherwise unusable) for test-kitchen.
    #[error("{}{path}: expected {expected}, found {found}", at.as_ref().map(|p| format!("{p}: ")).unwrap_or_default())]
    Type {
        /// Where the value was written, when known.
        at: Option<Pos>,
        /// The key path, e.g. `suites[2].includes[0]`.
        path: String,
        /// What test-kitchen needs there.
        expected: String,
        /// What was found.
        found: String,
    },

    /// A `/regex/` filter or an instance pattern is not a valid regular expression here.
    #[error("{}{context}: invalid regular expression `{pattern}`: {message}", at.as_ref().map(|p| format!("{p}: ")).unwrap_or_default())]
    Regex {
        /// Where it was written, when it comes from a file.
        at: Option<Pos>,
        /// Where it is used (key path or "instance selection").
        context: String,
        /// The pattern.
        pattern: String,
        /// The regex engine's message.
        message: String,
    },

    /// Two instances would get one container name on their runtime (see
    /// [`crate::driver::naming::runtime_name`]): the second create would remove the first
    /// one's container.
    #[error("{}{message}", at.as_ref().map(|p| format!("{p}: ")).unwrap_or_default())]
    NameCollision {
        /// Where the second instance's differing name (platform or suite) was written.
        at: Option<Pos>,
        /// Both instances, where the first was written, the name and what to do.
        message: String,
    },

    /// No instance matched the selection (test-kitchen exits 1).
    #[error("No instances for regex `{pattern}', try running `kitchen-driver list'")]
    NoMatch {
        /// The pattern as given.
        pattern: String,
    },

    /// `all` was asked for and the project defines no instance.
    #[error("No instances defined")]
    NoInstances,
}

impl ConfigError {
    /// A wrong-type error for `node` at `path`.
    pub(crate) fn ty(
        node: &super::value::Node,
        path: impl Into<String>,
        expected: impl Into<String>,
    ) -> Self {
        ConfigError::Type {
            at: node.pos.clone(),
            path: path.into(),
            expected: expected.into(),
            found: describe(node),
        }
    }
}

impl ConfigError {
    /// The error for a deep merge test-kitchen cannot do, at `ctx` (a key path prefix).
    pub(crate) fn merge(c: super::value::MergeConflict, ctx: &str) -> Self {
        ConfigError::Type {
            at: c.new.pos.clone(),
            path: format!("{ctx}{}", c.path),
            expected: "a mapping: a mapping given earlier is merged with this value, and \
                       test-kitchen's deep merge fails (TypeError) on anything else"
                .into(),
            found: describe(&c.new),
        }
    }
}

/// `a string "x"`, `an integer 3`, `a mapping` ...
pub(crate) fn describe(node: &super::value::Node) -> String {
    use super::value::Value;
    match &node.v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("a boolean {b}"),
        Value::Int(_) | Value::BigInt(_) | Value::Float(_) => {
            format!("{} {}", node.kind(), node.ruby_to_s())
        }
        Value::Str(s) => format!("a string {s:?}"),
        Value::Sym(s) => format!("a symbol :{s}"),
        Value::Seq(_) | Value::Map(_) => node.kind().into(),
    }
}
