//! Text to `RawConfig`, reporting every TOML and type error rather than the first.
//!
//! The text is parsed once into toml's spanned tree. Deserializing it into the
//! raw structs stops at the first error, so on an error the offending key is
//! located by span, reported, removed from the tree, and deserialization runs
//! again; each round removes one key, so the loop ends. Tables that lost a key
//! are remembered as "damaged", so validation does not pile "missing key"
//! errors on top of the real mistake.

use std::ops::Range;

use serde::Deserialize;
use toml::de::{DeTable, DeValue};

use super::error::Diagnostics;
use super::raw::RawConfig;
use super::suggest::nearest;

/// Enough to report every mistake in any hand-written file without letting a
/// pathological one spin.
const MAX_ROUNDS: usize = 200;

pub(crate) struct Document {
    pub raw: RawConfig,
    /// Spans of the tables that lost a key.
    damaged: Vec<Range<usize>>,
    /// Key paths of the removed entries.
    removed: Vec<String>,
}

impl Document {
    /// Whether the table at `span` had a key removed because it was invalid.
    pub(crate) fn is_damaged(&self, span: &Range<usize>) -> bool {
        self.damaged.contains(span)
    }

    /// Whether the entry at `key_path` was removed because it was invalid.
    pub(crate) fn lost(&self, key_path: &str) -> bool {
        self.removed.iter().any(|p| p == key_path)
    }
}

/// Parses `text`; `None` when it is not TOML at all or no raw config could be
/// recovered (errors are in `diag`). Type errors are recorded in `diag` but a
/// best-effort `Document` is still returned so validation can find more.
pub(crate) fn parse(text: &str, diag: &mut Diagnostics<'_>) -> Option<Document> {
    let (mut tree, syntax_errors) = DeTable::parse_recoverable(text);
    if !syntax_errors.is_empty() {
        // toml recovers after a syntax error, but what it finds later on the
        // same line is usually a consequence of the first, so keep one per line.
        let mut reported_lines = Vec::new();
        for error in syntax_errors {
            let span = error.span().unwrap_or(0..0);
            let before = &text.as_bytes()[..span.start.min(text.len())];
            let line = before.iter().filter(|&&b| b == b'\n').count();
            if !reported_lines.contains(&line) {
                reported_lines.push(line);
                diag.error(span, "", one_line(error.message()));
            }
        }
        return None;
    }
    let mut damaged = Vec::new();
    let mut removed = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let error = match RawConfig::deserialize(toml::de::Deserializer::from(tree.clone())) {
            Ok(raw) => {
                return Some(Document {
                    raw,
                    damaged,
                    removed,
                });
            }
            Err(error) => error,
        };
        let Some(span) = error.span() else {
            diag.error(0..0, "", one_line(error.message()));
            return None;
        };
        let mut steps = Vec::new();
        if !locate(tree.get_ref(), &span, &mut steps) {
            diag.error(span, "", one_line(error.message()));
            return None;
        }
        let path = key_path(&steps);
        let mut message = explain(error.message());
        if message.starts_with("invalid type: map, expected a sequence") {
            message.push_str(&format!(
                " (a list of tables is written [[{}]])",
                table_header(&steps)
            ));
        }
        diag.error(span, path.as_str(), message);
        let root_span = tree.span();
        // Without progress the same error would come back every round.
        damaged.push(remove(tree.get_mut(), root_span, &steps)?);
        removed.push(path);
    }
    diag.error(0..0, "", "too many errors; fix the ones above first");
    None
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

fn contains(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

/// Finds the table entry an error at `span` belongs to, leaving the route to it
/// in `steps`. An entry whose key holds the span wins (unknown-key errors point
/// at the key, and the value span of an implicit table such as `upstream` in
/// `[upstream.jatos]` covers its child's header too); else the innermost entry
/// whose value holds it, so an error inside `[[server.route]]` names the
/// route's key, not `server`.
fn locate(root: &DeTable<'_>, span: &Range<usize>, steps: &mut Vec<Step>) -> bool {
    locate_in_table(root, span, Target::Key, steps)
        || locate_in_table(root, span, Target::Value, steps)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Key,
    Value,
}

fn locate_in_table(
    table: &DeTable<'_>,
    span: &Range<usize>,
    target: Target,
    steps: &mut Vec<Step>,
) -> bool {
    for (key, value) in table.iter() {
        steps.push(Step::Key(key.get_ref().to_string()));
        if locate_in_value(value.get_ref(), span, target, steps) {
            return true;
        }
        let holds = match target {
            Target::Key => contains(&key.span(), span),
            Target::Value => contains(&value.span(), span),
        };
        if holds {
            return true;
        }
        steps.pop();
    }
    false
}

fn locate_in_value(
    value: &DeValue<'_>,
    span: &Range<usize>,
    target: Target,
    steps: &mut Vec<Step>,
) -> bool {
    match value {
        DeValue::Table(table) => locate_in_table(table, span, target, steps),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                if let DeValue::Table(table) = item.get_ref() {
                    steps.push(Step::Index(i));
                    if locate_in_table(table, span, target, steps) {
                        return true;
                    }
                    steps.pop();
                }
            }
            false
        }
        _ => false,
    }
}

