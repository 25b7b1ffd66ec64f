//! YAML as test-kitchen reads it: `YAML.safe_load(str, permitted_classes: [Symbol],
//! aliases: true)` under Ruby's Psych.
//!
//! The YAML syntax is parsed by the event parser serde-saphyr is built on
//! (`serde_saphyr::granit_parser`); the values are built here so that plain scalars resolve as
//! Psych resolves them (YAML 1.1: `yes`/`on` booleans, `0755` octal, `1_000`, `1:30`
//! sexagesimal, `:symbol`), `<<` merge keys behave as in Psych (a merge overrides keys
//! written before it), duplicate keys keep the last value, and dates (which `safe_load`
//! rejects) are errors. Only the first document is read, as `safe_load` does.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use serde_saphyr::granit_parser::{
    Event, Options, Parser, ScalarStyle, ScanError, Span, StructureStyle, Tag,
};

use super::error::ConfigError;
use super::value::{Map, Node, Pos, Value};

/// Nesting deeper than this is refused (it would only serve to exhaust the stack).
const MAX_DEPTH: usize = 200;
/// Node budget including alias expansion (a billion-laughs file stops here).
const MAX_NODES: usize = 2_000_000;

/// Parses the first YAML document of `text`. `Ok(None)` for an empty stream or a document
/// that is `null`/`false` (test-kitchen then uses `{}`).
///
/// # Errors
/// [`ConfigError::Yaml`] for syntax errors, [`ConfigError::Type`] for values Psych's
/// `safe_load` refuses or test-kitchen cannot use (dates, non-string keys).
pub fn parse(text: &str, file: &Arc<Path>) -> Result<Option<Node>, ConfigError> {
    let mut opts = Options::default();
    opts.emit_comments = false;
    let mut b = Builder {
        parser: Parser::new_from_str_with_options(text, opts),
        text,
        file: file.clone(),
        anchors: HashMap::new(),
        nodes: 0,
        flow: 0,
    };
    loop {
        let Some((ev, span)) = b.next()? else {
            return Ok(None);
        };
        match ev {
            Event::StreamStart | Event::DocumentStart(..) => {}
            Event::StreamEnd | Event::DocumentEnd => return Ok(None),
            ev => {
                let node = b.node(ev, span, 0)?;
                return Ok(match node.v {
                    Value::Null | Value::Bool(false) => None,
                    _ => Some(node),
                });
            }
        }
    }
}

struct Builder<'a> {
    parser: Parser<'a, serde_saphyr::granit_parser::StrInput<'a>>,
    text: &'a str,
    file: Arc<Path>,
    anchors: HashMap<usize, Node>,
    nodes: usize,
    /// How many flow collections (`[...]`, `{...}`) enclose the current node.
    flow: usize,
}

impl<'a> Builder<'a> {
    fn next(&mut self) -> Result<Option<(Event<'a>, Span)>, ConfigError> {
        match self.parser.next_event() {
            None => Ok(None),
            Some(Ok(x)) => Ok(Some(x)),
            Some(Err(e)) => Err(self.syntax(&e)),
        }
    }

    fn syntax(&self, e: &ScanError) -> ConfigError {
        let m = e.marker();
        yaml_error(
            &self.file,
            self.text,
            m.line(),
            m.col() + 1,
            e.info().trim().to_owned(),
        )
    }

    fn pos(&self, span: &Span) -> Pos {
        Pos {
            file: self.file.clone(),
            line: u32::try_from(span.start.line()).unwrap_or(u32::MAX),
            col: u32::try_from(span.start.col() + 1).unwrap_or(u32::MAX),
        }
    }

