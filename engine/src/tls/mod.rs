//! TLS termination (DESIGN §1): one rustls `ServerConfig` per TLS listen
//! address, built into the `Snapshot` so that a reload swaps certificates with
//! everything else.
//!
//! The certificate is chosen by SNI with the same name index as Host routing
//! (`resolver`), so SNI and Host always agree on which `[[server]]` a name
//! means. Resumption is stateless: tickets sealed with a key made when the
//! snapshot is built (`ticketer`), read-only and shared by every worker, so no
//! handshake takes a lock. The handshake itself (`handshake`) runs on the
//! worker that accepted the connection.

mod handshake;
mod resolver;
mod stream;
mod ticketer;

use std::sync::Arc;

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::NoServerSessionStorage;

pub use handshake::{Accepted, accept};
pub use resolver::SniResolver;
pub use stream::TlsStream;
pub use ticketer::TicketKey;

/// ALPN protocols offered, in preference order. A client that offers ALPN
/// without `http/1.1` fails the handshake with `no_application_protocol`
/// (RFC 7301 §3.2), as nginx has done since 1.21.4.
const ALPN: &[&[u8]] = &[b"http/1.1"];

/// The crypto provider for every TLS use: rustls's ring provider.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The `ServerConfig` of one TLS listen address: TLS 1.3 and 1.2 with rustls's
/// safe defaults, certificates from `resolver`, stateless resumption through
/// `tickets` (TLS 1.2 session IDs are not cached: a shared cache needs a lock).
/// Nothing in it is mutable, so every worker uses it as is.
pub fn server_config(
    provider: Arc<CryptoProvider>,
    resolver: SniResolver,
    tickets: Arc<TicketKey>,
) -> Result<Arc<ServerConfig>, rustls::Error> {
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.ticketer = tickets;
    // The compressed-certificate cache is an LRU behind a mutex; with no
    // compressor built in it is never used, and disabling it keeps it so.
    config.cert_compression_cache = Arc::new(rustls::compress::CompressionCache::Disabled);
    Ok(Arc::new(config))
}