/// Removes the entry `steps` leads to and returns the span of the table that
/// held it; `None` if the steps lead nowhere (then nothing was removed).
fn remove(root: &mut DeTable<'_>, root_span: Range<usize>, steps: &[Step]) -> Option<Range<usize>> {
    let (Step::Key(last), parents) = steps.split_last()? else {
        return None;
    };
    let mut table = root;
    let mut table_span = root_span;
    let mut parents = parents.iter().peekable();
    while let Some(step) = parents.next() {
        let Step::Key(key) = step else {
            return None;
        };
        let mut value = table.get_mut(key.as_str())?;
        if let Some(Step::Index(i)) = parents.peek() {
            parents.next();
            let DeValue::Array(items) = value.get_mut() else {
                return None;
            };
            value = items.get_mut(*i)?;
        }
        table_span = value.span();
        let DeValue::Table(inner) = value.get_mut() else {
            return None;
        };
        table = inner;
    }
    table.remove(last.as_str())?;
    Some(table_span)
}

/// `server[0].route[2].prefx`; keys that are not bare TOML keys are quoted.
fn key_path(steps: &[Step]) -> String {
    let mut out = String::new();
    for step in steps {
        match step {
            Step::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                let bare = !key.is_empty()
                    && key
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if bare {
                    out.push_str(key);
                } else {
                    out.push_str(&format!("{key:?}"));
                }
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// `server.route` for `server[0].route`: how the key is named in a table header.
fn table_header(steps: &[Step]) -> String {
    let keys: Vec<&str> = steps
        .iter()
        .filter_map(|step| match step {
            Step::Key(key) => Some(key.as_str()),
            Step::Index(_) => None,
        })
        .collect();
    keys.join(".")
}

fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Rewrites serde's messages in the file's vocabulary: "key" rather than
/// "field", a suggestion for misspellings, and "whole number" for Rust types.
fn explain(message: &str) -> String {
    let message = one_line(message);
    if let Some(rest) = message.strip_prefix("unknown field ") {
        let (word, expected) = split_expected(rest);
        return match nearest(&word, expected.iter().map(String::as_str)) {
            Some(hint) => format!("unknown key `{word}` (did you mean `{hint}`?)"),
            None if expected.is_empty() => format!("unknown key `{word}`"),
            None => format!(
                "unknown key `{word}` (expected one of: {})",
                expected.join(", ")
            ),
        };
    }
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        let (word, expected) = split_expected(rest);
        let quoted: Vec<String> = expected.iter().map(|e| format!("{e:?}")).collect();
        let hint = nearest(&word, expected.iter().map(String::as_str))
            .map(|h| format!(" (did you mean {h:?}?)"))
            .unwrap_or_default();
        return format!(
            "unknown value {word:?}{hint}; expected one of {}",
            quoted.join(", ")
        );
    }
    let mut message = message;
    for rust_type in ["usize", "u64", "u32", "u16", "i64"] {
        let from = format!("expected {rust_type}");
        if message.ends_with(&from) {
            let len = message.len() - rust_type.len();
            message.truncate(len);
            message.push_str(if rust_type == "u16" {
                "a whole number up to 65535"
            } else if rust_type == "u32" {
                "a whole number up to 4294967295"
            } else {
                "a whole number"
            });
        }
    }
    message
}

/// Splits serde's "`word`, expected one of `a`, `b`" into the word and the
/// backquoted alternatives.
fn split_expected(rest: &str) -> (String, Vec<String>) {
    let mut quoted = rest.split('`').skip(1).step_by(2).map(str::to_owned);
    let word = quoted.next().unwrap_or_default();
    (word, quoted.collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_are_explained() {
        assert_eq!(
            explain("unknown field `prefx`, expected one of `path`, `prefix`, `regex`"),
            "unknown key `prefx` (did you mean `prefix`?)"
        );
        assert_eq!(
            explain("unknown field `zzz`, expected `addr` or `weight`"),
            "unknown key `zzz` (expected one of: addr, weight)"
        );
        assert_eq!(
            explain("unknown variant `iouring`, expected one of `auto`, `io_uring`, `epoll`"),
            "unknown value \"iouring\" (did you mean \"io_uring\"?); expected one of \"auto\", \"io_uring\", \"epoll\""
        );
        assert_eq!(
            explain("invalid type: string \"four\", expected usize"),
            "invalid type: string \"four\", expected a whole number"
        );
    }

    #[test]
    fn key_paths() {
        let steps = vec![
            Step::Key("server".into()),
            Step::Index(0),
            Step::Key("response_headers".into()),
            Step::Key("X.Y".into()),
        ];
        assert_eq!(key_path(&steps), "server[0].response_headers.\"X.Y\"");
    }
}