    fn count(&mut self, n: usize, pos: &Pos) -> Result<(), ConfigError> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES {
            return Err(ConfigError::Type {
                at: Some(pos.clone()),
                path: "(document)".into(),
                expected: format!("at most {MAX_NODES} values after expanding aliases"),
                found: "more (an alias bomb?)".into(),
            });
        }
        Ok(())
    }

    fn next_required(&mut self) -> Result<(Event<'a>, Span), ConfigError> {
        match self.next()? {
            Some(x) => Ok(x),
            None => Err(yaml_error(
                &self.file,
                self.text,
                self.text.lines().count().max(1),
                1,
                "unexpected end of input".into(),
            )),
        }
    }

    fn node(&mut self, ev: Event<'a>, span: Span, depth: usize) -> Result<Node, ConfigError> {
        let pos = self.pos(&span);
        if depth > MAX_DEPTH {
            return Err(ConfigError::Type {
                at: Some(pos),
                path: "(document)".into(),
                expected: format!("nesting at most {MAX_DEPTH} levels deep"),
                found: "deeper nesting".into(),
            });
        }
        self.count(1, &pos)?;
        let (node, anchor) = match ev {
            Event::Scalar(text, style, anchor, tag) => {
                if self.flow > 0 && style == ScalarStyle::Plain && text.starts_with(':') {
                    // libyaml (Psych) always reads ':' inside a flow collection as the value
                    // indicator, so `[:sym]` or `{k: :v}` are syntax errors for test-kitchen.
                    return Err(yaml_error(
                        &self.file,
                        self.text,
                        span.start.line(),
                        span.start.col() + 1,
                        "a plain value starting with ':' inside [...] or {...} is a syntax error \
                         for Ruby's YAML parser (test-kitchen's); quote it"
                            .into(),
                    ));
                }
                (self.scalar(&text, style, tag.as_deref(), &pos)?, anchor)
            }
            Event::SequenceStart(style, anchor, tag) => {
                self.check_collection_tag(tag.as_deref(), &pos)?;
                let flow = usize::from(style == StructureStyle::Flow);
                self.flow += flow;
                let mut items = Vec::new();
                loop {
                    let (ev, span) = self.next_required()?;
                    match ev {
                        Event::SequenceEnd => break,
                        ev => items.push(self.node(ev, span, depth + 1)?),
                    }
                }
                self.flow -= flow;
                (
                    Node {
                        v: Value::Seq(items),
                        pos: Some(pos),
                    },
                    anchor,
                )
            }
            Event::MappingStart(style, anchor, tag) => {
                self.check_collection_tag(tag.as_deref(), &pos)?;
                let flow = usize::from(style == StructureStyle::Flow);
                self.flow += flow;
                let node = self.mapping(pos, depth)?;
                self.flow -= flow;
                (node, anchor)
            }
            Event::Alias(id) => {
                let Some(target) = self.anchors.get(&id).cloned() else {
                    return Err(yaml_error(
                        &self.file,
                        self.text,
                        span.start.line(),
                        span.start.col() + 1,
                        "alias to an unknown or not yet complete anchor".into(),
                    ));
                };
                self.count(count_nodes(&target), &pos)?;
                return Ok(target);
            }
            other => {
                return Err(yaml_error(
                    &self.file,
                    self.text,
                    span.start.line(),
                    span.start.col() + 1,
                    format!("unexpected YAML event {other:?}"),
                ));
            }
        };
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        Ok(node)
    }

    /// Ruby object tags on collections (`!ruby/object:Foo`, `!ruby/hash:Foo`, `!!set`) are
    /// refused by `safe_load`; other tags are ignored, as Psych does.
    fn check_collection_tag(&self, tag: Option<&Tag>, pos: &Pos) -> Result<(), ConfigError> {
        let Some(t) = tag else { return Ok(()) };
        let refused = (t.handle() == "!"
            && (t.suffix().starts_with("ruby/")
                || t.suffix().starts_with("map:")
                || t.suffix() == "set"))
            || is_core(t, "set");
        if refused {
            return Err(ConfigError::Type {
                at: Some(pos.clone()),
                path: format!("!{}", t.suffix()),
                expected: "plain data (YAML.safe_load refuses Ruby object tags)".into(),
                found: format!("a collection tagged !{}", t.suffix()),
            });
        }
        Ok(())
    }

    fn mapping(&mut self, pos: Pos, depth: usize) -> Result<Node, ConfigError> {
        let mut map = Map::new();
        loop {
            let (ev, kspan) = self.next_required()?;
            if matches!(ev, Event::MappingEnd) {
                break;
            }
            let key_is_str_tagged =
                matches!(&ev, Event::Scalar(_, _, _, Some(t)) if is_core(t, "str"));
            let key = self.node(ev, kspan, depth + 1)?;
            let (vev, vspan) = self.next_required()?;
            let value_is_alias_or_map = matches!(vev, Event::Alias(_) | Event::MappingStart(..));
            let value_is_seq = matches!(vev, Event::SequenceStart(..));
            let value = self.node(vev, vspan, depth + 1)?;
            if key.as_str() == Some("<<") && !key_is_str_tagged {
                // Psych's revive_hash: merge! a Hash (or, for a list, the Hashes with earlier
                // ones winning); anything else is stored under the "<<" key.
                match &value.v {
                    Value::Map(m) if value_is_alias_or_map => {
                        map.merge_from(m);
                        continue;
                    }
                    Value::Seq(items)
                        if value_is_seq && items.iter().all(|i| i.as_map().is_some()) =>
                    {
                        let mut h = Map::new();
                        for item in items.iter().rev() {
                            if let Some(m) = item.as_map() {
                                h.merge_from(m);
                            }
                        }
                        map.merge_from(&h);
                        continue;
                    }
                    _ => {}
                }
            }
            let key = match key.v {
                Value::Str(s) | Value::Sym(s) => s,
                _ => {
                    return Err(ConfigError::Type {
                        found: super::error::describe(&key),
                        at: key.pos,
                        path: "mapping key".into(),
                        expected: "a string key (test-kitchen turns every key into a Ruby \
                                   symbol and fails on other keys; quote it)"
                            .into(),
                    });
                }
            };
            map.insert(key, value);
        }
        Ok(Node {
            v: Value::Map(map),
            pos: Some(pos),
        })
    }

    fn scalar(
        &self,
        text: &str,
        style: ScalarStyle,
        tag: Option<&Tag>,
        pos: &Pos,
    ) -> Result<Node, ConfigError> {
        // Psych's ToRuby#deserialize: an untagged quoted scalar is a String, an untagged plain
        // one is tokenized; an explicit tag decides otherwise, whatever the style.
        let v = match tag {
            None if style != ScalarStyle::Plain => Value::Str(text.to_owned()),
            None => tokenize(text, pos)?,
            Some(t) => {
                let local = |pred: &dyn Fn(&str) -> bool| t.handle() == "!" && pred(t.suffix());
                if is_core(t, "binary") || local(&|s| s == "binary") {
                    Value::Str(String::from_utf8_lossy(&base64_lenient(text)).into_owned())
                } else if is_core(t, "str")
                    || local(&|s| {
                        s == "str" || s.starts_with("str:") || s.starts_with("ruby/string")
                    })
                {
                    Value::Str(text.to_owned())
                } else if is_core(t, "float") || local(&|s| s == "float") {
                    match tokenize(text, pos)? {
                        Value::Int(i) => Value::Float(i as f64),
                        Value::BigInt(b) => Value::Float(b.parse().unwrap_or(f64::INFINITY)),
                        f @ Value::Float(_) => f,
                        _ => {
                            return Err(ConfigError::Type {
                                at: Some(pos.clone()),
                                path: format!("!!float {text}"),
                                expected: "a number (Ruby's Float() fails on this)".into(),
                                found: format!("{text:?}"),
                            });
                        }
                    }
                } else if local(&|s| s.starts_with("ruby/sym")) {
                    Value::Sym(text.to_owned())
                } else if local(&|s| s.starts_with("ruby/")) {
                    return Err(ConfigError::Type {
                        at: Some(pos.clone()),
                        path: format!("!{}", t.suffix()),
                        expected: "plain data (YAML.safe_load refuses Ruby object tags)".into(),
                        found: format!("a value tagged !{}", t.suffix()),
                    });
                } else {
                    tokenize(text, pos)?
                }
            }
        };
        Ok(Node {
            v,
            pos: Some(pos.clone()),
        })
    }
}

