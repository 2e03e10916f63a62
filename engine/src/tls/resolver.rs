//! Certificate by SNI for one TLS listen address: exact name, then the longest
//! wildcard, then the address's default server, which also answers clients
//! that send no SNI at all (DESIGN §2.2).

use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::snapshot::NameIndex;

#[derive(Debug)]
pub struct SniResolver {
    names: NameIndex,
    default_server: usize,
    /// Indexed by server (`Snapshot::servers`); `None` for servers not on this address.
    certs: Vec<Option<Arc<CertifiedKey>>>,
}

impl SniResolver {
    pub fn new(
        names: NameIndex,
        default_server: usize,
        certs: Vec<Option<Arc<CertifiedKey>>>,
    ) -> SniResolver {
        SniResolver {
            names,
            default_server,
            certs,
        }
    }

    /// The server whose certificate a client naming `sni` gets.
    pub fn server_for(&self, sni: Option<&str>) -> usize {
        sni.and_then(|name| self.names.find(name.as_bytes()))
            .unwrap_or(self.default_server)
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let server = self.server_for(client_hello.server_name());
        self.certs.get(server).cloned().flatten()
    }
}
