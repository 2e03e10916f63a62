//! `[[server.route]]` to a `snapshot::Route` plus its `route::Matcher`.
//!
//! A route has exactly one match (`path`, `prefix`, `regex`) and exactly one
//! action (DESIGN §2.1). Actions planned for later versions (`static`) count
//! as the route's action, so a route using one gets a single "not supported
//! yet" error rather than a second "no action" one.

use std::time::Duration;

use bytes::Bytes;
use regex::bytes::RegexBuilder;
use toml::Spanned;

use super::compile::{body_limit, planned, positive_period};
use super::document::Document;
use super::error::Diagnostics;
use super::headers::compile_header_edits;
use super::raw::RawRoute;
use super::server::compile_acl;
use super::upstream::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT, DEFAULT_SEND_TIMEOUT, Upstreams,
};
use crate::route::{Duplicate, Matcher, RouteTable};
use crate::snapshot::{Access, Action, HeaderEdit, HeaderEdits, Route};
use crate::template::Template;

/// How long an upgraded connection may carry no byte in either direction
/// (DESIGN §2.1); nginx's equivalent is proxy_read_timeout, 60s by default,
/// which is why the seeds raise it to 7 days for WebSockets.
pub(crate) const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);

pub(crate) fn compile_route(
    spanned: &Spanned<RawRoute>,
    table: &mut RouteTable,
    server_max_body_size: Option<u64>,
    doc: &Document,
    upstreams: &mut Upstreams,
    path: &str,
    diag: &mut Diagnostics<'_>,
) {
    let raw = spanned.get_ref();
    let damaged = doc.is_damaged(&spanned.span());
    report_planned(raw, path, diag);

    let matcher = compile_match(raw, spanned, damaged, path, diag);
    let regex_route = matches!(matcher, Some((Matcher::Regex(_), _, _)));
    let action = compile_action(raw, spanned, damaged, regex_route, upstreams, path, diag);

    let (connect, read, send) = match &action {
        Some(Action::Proxy(target)) => {
            let upstream = upstreams.get(target.upstream);
            (
                upstream.connect_timeout,
                upstream.read_timeout,
                upstream.send_timeout,
            )
        }
        _ => (
            DEFAULT_CONNECT_TIMEOUT,
            DEFAULT_READ_TIMEOUT,
            DEFAULT_SEND_TIMEOUT,
        ),
    };
    let route_access = Access {
        allow: compile_acl(&raw.allow, &format!("{path}.allow"), diag),
        deny: compile_acl(&raw.deny, &format!("{path}.deny"), diag),
    };
    let request_headers = compile_header_edits(
        &raw.request_headers,
        &format!("{path}.request_headers"),
        diag,
    );
    let response_headers = compile_header_edits(
        &raw.response_headers,
        &format!("{path}.response_headers"),
        diag,
    );
    let connect_timeout = positive_period(
        diag,
        &raw.connect_timeout,
        &format!("{path}.connect_timeout"),
        connect,
    );
    let read_timeout = positive_period(
        diag,
        &raw.read_timeout,
        &format!("{path}.read_timeout"),
        read,
    );
    let send_timeout = positive_period(
        diag,
        &raw.send_timeout,
        &format!("{path}.send_timeout"),
        send,
    );

    let idle_timeout = positive_period(
        diag,
        &raw.idle_timeout,
        &format!("{path}.idle_timeout"),
        DEFAULT_IDLE_TIMEOUT,
    );

    let (Some((matcher, label, match_span)), Some(action)) = (matcher, action) else {
        return;
    };
    let route = Route {
        label: label.clone().into(),
        action,
        access: route_access,
        max_body_size: body_limit(&raw.max_body_size).unwrap_or(server_max_body_size),
        request_headers,
        response_headers,
        connect_timeout,
        read_timeout,
        send_timeout,
        metric: 0,
        idle_timeout,
        websocket: raw.websocket.as_ref().is_none_or(|w| *w.get_ref()),
    };
    let server_path = path.rsplit_once('.').map_or(path, |(server, _)| server);
    if let Err(Duplicate(earlier)) = table.push(matcher, route) {
        diag.error(
            match_span,
            path,
            format!("duplicate route: {label} is already {server_path}.route[{earlier}]'s"),
        );
    }
}