/// Ruby's `unpack('m')`: base64, ignoring characters outside the alphabet, stopping at `=`.
fn base64_lenient(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => continue,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

fn is_core(t: &Tag, suffix: &str) -> bool {
    t.is_yaml_core_schema_tag(suffix)
        || (t.handle() == "tag:yaml.org,2002:" && t.suffix() == suffix)
}

fn count_nodes(n: &Node) -> usize {
    match &n.v {
        Value::Seq(items) => 1 + items.iter().map(count_nodes).sum::<usize>(),
        Value::Map(m) => 1 + m.iter().map(|(_, v)| count_nodes(v)).sum::<usize>(),
        _ => 1,
    }
}

/// A syntax error with the offending line and a caret.
pub(crate) fn yaml_error(
    file: &Path,
    text: &str,
    line: usize,
    col: usize,
    message: String,
) -> ConfigError {
    let src = text.lines().nth(line.saturating_sub(1)).unwrap_or("");
    let caret_pad: String = src
        .chars()
        .take(col.saturating_sub(1))
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    let gutter = format!("{line} | ");
    let snippet = format!(
        "{gutter}{src}\n{}{caret_pad}^",
        " ".repeat(gutter.len().saturating_sub(2)) + "| "
    );
    ConfigError::Yaml {
        file: file.to_path_buf(),
        line: u32::try_from(line).unwrap_or(u32::MAX),
        col: u32::try_from(col).unwrap_or(u32::MAX),
        message,
        snippet,
    }
}

/// Psych's `ScalarScanner#tokenize` (Ruby 3.1, psych 4): how a plain scalar becomes a Ruby
/// object.
pub(crate) fn tokenize(s: &str, pos: &Pos) -> Result<Value, ConfigError> {
    if s.is_empty() {
        return Ok(Value::Null);
    }
    let first = s.chars().next().unwrap_or(' ');
    // "Check for a String type": /^[^\d.:-]?[[:alpha:]_\s!@#$%\^&*(){}<>|\/\\~;=]+/ or "\n".
    if looks_like_word(s) || s.contains('\n') {
        if s.chars().count() > 5 {
            return Ok(Value::Str(s.to_owned()));
        }
        let lower = s.to_ascii_lowercase();
        return Ok(if !"ytonf~".contains(first.to_ascii_lowercase()) {
            Value::Str(s.to_owned())
        } else if s == "~" || lower == "null" {
            Value::Null
        } else if matches!(lower.as_str(), "yes" | "true" | "on") {
            Value::Bool(true)
        } else if matches!(lower.as_str(), "no" | "false" | "off") {
            Value::Bool(false)
        } else {
            Value::Str(s.to_owned())
        });
    }
    if is_time(s) || is_date(s) {
        return Err(ConfigError::Type {
            at: Some(pos.clone()),
            path: format!("`{s}`"),
            expected: "a string (Ruby's YAML.safe_load, used by test-kitchen, refuses dates and \
                       times: quote the value)"
                .into(),
            found: "a date/time".into(),
        });
    }
    let lower = s.to_ascii_lowercase();
    if lower == ".inf" || lower == "+.inf" {
        return Ok(Value::Float(f64::INFINITY));
    }
    if lower == "-.inf" {
        return Ok(Value::Float(f64::NEG_INFINITY));
    }
    if lower == ".nan" {
        return Ok(Value::Float(f64::NAN));
    }
    if let Some(rest) = s.strip_prefix(':')
        && !rest.is_empty()
    {
        // /^:(["'])(.*)\1/ strips quotes.
        let inner = rest
            .strip_prefix('"')
            .and_then(|r| r.strip_suffix('"'))
            .or_else(|| rest.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')))
            .map(|r| r.strip_prefix(':').unwrap_or(r))
            .unwrap_or(rest);
        return Ok(Value::Sym(inner.to_owned()));
    }
    if let Some(v) = sexagesimal(s) {
        return Ok(v);
    }
    if is_float(s) {
        if matches!(s, "." | "+." | "-.") {
            return Ok(Value::Str(s.to_owned()));
        }
        let cleaned: String = s.chars().filter(|c| *c != ',' && *c != '_').collect();
        // Ruby's Float() needs a digit after the point: "1." / "1.e5" drop the point.
        let cleaned = cleaned.replace(".e", "e").replace(".E", "E");
        let cleaned = cleaned.strip_suffix('.').unwrap_or(&cleaned).to_owned();
        let cleaned = if cleaned.starts_with('.') || cleaned.starts_with("-.") {
            cleaned.replacen('.', "0.", 1)
        } else {
            cleaned
        };
        return Ok(cleaned
            .parse::<f64>()
            .map(Value::Float)
            .unwrap_or_else(|_| Value::Str(s.to_owned())));
    }
    if let Some(v) = integer(s) {
        return Ok(v);
    }
    if integer_shape_without_digits(s) {
        return Err(ConfigError::Type {
            at: Some(pos.clone()),
            path: format!("`{s}`"),
            expected: "a number with digits or a quoted string (Psych fails on this value)".into(),
            found: "a radix prefix without digits".into(),
        });
    }
    Ok(Value::Str(s.to_owned()))
}

fn looks_like_word(s: &str) -> bool {
    let is_word_char = |c: char| {
        c.is_alphabetic() || c == '_' || c.is_whitespace() || "!@#$%^&*(){}<>|/\\~;=".contains(c)
    };
    let mut chars = s.chars();
    let Some(c0) = chars.next() else { return false };
    if is_word_char(c0) {
        return true;
    }
    // optional first char that is not a digit, '.', ':' or '-'
    if !(c0.is_ascii_digit() || c0 == '.' || c0 == ':' || c0 == '-') {
        return chars.next().is_some_and(is_word_char);
    }
    false
}

fn digits(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_date(s: &str) -> bool {
    // /^\d{4}-(?:1[012]|0\d|\d)-(?:[12]\d|3[01]|0\d|\d)$/ : under safe_load the Date class
    // is refused before the date is even parsed, so an impossible date (2023-02-30) fails too.
    let parts: Vec<&str> = s.split('-').collect();
    if parts.len() != 3 || !digits(parts[0], 4, 4) {
        return false;
    }
    let (m, d) = (parts[1].as_bytes(), parts[2].as_bytes());
    let month_ok = matches!(m, [b'1', b'0'..=b'2'] | [b'0', b'0'..=b'9'] | [b'0'..=b'9']);
    let day_ok = matches!(
        d,
        [b'1' | b'2', b'0'..=b'9'] | [b'3', b'0' | b'1'] | [b'0', b'0'..=b'9'] | [b'0'..=b'9']
    );
    month_ok && day_ok
}

fn is_time(s: &str) -> bool {
    // /^-?\d{4}-\d{1,2}-\d{1,2}(?:[Tt]|\s+)\d{1,2}:\d\d:\d\d(?:\.\d*)?(?:\s*(?:Z|[-+]\d{1,2}:?(?:\d\d)?))?$/
    static RE: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(
            r"^-?\d{4}-\d{1,2}-\d{1,2}(?:[Tt]|\s+)\d{1,2}:\d\d:\d\d(?:\.\d*)?(?:\s*(?:Z|[-+]\d{1,2}:?(?:\d\d)?))?$",
        )
        .ok()
    })
    .as_ref()
    .is_some_and(|re| re.is_match(s))
}

fn is_float(s: &str) -> bool {
    // /^(?:[-+]?([0-9][0-9_,]*)?\.[0-9]*([eE][-+][0-9]+)?)$/
    let b = s.strip_prefix(['-', '+']).unwrap_or(s);
    let Some((int, rest)) = b.split_once('.') else {
        return false;
    };
    let int_ok = int.is_empty()
        || (int.as_bytes()[0].is_ascii_digit()
            && int
                .bytes()
                .all(|c| c.is_ascii_digit() || c == b'_' || c == b','));
    if !int_ok {
        return false;
    }
    let (frac, exp) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    if !frac.bytes().all(|c| c.is_ascii_digit()) {
        return false;
    }
    match exp {
        None => true,
        Some(e) => {
            let Some(d) = e.strip_prefix(['-', '+']) else {
                return false;
            };
            !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit())
        }
    }
}

