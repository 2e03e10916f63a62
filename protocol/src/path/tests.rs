use std::borrow::Cow;

use super::normalize_path;
use crate::error::ProtocolError;

fn norm(raw: &[u8]) -> Result<Vec<u8>, ProtocolError> {
    normalize_path(raw).map(Cow::into_owned)
}

// RFC 3986 §5.2.4: a path without dot-segments is already normal; no allocation.

#[test]
fn normal_paths_are_borrowed() {
    for raw in [&b"/"[..], b"/a", b"/a/b/", b"/a.b/..c/...", b"*"] {
        assert!(
            matches!(normalize_path(raw), Ok(Cow::Borrowed(_))),
            "{raw:?}"
        );
    }
}

// nginx merge_slashes: empty segments do not count (RFC 3986 §3.3 allows them; routing ignores them).

#[test]
fn repeated_slashes_are_merged() {
    assert_eq!(norm(b"//a///b//"), Ok(b"/a/b/".to_vec()));
    assert_eq!(norm(b"//"), Ok(b"/".to_vec()));
}

#[test]
fn dot_segments_are_resolved_rfc3986_5_2_4() {
    assert_eq!(norm(b"/a/./b"), Ok(b"/a/b".to_vec()));
    assert_eq!(norm(b"/a/b/../c"), Ok(b"/a/c".to_vec()));
    assert_eq!(norm(b"/a/.."), Ok(b"/".to_vec()));
    assert_eq!(norm(b"/a/."), Ok(b"/a/".to_vec()));
    assert_eq!(norm(b"/a/b/.."), Ok(b"/a/".to_vec()));
    assert_eq!(norm(b"/./"), Ok(b"/".to_vec()));
}

// RFC 3986 §5.2.4 would clamp ".." at the root; ringway refuses it (nginx answers 400).

#[test]
fn climbing_above_the_root_is_refused() {
    assert_eq!(norm(b"/.."), Err(ProtocolError::BadPath));
    assert_eq!(norm(b"/../x"), Err(ProtocolError::BadPath));
    assert_eq!(norm(b"/a/../../x"), Err(ProtocolError::BadPath));
    assert_eq!(norm(b"/%2e%2e/etc/passwd"), Err(ProtocolError::BadPath));
    assert_eq!(norm(b"/a/..%2f..%2fx"), Err(ProtocolError::BadPath));
    assert_eq!(ProtocolError::BadPath.status(), 400);
}

// RFC 3986 §2.1: %-escapes decoded once, before dot-segment removal, as nginx.

#[test]
fn escapes_are_decoded_before_resolving_like_nginx() {
    assert_eq!(norm(b"/a%20b"), Ok(b"/a b".to_vec()));
    assert_eq!(norm(b"/a%2Fb"), Ok(b"/a/b".to_vec()));
    assert_eq!(norm(b"/a/%2E/b"), Ok(b"/a/b".to_vec()));
    assert_eq!(norm(b"/a/b%2f..%2fc"), Ok(b"/a/c".to_vec()));
    // Decoded once: "%252e" is the three bytes "%2e", not a dot.
    assert_eq!(norm(b"/%252e%252e"), Ok(b"/%2e%2e".to_vec()));
}

// RFC 3986 §2.1: pct-encoded = "%" HEXDIG HEXDIG; a NUL is refused like nginx.

#[test]
fn invalid_escapes_and_nul_are_malformed() {
    assert_eq!(norm(b"/a%"), Err(ProtocolError::Malformed));
    assert_eq!(norm(b"/a%2"), Err(ProtocolError::Malformed));
    assert_eq!(norm(b"/a%zz"), Err(ProtocolError::Malformed));
    assert_eq!(norm(b"/a%00b"), Err(ProtocolError::Malformed));
}

// RFC 9112 §3.2.1: origin-form starts with an absolute-path.

#[test]
fn relative_paths_are_malformed() {
    assert_eq!(norm(b"a/b"), Err(ProtocolError::Malformed));
    assert_eq!(norm(b""), Err(ProtocolError::Malformed));
}
