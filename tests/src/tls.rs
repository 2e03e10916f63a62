//! TLS for the black-box tests: a throwaway CA with leaf certificates made by rcgen, written
//! as PEM files for ringway's config and curl, and a blocking rustls client that sends raw
//! requests and reads responses with the same strictness as `http` (Content-Length framing
//! only: every response these tests expect has one).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::Resumption;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, HandshakeKind, RootCertStore, StreamOwned};

use crate::message::{Framing, Headers};
use crate::proxy::{CLIENT_PATIENCE, TempDir};
use crate::{Response, proxy};

/// A CA and the leaf certificates it signed, as files in a temporary directory.
#[derive(Debug)]
pub struct Pki {
    dir: TempDir,
    ca: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

/// A leaf certificate: its files and its DER, to recognise it on the wire.
#[derive(Debug, Clone)]
pub struct Leaf {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub der: CertificateDer<'static>,
}

impl Leaf {
    /// `tls = { cert = "...", key = "..." }` for a config.
    pub fn tls_table(&self) -> String {
        format!(
            "tls = {{ cert = {:?}, key = {:?} }}",
            self.cert.display().to_string(),
            self.key.display().to_string()
        )
    }
}

impl Default for Pki {
    fn default() -> Self {
        Pki::new()
    }
}

impl Pki {
    pub fn new() -> Pki {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "ringway test CA");
        let key = rcgen::KeyPair::generate().expect("CA key");
        let ca = rcgen::CertifiedIssuer::self_signed(params, key).expect("CA certificate");
        let dir = TempDir::new();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).expect("write ca.pem");
        Pki { dir, ca }
    }

    pub fn ca_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// An ECDSA P-256 leaf for `names` (DNS names, `*.x` wildcards allowed), written as
    /// `FILE.crt` (leaf then CA, as a fullchain.pem) and `FILE.key` (PKCS#8).
    pub fn leaf(&self, file: &str, names: &[&str]) -> Leaf {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let params = rcgen::CertificateParams::new(names).expect("leaf params");
        let key = rcgen::KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.ca).expect("sign leaf");
        let leaf = Leaf {
            cert: self.dir.path().join(format!("{file}.crt")),
            key: self.dir.path().join(format!("{file}.key")),
            der: cert.der().clone(),
        };
        std::fs::write(&leaf.cert, format!("{}{}", cert.pem(), self.ca.pem())).expect("write crt");
        std::fs::write(&leaf.key, key.serialize_pem()).expect("write key");
        leaf
    }

    /// A client trusting only this CA, offering `alpn`, with rustls's default session store.
    pub fn client_config(&self, alpn: &[&[u8]], send_sni: bool) -> Arc<ClientConfig> {
        self.client_config_for(rustls::DEFAULT_VERSIONS, alpn, send_sni)
    }

    /// As `client_config`, speaking only the TLS `versions` given.
    pub fn client_config_for(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
        alpn: &[&[u8]],
        send_sni: bool,
    ) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.der().clone()).expect("CA root");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        config.enable_sni = send_sni;
        config.resumption = Resumption::in_memory_sessions(64);
        Arc::new(config)
    }
}

/// A TLS connection to the proxy under test.
#[derive(Debug)]
pub struct TlsClient {
    stream: StreamOwned<ClientConnection, TcpStream>,
    buf: Vec<u8>,
}

impl TlsClient {
    /// Connect to `addr` and complete the handshake for `name` (sent as SNI when the config
    /// enables it; always the name the certificate is verified against).
    pub fn connect(
        addr: SocketAddr,
        name: &str,
        config: Arc<ClientConfig>,
    ) -> io::Result<TlsClient> {
        let tcp = TcpStream::connect(addr)?;
        tcp.set_read_timeout(Some(CLIENT_PATIENCE))?;
        tcp.set_write_timeout(Some(CLIENT_PATIENCE))?;
        tcp.set_nodelay(true)?;
        let server_name = ServerName::try_from(name.to_owned()).map_err(io::Error::other)?;
        let conn = ClientConnection::new(config, server_name).map_err(io::Error::other)?;
        let mut stream = StreamOwned::new(conn, tcp);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        Ok(TlsClient {
            stream,
            buf: Vec::new(),
        })
    }