fn sexagesimal(s: &str) -> Option<Value> {
    // /^[-+]?[0-9][0-9_]*(:[0-5]?[0-9]){1,2}$/ (integer) and the same with a fraction (float).
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let parts: Vec<&str> = body.split(':').collect();
    if !(2..=3).contains(&parts.len()) {
        return None;
    }
    let head = parts[0];
    if !head.as_bytes().first()?.is_ascii_digit()
        || !head.bytes().all(|c| c.is_ascii_digit() || c == b'_')
    {
        return None;
    }
    let last = parts[parts.len() - 1];
    let (last_int, frac) = match last.split_once('.') {
        Some((a, f)) => (a, Some(f)),
        None => (last, None),
    };
    let ok_sixty = |p: &str| {
        (1..=2).contains(&p.len())
            && p.bytes().all(|c| c.is_ascii_digit())
            && (p.len() == 1 || p.as_bytes()[0] <= b'5')
    };
    for p in &parts[1..parts.len() - 1] {
        if !ok_sixty(p) {
            return None;
        }
    }
    if !ok_sixty(last_int) {
        return None;
    }
    if let Some(f) = frac
        && !f.bytes().all(|c| c.is_ascii_digit() || c == b'_')
    {
        return None;
    }
    // Ruby: string.split(':').each_with_index { |n, e| i += n.to_i * 60 ** (e - 2).abs }
    // (to_f for the fractional form); "1:30" is 5400 in Psych, faithfully.
    let _ = (neg, body);
    let mut total_i: i128 = 0;
    let mut total_f: f64 = 0.0;
    for (e, p) in s.split(':').enumerate() {
        let mult = 60i128.pow((e as i32 - 2).unsigned_abs());
        let txt: String = p.chars().filter(|c| *c != '_').collect();
        let ival: i128 = txt
            .split('.')
            .next()
            .and_then(|x| x.trim_start_matches('+').parse().ok())
            .unwrap_or(0);
        total_i = total_i.saturating_add(ival.saturating_mul(mult));
        let fval: f64 = txt.trim_start_matches('+').parse().unwrap_or(ival as f64);
        total_f += fval * mult as f64;
    }
    Some(match frac {
        None => i64::try_from(total_i)
            .map(Value::Int)
            .unwrap_or_else(|_| Value::BigInt(total_i.to_string())),
        Some(_) => Value::Float(total_f),
    })
}

