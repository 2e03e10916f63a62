//! The configuration file exactly as written: serde structs mirroring the TOML.
//!
//! Every struct denies unknown fields and every value keeps its byte span, so
//! validation can point at the line and column of what it rejects. Keys that
//! DESIGN §2 documents but this build does not implement yet are still fields
//! here (as `IgnoredAny`), so they are reported as "not supported yet" instead
//! of as unknown. Nothing here is validated beyond TOML types; that is
//! `compile`'s job.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use toml::Spanned;

use super::units::{Period, Size};

pub(crate) type Field<T> = Option<Spanned<T>>;
pub(crate) type List<T> = Option<Spanned<Vec<Spanned<T>>>>;
pub(crate) type HeaderMap = Option<Spanned<BTreeMap<Spanned<String>, Spanned<String>>>>;
/// A documented key that a later version implements.
pub(crate) type Planned = Option<Spanned<IgnoredAny>>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub runtime: Field<RawRuntime>,
    pub limits: Field<RawLimits>,
    pub log: Field<RawLog>,
    pub admin: Field<RawAdmin>,
    pub rate_limits: Planned,
    pub compression: Planned,
    #[serde(default)]
    pub upstreams: BTreeMap<Spanned<String>, Spanned<RawUpstream>>,
    #[serde(default)]
    pub server: Vec<Spanned<RawServer>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRuntime {
    pub workers: Field<usize>,
    pub pin: Field<bool>,
    pub driver: Field<RawDriver>,
    pub buffer_size: Field<Size>,
    pub splice_threshold: Field<Size>,
    pub ring_entries: Field<u32>,
    pub max_connections: Field<usize>,
    pub shutdown_timeout: Field<Period>,
    pub pid_file: Field<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAdmin {
    pub listen: Field<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RawDriver {
    Auto,
    IoUring,
    Epoll,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    pub header_timeout: Field<Period>,
    pub keepalive_timeout: Field<Period>,
    pub max_header_size: Field<Size>,
    pub max_headers: Field<usize>,
    pub max_body_size: Field<Size>,
    pub handshake_timeout: Field<Period>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLog {
    pub level: Field<RawLevel>,
    pub access: Field<String>,
    pub access_format: Field<RawAccessFormat>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RawLevel {
    Error,
    Warn,
    Info,
    Debug,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RawAccessFormat {
    Combined,
    Json,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUpstream {
    pub servers: List<RawUpstreamServer>,
    pub balance: Field<RawBalance>,
    pub keepalive: Field<usize>,
    pub connect_timeout: Field<Period>,
    pub read_timeout: Field<Period>,
    pub send_timeout: Field<Period>,
    pub max_fails: Planned,
    pub fail_timeout: Planned,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RawBalance {
    RoundRobin,
    LeastConn,
    IpHash,
}

/// `"10.0.0.2:9000"` or `{ addr = "10.0.0.2:9000", weight = 2 }`.
#[derive(Debug)]
pub(crate) enum RawUpstreamServer {
    Addr(String),
    Table(RawUpstreamServerTable),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUpstreamServerTable {
    pub addr: Field<String>,
    pub weight: Field<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServer {
    pub listen: List<String>,
    pub names: List<String>,
    pub default: Field<bool>,
    pub tls: Field<RawTls>,
    pub hsts: Field<String>,
    pub max_body_size: Field<Size>,
    pub response_headers: HeaderMap,
    pub trusted_proxies: List<String>,
    #[serde(default)]
    pub route: Vec<Spanned<RawRoute>>,
}

/// `tls = { cert = PATH, key = PATH }`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTls {
    pub cert: Field<String>,
    pub key: Field<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoute {
    pub path: Field<String>,
    pub prefix: Field<String>,
    pub regex: Field<String>,
    pub case_insensitive: Field<bool>,
    pub stop_regex: Field<bool>,

    pub proxy: Field<String>,
    pub respond: Field<u16>,
    pub body: Field<String>,
    pub redirect: Field<String>,
    pub status: Field<u16>,
    pub r#static: Planned,
    pub strip_prefix: Planned,
    pub index: Planned,
    pub try_files: Planned,

    pub allow: List<String>,
    pub deny: List<String>,
    pub request_headers: HeaderMap,
    pub response_headers: HeaderMap,
    pub max_body_size: Field<Size>,
    pub connect_timeout: Field<Period>,
    pub read_timeout: Field<Period>,
    pub send_timeout: Field<Period>,
    pub idle_timeout: Field<Period>,
    pub websocket: Field<bool>,
    pub rate_limit: Planned,
    pub expires: Planned,
    pub compress: Planned,
    pub rewrite_location: Planned,
}

impl<'de> Deserialize<'de> for RawUpstreamServer {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntryVisitor;

        impl<'de> Visitor<'de> for EntryVisitor {
            type Value = RawUpstreamServer;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"a "host:port" string or a table { addr = "host:port", weight = N }"#)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(RawUpstreamServer::Addr(v.to_owned()))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                RawUpstreamServerTable::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawUpstreamServer::Table)
            }
        }

        deserializer.deserialize_any(EntryVisitor)
    }
}
