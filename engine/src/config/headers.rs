//! `request_headers` / `response_headers` tables to `HeaderEdits`.
//!
//! Names must be tokens (RFC 9110 §5.6.2) and are stored lower-case; values may
//! not contain CR, LF or NUL (RFC 9110 §5.5), which would let a config value
//! split a header into two. `""` removes the header.

use std::collections::BTreeMap;

use bytes::Bytes;
use toml::Spanned;

use super::error::Diagnostics;
use crate::snapshot::{HeaderEdit, HeaderEdits};
use crate::template::Template;

pub(crate) fn compile_header_edits(
    raw: &Option<Spanned<BTreeMap<Spanned<String>, Spanned<String>>>>,
    path: &str,
    diag: &mut Diagnostics<'_>,
) -> HeaderEdits {
    let Some(table) = raw else {
        return HeaderEdits::default();
    };
    let mut entries: Vec<_> = table.get_ref().iter().collect();
    entries.sort_by_key(|(name, _)| name.span().start);
    let mut edits: Vec<HeaderEdit> = Vec::with_capacity(entries.len());
    for (name, value) in entries {
        let entry_path = format!("{path}.{:?}", name.get_ref());
        if !is_token(name.get_ref()) {
            diag.error(
                name.span(),
                entry_path,
                format!(
                    "invalid header name {:?} (RFC 9110 §5.6.2 token characters only)",
                    name.get_ref()
                ),
            );
            continue;
        }
        let lower = Bytes::from(name.get_ref().to_ascii_lowercase());
        if edits.iter().any(|e| e.name == lower) {
            diag.error(
                name.span(),
                entry_path,
                format!(
                    "header {:?} is set twice (names are case-insensitive)",
                    name.get_ref()
                ),
            );
            continue;
        }
        let text = value.get_ref();
        if text.contains(['\r', '\n', '\0']) {
            diag.error(
                value.span(),
                entry_path,
                "a header value cannot contain CR, LF or NUL",
            );
            continue;
        }
        let template = if text.is_empty() {
            None
        } else {
            match Template::parse(text.trim()) {
                Ok(template) => Some(template),
                Err(message) => {
                    diag.error(value.span(), entry_path, message);
                    continue;
                }
            }
        };
        edits.push(HeaderEdit {
            name: lower,
            value: template,
        });
    }
    HeaderEdits { edits }
}

/// RFC 9110 §5.6.2: `token = 1*tchar`.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