fn report_planned(raw: &RawRoute, path: &str, diag: &mut Diagnostics<'_>) {
    let plans: [(&super::raw::Planned, &str, &str); 8] = [
        (&raw.r#static, "static", "static files"),
        (&raw.strip_prefix, "strip_prefix", "static files"),
        (&raw.index, "index", "static files"),
        (&raw.try_files, "try_files", "static files"),
        (&raw.rate_limit, "rate_limit", "rate limiting"),
        (&raw.expires, "expires", "Expires and Cache-Control headers"),
        (&raw.compress, "compress", "gzip and brotli compression"),
        (
            &raw.rewrite_location,
            "rewrite_location",
            "Location header rewriting",
        ),
    ];
    for (field, key, plan) in plans {
        planned(diag, field, &format!("{path}.{key}"), plan);
    }
}

/// The route's matcher, its label for logs (`prefix "/jatos"`) and its span.
fn compile_match(
    raw: &RawRoute,
    spanned: &Spanned<RawRoute>,
    damaged: bool,
    path: &str,
    diag: &mut Diagnostics<'_>,
) -> Option<(Matcher, String, std::ops::Range<usize>)> {
    let present: Vec<(&str, &Spanned<String>)> = [
        ("path", &raw.path),
        ("prefix", &raw.prefix),
        ("regex", &raw.regex),
    ]
    .into_iter()
    .filter_map(|(key, field)| field.as_ref().map(|v| (key, v)))
    .collect();
    let Some(&(kind, value)) = present.first() else {
        if !damaged {
            diag.error(
                spanned.span(),
                path,
                "a route needs one match: `path` (exact), `prefix` or `regex`",
            );
        }
        return None;
    };
    for &(other, other_value) in &present[1..] {
        diag.error(
            other_value.span(),
            format!("{path}.{other}"),
            format!("`{other}` conflicts with `{kind}`: a route has exactly one match"),
        );
    }
    if let Some(flag) = &raw.case_insensitive
        && kind != "regex"
    {
        diag.error(
            flag.span(),
            format!("{path}.case_insensitive"),
            "`case_insensitive` applies only to `regex` routes (nginx `~*`)",
        );
    }
    if let Some(flag) = &raw.stop_regex
        && kind != "prefix"
    {
        diag.error(
            flag.span(),
            format!("{path}.stop_regex"),
            "`stop_regex` applies only to `prefix` routes (nginx `^~`)",
        );
    }
    let text = value.get_ref();
    let key_path = format!("{path}.{kind}");
    let label = format!("{kind} {text:?}");
    if kind == "regex" {
        let case_insensitive = raw.case_insensitive.as_ref().is_some_and(|f| *f.get_ref());
        return match RegexBuilder::new(text)
            .case_insensitive(case_insensitive)
            .build()
        {
            Ok(re) => Some((Matcher::Regex(re), label, value.span())),
            Err(e) => {
                diag.error(
                    value.span(),
                    key_path,
                    format!("invalid regex: {}", regex_message(&e)),
                );
                None
            }
        };
    }
    if !text.starts_with('/') {
        diag.error(
            value.span(),
            key_path,
            format!("{text:?} must start with \"/\""),
        );
        return None;
    }
    if text.contains(['?', '#']) {
        diag.error(
            value.span(),
            key_path,
            format!("{text:?}: routes match the path only; a query or fragment never matches"),
        );
        return None;
    }
    let bytes = Bytes::copy_from_slice(text.as_bytes());
    let matcher = if kind == "path" {
        Matcher::Exact(bytes)
    } else {
        Matcher::Prefix {
            prefix: bytes,
            stop_regex: raw.stop_regex.as_ref().is_some_and(|f| *f.get_ref()),
        }
    };
    Some((matcher, label, value.span()))
}

/// regex's errors span several lines with a caret diagram; keep the line that
/// says what is wrong.
fn regex_message(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map_or_else(
            || text.lines().map(str::trim).collect::<Vec<_>>().join(" "),
            str::to_owned,
        )
}

fn compile_action(
    raw: &RawRoute,
    spanned: &Spanned<RawRoute>,
    damaged: bool,
    regex_route: bool,
    upstreams: &mut Upstreams,
    path: &str,
    diag: &mut Diagnostics<'_>,
) -> Option<Action> {
    let spans = [
        ("proxy", raw.proxy.as_ref().map(Spanned::span)),
        ("respond", raw.respond.as_ref().map(Spanned::span)),
        ("redirect", raw.redirect.as_ref().map(Spanned::span)),
        ("static", raw.r#static.as_ref().map(Spanned::span)),
    ];
    let present: Vec<_> = spans
        .into_iter()
        .filter_map(|(k, s)| s.map(|s| (k, s)))
        .collect();
    let Some(&(kind, _)) = present.first() else {
        if !damaged {
            diag.error(
                spanned.span(),
                path,
                "a route needs one action: `proxy`, `redirect` or `respond`",
            );
        }
        return None;
    };
    for (other, span) in &present[1..] {
        diag.error(
            span.clone(),
            format!("{path}.{other}"),
            format!("`{other}` conflicts with `{kind}`: a route has exactly one action"),
        );
    }
    if let Some(body) = &raw.body
        && raw.respond.is_none()
    {
        diag.error(
            body.span(),
            format!("{path}.body"),
            "`body` needs `respond = STATUS`",
        );
    }
    if let Some(status) = &raw.status
        && raw.redirect.is_none()
    {
        diag.error(
            status.span(),
            format!("{path}.status"),
            "`status` needs `redirect = \"URL\"` (for another status use `respond = STATUS`)",
        );
    }
    match kind {
        "redirect" => {
            let url = raw.redirect.as_ref()?;
            redirect(url, raw.status.as_ref(), path, diag)
        }
        "proxy" => {
            let proxy = raw.proxy.as_ref()?;
            upstreams
                .target(proxy, regex_route, &format!("{path}.proxy"), diag)
                .map(Action::Proxy)
        }
        "respond" => {
            let status = raw.respond.as_ref()?;
            respond(status, raw.body.as_ref(), path, diag)
        }
        _ => None,
    }
}

/// `redirect = "URL"` with `status`: 301 unless told otherwise; 302, 303,
/// 307 and 308 are the other redirections that carry a Location (RFC 9110 §15.4).
fn redirect(
    url: &Spanned<String>,
    status: Option<&Spanned<u16>>,
    path: &str,
    diag: &mut Diagnostics<'_>,
) -> Option<Action> {
    let code = status.map_or(301, |s| *s.get_ref());
    if let Some(status) = status
        && ![301, 302, 303, 307, 308].contains(&code)
    {
        diag.error(
            status.span(),
            format!("{path}.status"),
            format!("a redirect status is 301, 302, 303, 307 or 308, not {code}"),
        );
        return None;
    }
    let text = url.get_ref().trim();
    let key_path = format!("{path}.redirect");
    if text.is_empty() || text.contains(['\r', '\n', '\0', ' ']) {
        diag.error(
            url.span(),
            key_path,
            "a redirect needs a URL without spaces, CR, LF or NUL, e.g. \"https://$host$request_uri\"",
        );
        return None;
    }
    let template = match Template::parse(text) {
        Ok(t) => t,
        Err(message) => {
            diag.error(url.span(), key_path, message);
            return None;
        }
    };
    Some(Action::Redirect {
        status: code,
        location: HeaderEdits {
            edits: vec![HeaderEdit {
                name: Bytes::from_static(b"location"),
                value: Some(template),
            }],
        },
        body: Bytes::from(crate::downstream::error_page(code)),
    })
}

fn respond(
    status: &Spanned<u16>,
    body: Option<&Spanned<String>>,
    path: &str,
    diag: &mut Diagnostics<'_>,
) -> Option<Action> {
    let code = *status.get_ref();
    if !(100..=599).contains(&code) {
        diag.error(
            status.span(),
            format!("{path}.respond"),
            format!("status {code} is out of range 100..=599"),
        );
        return None;
    }
    // RFC 9110 §15.2, §15.3.5, §15.4.5: 1xx, 204 and 304 responses have no content.
    let bodiless = code < 200 || code == 204 || code == 304;
    if let Some(body) = body
        && bodiless
        && !body.get_ref().is_empty()
    {
        diag.error(
            body.span(),
            format!("{path}.body"),
            format!("a {code} response cannot have a body (RFC 9110)"),
        );
        return None;
    }
    Some(Action::Respond {
        status: code,
        body: body.map_or_else(Bytes::new, |b| {
            Bytes::copy_from_slice(b.get_ref().as_bytes())
        }),
    })
}