fn integer_shape_without_digits(s: &str) -> bool {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    ["0x", "0b"].iter().any(|p| {
        body.strip_prefix(p)
            .is_some_and(|r| !r.is_empty() && r.bytes().all(|c| c == b'_' || c == b','))
    })
}

fn integer(s: &str) -> Option<Value> {
    // INTEGER = /^(?:[-+]?0b[0-1_,]+ |[-+]?0[0-7_,]+ |[-+]?(?:0|[1-9](?:[0-9]|,[0-9]|_[0-9])*)
    //             |[-+]?0x[0-9a-fA-F_,]+)$/x ; then Integer(s.gsub(/[,_]/, ""))
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let clean = |t: &str| -> String { t.chars().filter(|c| *c != ',' && *c != '_').collect() };
    let (radix, digits_str) = if let Some(r) = body.strip_prefix("0b") {
        if r.is_empty() || !r.bytes().all(|c| matches!(c, b'0' | b'1' | b'_' | b',')) {
            return None;
        }
        (2, clean(r))
    } else if let Some(r) = body.strip_prefix("0x") {
        if r.is_empty()
            || !r
                .bytes()
                .all(|c| c.is_ascii_hexdigit() || c == b'_' || c == b',')
        {
            return None;
        }
        (16, clean(r))
    } else if body.len() > 1 && body.starts_with('0') {
        let r = &body[1..];
        if !r.bytes().all(|c| matches!(c, b'0'..=b'7' | b'_' | b',')) {
            return None;
        }
        (8, format!("0{}", clean(r)))
    } else if body == "0" {
        (10, "0".to_owned())
    } else {
        let b = body.as_bytes();
        if b.is_empty() || !matches!(b[0], b'1'..=b'9') {
            return None;
        }
        // (?:[0-9]|,[0-9]|_[0-9])*
        let mut i = 1;
        while i < b.len() {
            if b[i].is_ascii_digit() {
                i += 1;
            } else if (b[i] == b',' || b[i] == b'_') && b.get(i + 1).is_some_and(u8::is_ascii_digit)
            {
                i += 2;
            } else {
                return None;
            }
        }
        (10, clean(body))
    };
    if digits_str.is_empty() {
        // Ruby's Integer("0x") raises inside Psych; the caller reports it.
        return None;
    }
    match i128::from_str_radix(&digits_str, radix) {
        Ok(v) => {
            let v = if neg { -v } else { v };
            Some(
                i64::try_from(v)
                    .map(Value::Int)
                    .unwrap_or_else(|_| Value::BigInt(v.to_string())),
            )
        }
        Err(_) => Some(Value::BigInt(format!(
            "{}{}",
            if neg { "-" } else { "" },
            digits_str
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> Pos {
        Pos {
            file: Arc::from(Path::new("t.yml")),
            line: 1,
            col: 1,
        }
    }

    fn tok(s: &str) -> Value {
        match tokenize(s, &p()) {
            Ok(v) => v,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    #[test]
    fn psych_scalars() {
        use Value::*;
        assert_eq!(tok("yes"), Bool(true));
        assert_eq!(tok("On"), Bool(true));
        assert_eq!(tok("NO"), Bool(false));
        assert_eq!(tok("off"), Bool(false));
        assert_eq!(tok("y"), Str("y".into()));
        assert_eq!(tok("n"), Str("n".into()));
        assert_eq!(tok("~"), Null);
        assert_eq!(tok("Null"), Null);
        assert_eq!(tok(""), Null);
        assert_eq!(tok("0755"), Int(493));
        assert_eq!(tok("0x1F"), Int(31));
        assert_eq!(tok("0b101"), Int(5));
        assert_eq!(tok("1_000"), Int(1000));
        assert_eq!(tok("1,000"), Int(1000));
        assert_eq!(tok("-42"), Int(-42));
        assert_eq!(tok("08"), Str("08".into()));
        assert_eq!(tok("1:30"), Int(5400));
        assert_eq!(tok("-1:30"), Int(-1800));
        assert_eq!(tok("1:30.5"), Float(5430.0));
        assert_eq!(tok("0b"), Str("0b".into()));
        assert!(tokenize("0x_", &p()).is_err());
        assert_eq!(tok("1:00:00"), Int(3600));
        assert_eq!(tok("12.04"), Float(12.04));
        assert_eq!(tok("1."), Float(1.0));
        assert_eq!(tok(".5"), Float(0.5));
        assert_eq!(tok("1e3"), Str("1e3".into()));
        assert_eq!(tok("1.0e+3"), Float(1000.0));
        assert_eq!(tok(":sym"), Sym("sym".into()));
        assert_eq!(tok("ubuntu-22.04"), Str("ubuntu-22.04".into()));
        assert_eq!(tok("22.04"), Float(22.04));
        assert_eq!(tok("2016"), Int(2016));
        assert_eq!(tok("true_value"), Str("true_value".into()));
        assert!(tokenize("2024-01-31", &p()).is_err());
        assert!(tokenize("2023-02-30", &p()).is_err());
        assert_eq!(tok("2023-13-01"), Str("2023-13-01".into()));
        assert!(tokenize("2001-12-14t21:59:43.10-05:00", &p()).is_err());
    }

    fn load(s: &str) -> serde_json::Value {
        let f: Arc<Path> = Arc::from(Path::new("t.yml"));
        match parse(s, &f) {
            Ok(Some(n)) => n.to_json(),
            Ok(None) => serde_json::Value::Null,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn merge_keys_follow_psych() {
        let j = load(
            "base: &b {a: 1, b: 2}\nx:\n  a: 0\n  <<: *b\n  c: 3\ny:\n  <<: [{a: 1}, {a: 2, z: 9}]\n",
        );
        assert_eq!(j["x"].to_string(), r#"{"a":1,"b":2,"c":3}"#);
        assert_eq!(j["y"].to_string(), r#"{"a":1,"z":9}"#);
    }

    #[test]
    fn quoted_scalars_stay_strings_and_duplicates_keep_last() {
        let j = load("a: 'yes'\nb: \"0755\"\nc: |\n  1\nd: 1\nd: 2\n");
        assert_eq!(j.to_string(), r#"{"a":"yes","b":"0755","c":"1\n","d":2}"#);
    }

    #[test]
    fn first_document_only_and_empty() {
        assert_eq!(load("a: 1\n---\nb: [\n").to_string(), r#"{"a":1}"#);
        assert_eq!(load("# nothing\n"), serde_json::Value::Null);
        assert_eq!(load("---\n"), serde_json::Value::Null);
    }

    #[test]
    fn syntax_error_has_location_and_snippet() {
        let f: Arc<Path> = Arc::from(Path::new("k.yml"));
        let err = parse("a: 1\nb: [1, 2\nc: 3\n", &f)
            .err()
            .map(|e| e.to_string());
        let err = err.unwrap_or_default();
        assert!(err.starts_with("k.yml:"), "{err}");
        assert!(err.contains('^'), "{err}");
    }

    #[test]
    fn collection_tags_as_psych() {
        let f: Arc<Path> = Arc::from(Path::new("k.yml"));
        assert_eq!(
            load("a: !foo {b: 1}\nc: !bar [1]\n").to_string(),
            r#"{"a":{"b":1},"c":[1]}"#
        );
        for bad in [
            "a: !ruby/object:Foo {b: 1}\n",
            "a: !!set {b: }\n",
            "a: !ruby/array:Foo [1]\n",
        ] {
            assert!(parse(bad, &f).is_err(), "{bad}");
        }
    }

    #[test]
    fn non_string_keys_are_errors() {
        let f: Arc<Path> = Arc::from(Path::new("k.yml"));
        let err = parse("a:\n  8080: 80\n", &f).err().map(|e| e.to_string());
        assert!(
            err.as_deref().unwrap_or("").contains("k.yml:2:3"),
            "{err:?}"
        );
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut s = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            s.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n",
                p = i - 1
            ));
        }
        let f: Arc<Path> = Arc::from(Path::new("k.yml"));
        assert!(parse(&s, &f).is_err());
    }
}

/// Differential test against the real Psych: every plain scalar spelling over a character set
/// that reaches each branch of `ScalarScanner#tokenize` must resolve as Ruby resolves it.
#[cfg(test)]
mod psych_differential {
    use super::*;
    use std::io::Write as _;
    use std::process::{Command, Stdio};

    fn candidates() -> Vec<String> {
        let chars: Vec<char> = "0179._:-+xbeEoyYnNtfl~,".chars().collect();
        let mut out: Vec<String> = Vec::new();
        for a in &chars {
            out.push(a.to_string());
            for b in &chars {
                out.push(format!("{a}{b}"));
                for c in &chars {
                    out.push(format!("{a}{b}{c}"));
                }
            }
        }
        // Longer spellings from a fixed pseudo-random sequence (reproducible).
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..4000 {
            let len = 4 + (x % 6) as usize;
            let mut s = String::new();
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                s.push(chars[(x % chars.len() as u64) as usize]);
            }
            out.push(s);
        }
        out.extend(
            [
                "yes",
                "Yes",
                "YES",
                "no",
                "On",
                "off",
                "true",
                "False",
                "null",
                "Null",
                "NULL",
                "~",
                "y",
                "n",
                "1_000",
                "1,000",
                "0755",
                "0o17",
                "0x1F",
                "0b1010",
                "12.04",
                "1e3",
                "1.0e+3",
                "1.5E-2",
                ".inf",
                "-.Inf",
                "+.INF",
                ".NaN",
                ":sym",
                ":\"q\"",
                "1:30",
                "-1:30:00",
                "1:30.5",
                "190:20:30",
                "2024-01-31",
                "2023-02-30",
                "2001-12-14t21:59:43.10-05:00",
                "2001-12-14 21:59:43.10 -5",
                "ubuntu-22.04",
                "win",
                "windows",
                "0",
                "-0",
                "+0",
                "00",
                "08",
                "0.",
                "-.5",
                "1__0",
                "1_",
                "_1",
                "0x",
                "0b",
                "1e",
                "on_off",
                "yes!",
                "nULL",
                "tRUE",
                "1.2.3",
            ]
            .iter()
            .map(|s| (*s).to_owned()),
        );
        // Only spellings that are a plain scalar as a sequence item on their own line.
        out.retain(|s| {
            !s.starts_with([
                '-', ':', '?', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '%', '@',
                '`', '\'', '"',
            ]) || (s.len() > 1 && s.starts_with(['-', ':', '?']) && !s[1..].starts_with([' ']))
        });
        out.retain(|s| {
            !s.ends_with(':') && !s.contains(": ") && !s.contains(" #") && s != "---" && s != "..."
        });
        for tag in [
            "!!str ",
            "!!int ",
            "!!float ",
            "!!bool ",
            "!!null ",
            "! ",
            "!foo ",
            "!str ",
            "!ruby/sym ",
            "!!binary ",
        ] {
            for v in [
                "0x10", "'0x10'", "\"yes\"", "yes", "1.5", "3", "aGVsbG8=", "''", "~", ":s",
            ] {
                out.push(format!("{tag}{v}"));
            }
        }
        out.sort();
        out.dedup();
        out
    }

    fn ours(s: &str) -> String {
        let f: Arc<Path> = Arc::from(Path::new("t.yml"));
        match parse(&format!("- {s}\n"), &f) {
            Err(ConfigError::Yaml { .. }) => "syntax".into(),
            Err(_) => "error".into(),
            Ok(Some(Node {
                v: Value::Seq(items),
                ..
            })) if items.len() == 1 => {
                let n = &items[0];
                let class = match &n.v {
                    Value::Null => "NilClass",
                    Value::Bool(true) => "TrueClass",
                    Value::Bool(false) => "FalseClass",
                    Value::Int(_) | Value::BigInt(_) => "Integer",
                    Value::Float(_) => "Float",
                    Value::Str(_) => "String",
                    Value::Sym(_) => "Symbol",
                    Value::Seq(_) => "Array",
                    Value::Map(_) => "Hash",
                };
                format!("{class} {}", n.ruby_to_s())
            }
            Ok(other) => format!("other {other:?}"),
        }
    }

    #[test]
    fn plain_scalars_resolve_as_psych_does() {
        let Some(ruby) = std::env::var("PATH").ok().and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("ruby"))
                .find(|r| r.is_file())
        }) else {
            panic!("ruby is not installed: run scripts/setup-host");
        };
        let cands = candidates();
        let script = r##"
            require "yaml"
            STDIN.read.split("\n").each do |s|
              r = begin
                v = YAML.safe_load("- " + s + "\n", permitted_classes: [Symbol], aliases: true)
                if v.is_a?(Array) && v.size == 1
                  x = v[0]
                  x.is_a?(Float) && x.nan? ? "Float NaN" : "#{x.class} #{x}"
                else
                  "other #{v.inspect}"
                end
              rescue Psych::SyntaxError
                "syntax"
              rescue Exception
                "error"
              end
              puts r
            end
        "##;
        let mut child = Command::new(ruby)
            .args(["--disable-gems", "-e", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("ruby: {e}"));
        let input = cands.join("\n");
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(input.as_bytes())
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
        let theirs = String::from_utf8_lossy(&out.stdout);
        let theirs: Vec<&str> = theirs.lines().collect();
        assert_eq!(theirs.len(), cands.len());
        let mut diffs = Vec::new();
        for (s, t) in cands.iter().zip(theirs) {
            let o = ours(s);
            // Psych's syntax errors vs ours are a parser matter; both must at least refuse.
            let same = o == t
                || (t == "syntax" && (o == "syntax" || o == "error"))
                || (o == "Float NaN" && t == "Float NaN");
            if !same {
                diffs.push(format!("{s:?}: psych {t:?}, ours {o:?}"));
            }
        }
        assert!(
            diffs.is_empty(),
            "{} of {} differ:\n{}",
            diffs.len(),
            cands.len(),
            diffs.join("\n")
        );
    }

    /// Canonical form shared with the Ruby side: type-tagged scalars, ordered maps.
    fn canon(n: &Node) -> serde_json::Value {
        use serde_json::Value as J;
        match &n.v {
            Value::Null => J::String("nil".into()),
            Value::Bool(b) => J::String(format!("b:{b}")),
            Value::Int(_) | Value::BigInt(_) => J::String(format!("i:{}", n.ruby_to_s())),
            Value::Float(f) if f.is_nan() => J::String("f:NaN".into()),
            Value::Float(_) => J::String(format!("f:{}", n.ruby_to_s())),
            Value::Str(s) => J::String(format!("s:{s}")),
            Value::Sym(s) => J::String(format!("y:{s}")),
            Value::Seq(items) => J::Array(items.iter().map(canon).collect()),
            Value::Map(m) => J::Object(m.iter().map(|(k, v)| (k.clone(), canon(v))).collect()),
        }
    }

    /// Random documents with anchors, aliases, `<<` merges (single and lists), duplicate keys,
    /// flow and block collections, quoted and block scalars.
    fn documents() -> Vec<String> {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut rnd = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let scalars = [
            "a",
            "yes",
            "'yes'",
            "0755",
            "1_000",
            "1:30",
            ":sym",
            "~",
            "12.10",
            "\"q\\n\"",
            "-1",
            "0x1f",
            ".inf",
            "ubuntu-22.04",
            "null",
            "Off",
            "+1",
            "1,000",
            "1.",
        ];
        let keys = ["a", "b", "c", "name", "driver", "x_y"];
        let mut docs = Vec::new();
        for _ in 0..400 {
            let mut anchors: Vec<String> = Vec::new();
            let mut doc = String::new();
            let top = 2 + rnd(4);
            for t in 0..top {
                let key = keys[rnd(keys.len() as u64) as usize];
                match rnd(6) {
                    0 => {
                        let name = format!("a{t}");
                        doc.push_str(&format!("{key}: &{name}\n"));
                        for _ in 0..1 + rnd(3) {
                            let k = keys[rnd(keys.len() as u64) as usize];
                            let v = scalars[rnd(scalars.len() as u64) as usize];
                            doc.push_str(&format!("  {k}: {v}\n"));
                        }
                        anchors.push(name);
                    }
                    1 if !anchors.is_empty() => {
                        doc.push_str(&format!("{key}:\n"));
                        let a = &anchors[rnd(anchors.len() as u64) as usize];
                        let k = keys[rnd(keys.len() as u64) as usize];
                        let v = scalars[rnd(scalars.len() as u64) as usize];
                        if rnd(2) == 0 {
                            doc.push_str(&format!("  {k}: {v}\n  <<: *{a}\n"));
                        } else {
                            let b = &anchors[rnd(anchors.len() as u64) as usize];
                            doc.push_str(&format!("  <<: [*{a}, *{b}]\n  {k}: {v}\n"));
                        }
                    }
                    2 if !anchors.is_empty() => {
                        let a = &anchors[rnd(anchors.len() as u64) as usize];
                        let v = ["a", "yes", "0755", "~", "12.10", "0x1f"][rnd(6) as usize];
                        doc.push_str(&format!("{key}: [*{a}, {v}]\n"));
                    }
                    3 => {
                        doc.push_str(&format!("{key}: |\n  line {}\n  two\n", rnd(9)));
                    }
                    4 => {
                        // `1,000` splits into two entries in a flow collection, making an
                        // integer key that test-kitchen cannot symbolize: not generated here.
                        let flow: Vec<&str> = scalars
                            .iter()
                            .copied()
                            .filter(|s| !s.contains(','))
                            .collect();
                        let v = flow[rnd(flow.len() as u64) as usize];
                        let w = flow[rnd(flow.len() as u64) as usize];
                        doc.push_str(&format!("{key}: {{k: {v}, l: [{w}, {v}]}}\n"));
                    }
                    _ => {
                        let v = scalars[rnd(scalars.len() as u64) as usize];
                        doc.push_str(&format!("{key}: {v}\n"));
                    }
                }
            }
            docs.push(doc);
        }
        docs
    }

    #[test]
    fn documents_resolve_as_psych_does() {
        let Some(ruby) = std::env::var("PATH").ok().and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("ruby"))
                .find(|r| r.is_file())
        }) else {
            panic!("ruby is not installed: run scripts/setup-host");
        };
        let docs = documents();
        let script = r##"
            require "yaml"
            require "json"
            def canon(x)
              case x
              when nil then "nil"
              when true, false then "b:#{x}"
              when Integer then "i:#{x}"
              when Float then x.nan? ? "f:NaN" : "f:#{x}"
              when String then "s:#{x}"
              when Symbol then "y:#{x}"
              when Array then x.map { |e| canon(e) }
              when Hash
                x.each_with_object({}) do |(k, v), h|
                  # test-kitchen symbolizes every key and fails on non-String/Symbol ones
                  raise "key" unless k.is_a?(String) || k.is_a?(Symbol)
                  h[k.to_s] = canon(v)
                end
              else "other:#{x.class}"
              end
            end
            JSON.parse(STDIN.read).each do |doc|
              r = begin
                JSON.generate(canon(YAML.safe_load(doc, permitted_classes: [Symbol], aliases: true)))
              rescue Exception => e
                "error"
              end
              puts r
            end
        "##;
        let mut child = Command::new(ruby)
            .args(["--disable-gems", "-e", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("ruby: {e}"));
        if let Some(mut stdin) = child.stdin.take() {
            let input = serde_json::to_string(&docs).unwrap_or_default();
            stdin
                .write_all(input.as_bytes())
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
        let theirs = String::from_utf8_lossy(&out.stdout);
        let theirs: Vec<&str> = theirs.lines().collect();
        assert_eq!(theirs.len(), docs.len());
        let f: Arc<Path> = Arc::from(Path::new("t.yml"));
        let mut diffs = Vec::new();
        for (doc, t) in docs.iter().zip(theirs) {
            let ours = match parse(doc, &f) {
                Ok(Some(n)) => canon(&n).to_string(),
                Ok(None) => "\"nil\"".into(),
                Err(_) => "error".into(),
            };
            if ours != t {
                diffs.push(format!("{doc}\npsych: {t}\nours:  {ours}\n"));
            }
        }
        assert!(
            diffs.is_empty(),
            "{} of {} differ:\n{}",
            diffs.len(),
            docs.len(),
            diffs.join("\n")
        );
    }
}