    /// The TLS stream itself, for a client of another protocol (a WebSocket).
    pub fn into_stream(self) -> StreamOwned<ClientConnection, TcpStream> {
        self.stream
    }

    /// The leaf certificate the server presented.
    pub fn peer_leaf(&self) -> Option<&CertificateDer<'static>> {
        self.stream.conn.peer_certificates().and_then(<[_]>::first)
    }

    pub fn handshake_kind(&self) -> Option<HandshakeKind> {
        self.stream.conn.handshake_kind()
    }

    pub fn protocol_version(&self) -> Option<rustls::ProtocolVersion> {
        self.stream.conn.protocol_version()
    }

    pub fn send(&mut self, raw: &[u8]) -> io::Result<()> {
        self.stream.write_all(raw)?;
        self.stream.flush()
    }

    /// Send `raw` and read its response; panics, naming the request, on any error.
    pub fn roundtrip(&mut self, raw: &[u8]) -> Response {
        let line = crate::http::first_line(raw);
        if let Err(e) = self.send(raw) {
            panic!("cannot send {line:?}: {e}");
        }
        let head_only = line.starts_with("HEAD ");
        match self.read_response(head_only) {
            Ok(resp) => resp,
            Err(e) => panic!("no complete response to {line:?}: {e}"),
        }
    }

    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// One response with a Content-Length (or none for HEAD, 1xx, 204, 304).
    pub fn read_response(&mut self, head_only: bool) -> io::Result<Response> {
        let bad = |m: String| io::Error::new(io::ErrorKind::InvalidData, m);
        loop {
            let mut fields = [httparse::EMPTY_HEADER; 64];
            let mut parsed = httparse::Response::new(&mut fields);
            let status = parsed
                .parse(&self.buf)
                .map_err(|e| bad(format!("malformed response head: {e}")))?;
            if let httparse::Status::Complete(head_len) = status {
                let code = parsed.code.unwrap_or_default();
                let headers = Headers(
                    parsed
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_owned(),
                                String::from_utf8_lossy(h.value).into_owned(),
                            )
                        })
                        .collect(),
                );
                let bodiless = head_only || code < 200 || code == 204 || code == 304;
                let len: usize = if bodiless {
                    0
                } else {
                    headers
                        .get("content-length")
                        .ok_or_else(|| bad(format!("{code} response without Content-Length")))?
                        .parse()
                        .map_err(|_| bad("bad Content-Length".into()))?
                };
                let reason = parsed.reason.unwrap_or_default().to_owned();
                let version = parsed.version.unwrap_or_default();
                while self.buf.len() < head_len + len {
                    if self.fill()? == 0 {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                }
                let body = self.buf[head_len..head_len + len].to_vec();
                self.buf.drain(..head_len + len);
                return Ok(Response {
                    version,
                    status: code,
                    reason,
                    headers,
                    framing: if bodiless {
                        Framing::None
                    } else {
                        Framing::Length(len as u64)
                    },
                    body,
                    interim: Vec::new(),
                });
            }
            if self.fill()? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }
}

/// Run `config_toml` (with `@LISTEN@`) on `workers` workers: for tests that need connections
/// spread over several workers.
pub fn start_workers(config_toml: &str, driver: crate::Driver, workers: usize) -> proxy::Ringway {
    let dir = TempDir::new();
    let addr = proxy::free_addr();
    let file = dir.path().join("ringway.toml");
    std::fs::write(&file, config_toml.replace(proxy::LISTEN, &addr.to_string()))
        .expect("write the config file");
    let args: Vec<String> = [
        "run",
        "-c",
        &file.display().to_string(),
        "--workers",
        &workers.to_string(),
        "--driver",
        driver.as_arg(),
        "--no-pin",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    proxy::Ringway::spawn(&args, addr, dir).unwrap_or_else(|e| panic!("{e}"))
}

/// How long tests wait for a connection the proxy should drop.
pub const DROP_PATIENCE: Duration = Duration::from_secs(5);
