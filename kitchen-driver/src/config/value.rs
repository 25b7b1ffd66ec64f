//! The loader's value tree: what Ruby's Psych hands test-kitchen, with source positions.
//!
//! test-kitchen works on Ruby objects (String, Symbol, Integer, Float, true/false, nil, Array,
//! Hash with symbolized keys). [`Node`] models exactly those, so the munging rules can follow
//! test-kitchen's code, and every node remembers where it came from so errors can point at it.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// Where a node was written: file, 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pos {
    /// The file the node was read from (after ERB).
    pub file: Arc<Path>,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub col: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

/// A Ruby value as Psych's `safe_load` returns it (keys already symbolized to strings).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `nil`
    Null,
    /// `true`/`false`
    Bool(bool),
    /// An Integer that fits in 64 bits.
    Int(i64),
    /// An Integer that does not fit in 64 bits, as decimal digits.
    BigInt(String),
    /// A Float.
    Float(f64),
    /// A String.
    Str(String),
    /// A Symbol (`:name`), without the colon.
    Sym(String),
    /// An Array.
    Seq(Vec<Node>),
    /// A Hash, in insertion order, keys symbolized as test-kitchen does.
    Map(Map),
}

/// A value and where it was written (synthesized values have no position).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The value.
    pub v: Value,
    /// Where it was written.
    pub pos: Option<Pos>,
}

/// An insertion-ordered Hash with string keys (Ruby Hash semantics: re-assigning a key keeps
/// its place).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Map {
    entries: Vec<(String, Node)>,
}

impl Map {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value for `key`.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The mutable value for `key`.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        self.entries
            .iter_mut()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Ruby `hash[key] = value`: replaces in place or appends.
    pub fn insert(&mut self, key: impl Into<String>, value: Node) {
        let key = key.into();
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    /// Ruby `hash.delete(key)`.
    pub fn remove(&mut self, key: &str) -> Option<Node> {
        let idx = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(idx).1)
    }

    /// The entries in order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Node)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// The keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.entries.iter().map(|(k, _)| k)
    }

    /// Ruby `Hash#merge!`: later values win, new keys are appended.
    pub fn merge_from(&mut self, other: &Map) {
        for (k, v) in &other.entries {
            self.insert(k.clone(), v.clone());
        }
    }

    /// test-kitchen's `rmerge` (lib/vendor/hash_recursive_merge.rb): `self` deep-merged with
    /// `other`; where both hold a Hash the two are merged, otherwise `other`'s value wins.
    ///
    /// # Errors
    /// Ruby raises a TypeError when the old value is a Hash and the new one is not (`nil`, a
    /// string, a list): that is a [`MergeConflict`] naming the key path and the new value.
    pub fn rmerge(&self, other: &Map) -> Result<Map, MergeConflict> {
        let mut out = self.clone();
        out.rmerge_in(other)?;
        Ok(out)
    }

    /// In-place [`Map::rmerge`].
    ///
    /// # Errors
    /// As [`Map::rmerge`]; `self` is then partly merged.
    pub fn rmerge_in(&mut self, other: &Map) -> Result<(), MergeConflict> {
        for (k, newval) in &other.entries {
            match self.get_mut(k) {
                Some(Node {
                    v: Value::Map(old), ..
                }) => match &newval.v {
                    Value::Map(new) => old.rmerge_in(new).map_err(|mut c| {
                        c.path = format!("{k}.{}", c.path);
                        c
                    })?,
                    _ => {
                        return Err(MergeConflict {
                            path: k.clone(),
                            new: newval.clone(),
                        });
                    }
                },
                _ => self.insert(k.clone(), newval.clone()),
            }
        }
        Ok(())
    }
}

/// A deep merge test-kitchen cannot do: a mapping merged with something else.
#[derive(Debug, Clone)]
pub struct MergeConflict {
    /// The key path inside the merged maps, e.g. `nested.y`.
    pub path: String,
    /// The value that was to replace a mapping.
    pub new: Node,
}

impl FromIterator<(String, Node)> for Map {
    fn from_iter<T: IntoIterator<Item = (String, Node)>>(iter: T) -> Self {
        let mut m = Map::new();
        for (k, v) in iter {
            m.insert(k, v);
        }
        m
    }
}

impl Node {
    /// A node without a position.
    pub fn new(v: Value) -> Self {
        Self { v, pos: None }
    }

    /// A string node without a position.
    pub fn str(s: impl Into<String>) -> Self {
        Self::new(Value::Str(s.into()))
    }

    /// An empty Hash node.
    pub fn empty_map() -> Self {
        Self::new(Value::Map(Map::new()))
    }

    /// The Hash inside, if this is one.
    pub fn as_map(&self) -> Option<&Map> {
        match &self.v {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The string inside, if this is a String.
    pub fn as_str(&self) -> Option<&str> {
        match &self.v {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Whether this is `nil`.
    pub fn is_null(&self) -> bool {
        matches!(self.v, Value::Null)
    }

    /// Ruby's `to_s` (what `"#{value}"` interpolates).
    pub fn ruby_to_s(&self) -> String {
        match &self.v {
            Value::Null => String::new(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::BigInt(s) | Value::Str(s) | Value::Sym(s) => s.clone(),
            Value::Float(f) => ruby_float_to_s(*f),
            // Not reachable for names in practice; Ruby's Array/Hash#to_s is inspect.
            Value::Seq(_) | Value::Map(_) => self.to_json().to_string(),
        }
    }

    /// A short description of the kind of value, for error messages.
    pub fn kind(&self) -> &'static str {
        self.v.kind()
    }

    /// The value as JSON (Symbols become `":name"` strings as Ruby's YAML dump writes them;
    /// non-finite floats become `.inf`/`-.inf`/`.nan` strings).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.v {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::BigInt(s) => J::String(s.clone()),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(J::Number)
                .unwrap_or_else(|| J::String(ruby_float_yaml(*f).to_owned())),
            Value::Str(s) => J::String(s.clone()),
            Value::Sym(s) => J::String(format!(":{s}")),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(m) => J::Object(map_to_json(m)),
        }
    }
}

/// A [`Map`] as a JSON object, in order.
pub fn map_to_json(m: &Map) -> serde_json::Map<String, serde_json::Value> {
    m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()
}

impl Value {
    /// A short description of the kind of value, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::BigInt(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Str(_) => "a string",
            Value::Sym(_) => "a symbol",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

fn ruby_float_yaml(f: f64) -> &'static str {
    if f.is_nan() {
        ".nan"
    } else if f > 0.0 {
        ".inf"
    } else {
        "-.inf"
    }
}

/// Ruby's `Float#to_s`: shortest round-trip digits, fixed notation for decimal exponents in
/// `-4..16`, otherwise `d.ddde+XX`; always at least one fractional digit.
pub fn ruby_float_to_s(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // Rust's LowerExp prints the shortest round-trip digits: "1.2345e2", "-5e-7".
    let e = format!("{f:e}");
    let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let decpt = exp + 1; // position of the decimal point relative to the digits
    if (-3..=16).contains(&decpt) {
        let mut out = String::from(sign);
        if decpt <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-decpt) as usize));
            out.push_str(&digits);
        } else if decpt as usize >= digits.len() {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', decpt as usize - digits.len()));
            out.push_str(".0");
        } else {
            out.push_str(&digits[..decpt as usize]);
            out.push('.');
            out.push_str(&digits[decpt as usize..]);
        }
        out
    } else {
        let frac = if digits.len() > 1 { &digits[1..] } else { "0" };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{}.{frac}e{esign}{:02}", &digits[..1], exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pairs: &[(&str, Value)]) -> Map {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Node::new(v.clone())))
            .collect()
    }

    #[test]
    fn ruby_float_to_s_matches_ruby() {
        // Values checked against `ruby -e 'p x.to_s'`.
        let cases = [
            (12.04, "12.04"),
            (1.0, "1.0"),
            (12.1, "12.1"),
            (0.0001, "0.0001"),
            (0.00001, "1.0e-05"),
            (1e15, "1000000000000000.0"),
            (1e16, "1.0e+16"),
            (-2.5, "-2.5"),
            (123456.789, "123456.789"),
            (1.5e300, "1.5e+300"),
        ];
        for (f, want) in cases {
            assert_eq!(ruby_float_to_s(f), want, "{f}");
        }
    }

    #[test]
    fn rmerge_merges_hashes_and_replaces_the_rest() {
        let a = m(&[
            (
                "h",
                Value::Map(m(&[("x", Value::Int(1)), ("y", Value::Int(2))])),
            ),
            ("list", Value::Seq(vec![Node::str("a")])),
            ("keep", Value::Bool(true)),
        ]);
        let b = m(&[
            (
                "h",
                Value::Map(m(&[("y", Value::Int(3)), ("z", Value::Int(4))])),
            ),
            ("list", Value::Seq(vec![Node::str("b")])),
            ("new", Value::Null),
        ]);
        // a mapping cannot be replaced by a non-mapping: Ruby's TypeError
        let c = m(&[("h", Value::Map(m(&[("x", Value::Str("s".into()))])))]);
        let d = m(&[("h", Value::Map(m(&[("x", Value::Null)])))]);
        assert!(c.rmerge(&d).is_ok());
        let conflict = a.rmerge(&d).err().map(|c| c.path);
        assert_eq!(conflict.as_deref(), None);
        let e = m(&[("h", Value::Null)]);
        assert_eq!(a.rmerge(&e).err().map(|c| c.path).as_deref(), Some("h"));
        let f = m(&[("h", Value::Map(m(&[("x", Value::Map(m(&[])))])))]);
        assert_eq!(f.rmerge(&d).err().map(|c| c.path).as_deref(), Some("h.x"));
        let r = a.rmerge(&b).unwrap_or_default();
        let j = serde_json::Value::Object(map_to_json(&r));
        assert_eq!(
            j.to_string(),
            r#"{"h":{"x":1,"y":3,"z":4},"list":["b"],"keep":true,"new":null}"#
        );
    }

    #[test]
    fn insert_keeps_position() {
        let mut a = m(&[("a", Value::Int(1)), ("b", Value::Int(2))]);
        a.insert("a", Node::new(Value::Int(9)));
        assert_eq!(a.keys().cloned().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(a.get("a").map(|n| n.v.clone()), Some(Value::Int(9)));
    }
}
