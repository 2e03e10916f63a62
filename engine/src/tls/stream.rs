//! An established TLS session over a socket: rustls's `ServerConnection`
//! driven with owned buffers on monoio.
//!
//! It replaces monoio-rustls's stream, which sends through a fixed 16 KiB
//! buffer: a large body then left in one write per TLS record. Here every
//! record rustls has ready goes out in one write (up to rustls's 64 KiB of
//! pending output), a vector of buffers is encrypted as one run of records
//! (a response head and the body behind it share them), and the outgoing
//! buffer returns to its usual size after a large write, so an idle
//! connection does not keep it.
//!
//! Reads take one record's worth at a time (`READ_SIZE`): rustls refuses to
//! hold more than 16 KiB of received plaintext that has not been read.

use std::io::{self, Read, Write};

use monoio::BufResult;
use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, Split};
use monoio::net::TcpStream;
use rustls::ServerConnection;

/// Bytes read from the socket at a time.
const READ_SIZE: usize = 16 * 1024;
/// The outgoing buffer kept between writes: a full record and its overhead.
pub(super) const OUTGOING_KEEP: usize = 17 * 1024;

pub struct TlsStream {
    io: TcpStream,
    conn: ServerConnection,
    /// TLS bytes read from the socket (owned by the runtime while a read is
    /// in flight).
    incoming: Vec<u8>,
    /// TLS bytes on their way to the socket (likewise while a write is).
    outgoing: Vec<u8>,
}

impl TlsStream {
    /// Wrap a session whose handshake is complete; the handshake consumed
    /// every byte it read, so nothing is pending outside `conn`. The
    /// handshake's buffers are reused (their contents are spent).
    pub fn new(
        io: TcpStream,
        conn: ServerConnection,
        mut incoming: Vec<u8>,
        mut outgoing: Vec<u8>,
    ) -> TlsStream {
        incoming.clear();
        incoming.reserve(READ_SIZE);
        outgoing.clear();
        outgoing.reserve(OUTGOING_KEEP);
        TlsStream {
            io,
            conn,
            incoming,
            outgoing,
        }
    }

    /// Read from the socket once and hand the bytes to rustls. Returns false
    /// at end of stream (rustls is told, and reports it on the next read).
    async fn read_tls(&mut self) -> io::Result<bool> {
        let mut incoming = std::mem::take(&mut self.incoming);
        incoming.clear();
        // A read cancelled by a timeout took the buffer with it.
        incoming.reserve(READ_SIZE);
        let (result, incoming) = self.io.read(incoming).await;
        self.incoming = incoming;
        if result? == 0 {
            self.conn.read_tls(&mut io::empty())?;
            self.conn
                .process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            return Ok(false);
        }
        let mut rest = &self.incoming[..];
        while !rest.is_empty() {
            if self.conn.read_tls(&mut rest)? == 0 {
                break;
            }
            self.conn
                .process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        }
        Ok(true)
    }

    /// Send every record rustls has ready, in one write per batch.
    async fn write_tls(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            let mut outgoing = std::mem::take(&mut self.outgoing);
            outgoing.clear();
            self.conn.write_tls(&mut outgoing)?;
            let (result, mut outgoing) = self.io.write_all(outgoing).await;
            if outgoing.capacity() > OUTGOING_KEEP {
                outgoing = Vec::with_capacity(OUTGOING_KEEP);
            }
            self.outgoing = outgoing;
            result?;
        }
        Ok(())
    }

    /// Plaintext the session already holds, copied into `into`; `None` when
    /// it holds none and more must be read.
    fn take_plaintext(&mut self, into: &mut [u8]) -> Option<io::Result<usize>> {
        match self.conn.reader().read(into) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
            other => Some(other),
        }
    }

    /// Encrypt what `bufs` holds, as far as rustls's output limit allows,
    /// then send it. Returns the plaintext bytes taken.
    async fn write_plain(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        // Room for new records first: rustls takes no more than its limit.
        self.write_tls().await?;
        let n = self.conn.writer().write_vectored(bufs)?;
        self.write_tls().await?;
        Ok(n)
    }
}

// SAFETY: a read uses `incoming` and a write `outgoing`, each taken out of
// the stream while its operation is in flight; both touch the rustls session
// only between awaits, on the one thread that owns the stream, so a read and
// a write in flight at the same time never see each other's state half done.
unsafe impl Split for TlsStream {}

impl AsyncReadRent for TlsStream {
    async fn read<T: IoBufMut>(&mut self, mut buf: T) -> BufResult<usize, T> {
        // SAFETY: `write_ptr` is valid for `bytes_total` bytes while we own `buf`.
        let into = unsafe { std::slice::from_raw_parts_mut(buf.write_ptr(), buf.bytes_total()) };
        loop {
            match self.take_plaintext(into) {
                Some(Ok(n)) => {
                    // SAFETY: rustls wrote `n` bytes at the start of the buffer.
                    unsafe { buf.set_init(n) };
                    return (Ok(n), buf);
                }
                Some(Err(e)) => return (Err(e), buf),
                None => {}
            }
            match self.read_tls().await {
                Ok(true) => {}
                // rustls now knows the stream ended: the next look says how
                // (clean close_notify: 0; otherwise an error).
                Ok(false) => {
                    let result = self.take_plaintext(into).unwrap_or(Ok(0));
                    if let Ok(n) = result {
                        // SAFETY: as above.
                        unsafe { buf.set_init(n) };
                    }
                    return (result, buf);
                }
                Err(e) => return (Err(e), buf),
            }
        }
    }

    async fn readv<T: IoVecBufMut>(&mut self, mut buf: T) -> BufResult<usize, T> {
        // Into the first buffer of the vector, as a plain read would.
        let ptr = buf.write_iovec_ptr();
        if buf.write_iovec_len() == 0 {
            return (Ok(0), buf);
        }
        // SAFETY: the vector has at least one valid entry while we own `buf`.
        let first = unsafe { *ptr };
        // SAFETY: the entry points at `iov_len` writable bytes.
        let into =
            unsafe { std::slice::from_raw_parts_mut(first.iov_base.cast::<u8>(), first.iov_len) };
        loop {
            match self.take_plaintext(into) {
                Some(result) => {
                    if let Ok(n) = result {
                        // SAFETY: rustls wrote `n` bytes into the first entry.
                        unsafe { buf.set_init(n) };
                    }
                    return (result, buf);
                }
                None => match self.read_tls().await {
                    Ok(true) => {}
                    Ok(false) => {
                        let result = self.take_plaintext(into).unwrap_or(Ok(0));
                        if let Ok(n) = result {
                            // SAFETY: as above.
                            unsafe { buf.set_init(n) };
                        }
                        return (result, buf);
                    }
                    Err(e) => return (Err(e), buf),
                },
            }
        }
    }
}

impl AsyncWriteRent for TlsStream {
    async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        // SAFETY: `read_ptr` is valid for `bytes_init` bytes while we own `buf`.
        let bytes = unsafe { std::slice::from_raw_parts(buf.read_ptr(), buf.bytes_init()) };
        let result = self.write_plain(&[io::IoSlice::new(bytes)]).await;
        (result, buf)
    }

    async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        let (ptr, len) = (buf.read_iovec_ptr(), buf.read_iovec_len());
        // SAFETY: the vector has `len` valid entries while we own `buf`.
        let iovecs = unsafe { std::slice::from_raw_parts(ptr, len) };
        // At most a few entries (a head and a body): kept on the stack.
        let mut slices = [io::IoSlice::new(&[]); 4];
        let taken = iovecs.len().min(slices.len());
        for (slice, iov) in slices.iter_mut().zip(iovecs) {
            // SAFETY: each entry points at `iov_len` readable bytes.
            let bytes =
                unsafe { std::slice::from_raw_parts(iov.iov_base.cast::<u8>(), iov.iov_len) };
            *slice = io::IoSlice::new(bytes);
        }
        let result = self.write_plain(&slices[..taken]).await;
        (result, buf)
    }

    async fn flush(&mut self) -> io::Result<()> {
        self.conn.writer().flush()?;
        self.write_tls().await?;
        self.io.flush().await
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        self.conn.send_close_notify();
        self.write_tls().await?;
        self.io.shutdown().await
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::Arc;
    use std::thread;

    use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
    use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, StreamOwned};

    use super::{OUTGOING_KEEP, TlsStream};
    use crate::tls::{Accepted, accept, provider};

    struct Pair {
        server: Arc<ServerConfig>,
        client: Arc<ClientConfig>,
    }

    fn configs() -> Pair {
        let params = rcgen::CertificateParams::new(vec!["site.test".to_owned()]).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let der = CertificateDer::from(cert.der().to_vec());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![der.clone()], key)
            .unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(der).unwrap();
        let client = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Pair {
            server: Arc::new(server),
            client: Arc::new(client),
        }
    }

    type Client = StreamOwned<ClientConnection, std::net::TcpStream>;

    /// Run `server` on an accepted, handshaken `TlsStream` while `client` talks to it
    /// from a thread; returns what `client` returns.
    fn with_session<S, C, R>(server: S, client: C) -> R
    where
        S: AsyncFnOnce(&mut TlsStream),
        C: FnOnce(&mut Client) -> R + Send + 'static,
        R: Send + 'static,
    {
        let pair = configs();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client_config = pair.client;
        let peer = thread::spawn(move || {
            let tcp = std::net::TcpStream::connect(addr).unwrap();
            let name = ServerName::try_from("site.test").unwrap();
            let conn = ClientConnection::new(client_config, name).unwrap();
            let mut stream = StreamOwned::new(conn, tcp);
            client(&mut stream)
        });
        let (std_tcp, _) = listener.accept().unwrap();
        std_tcp.set_nonblocking(true).unwrap();
        let mut runtime = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .build()
            .expect("a monoio runtime");
        runtime.block_on(async move {
            let tcp = monoio::net::TcpStream::from_std(std_tcp).unwrap();
            let Ok(Accepted::Tls { mut stream, .. }) = accept(tcp, pair.server).await else {
                panic!("no TLS session");
            };
            server(&mut stream).await;
        });
        peer.join().expect("the client thread")
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn a_large_write_arrives_whole_and_the_buffer_shrinks_back() {
        let body = pattern(1 << 20);
        let expected = body.clone();
        let got = with_session(
            async move |stream: &mut TlsStream| {
                let (result, _) = stream.write_all(body).await;
                result.unwrap();
                assert!(stream.outgoing.capacity() <= OUTGOING_KEEP);
                let (result, _) = stream.write_all(b"end".to_vec()).await;
                result.unwrap();
                stream.shutdown().await.unwrap();
            },
            |client: &mut Client| {
                let mut got = Vec::new();
                client.read_to_end(&mut got).unwrap();
                got
            },
        );
        assert_eq!(got.len(), expected.len() + 3);
        assert!(got[..expected.len()] == expected[..], "the body differs");
        assert_eq!(&got[expected.len()..], b"end");
    }

    #[test]
    fn every_entry_of_a_vectored_write_is_sent() {
        let got = with_session(
            async |stream: &mut TlsStream| {
                let (result, _, _) = crate::buffer::write_head_body(
                    stream,
                    b"head ".to_vec(),
                    bytes::Bytes::from(pattern(40_000)),
                    crate::buffer::IoVecPair::default(),
                )
                .await;
                result.unwrap();
                stream.shutdown().await.unwrap();
            },
            |client: &mut Client| {
                let mut got = Vec::new();
                client.read_to_end(&mut got).unwrap();
                got
            },
        );
        assert_eq!(&got[..5], b"head ");
        assert!(got[5..] == pattern(40_000)[..]);
    }

    #[test]
    fn reads_take_what_the_client_sent_then_see_close_notify_as_the_end() {
        let upload = pattern(100_000);
        let sent = upload.clone();
        with_session(
            async move |stream: &mut TlsStream| {
                let mut got = Vec::new();
                loop {
                    let (result, buf) = stream.read(Vec::with_capacity(5000)).await;
                    match result.unwrap() {
                        0 => break,
                        _ => got.extend_from_slice(&buf),
                    }
                }
                assert!(got == upload, "the upload differs");
            },
            move |client: &mut Client| {
                client.write_all(&sent).unwrap();
                client.conn.send_close_notify();
                client.flush().unwrap();
            },
        );
    }

    #[test]
    fn a_peer_gone_without_close_notify_is_an_error_not_an_end() {
        with_session(
            async |stream: &mut TlsStream| {
                let (result, buf) = stream.read(Vec::with_capacity(100)).await;
                assert_eq!(result.unwrap(), 5);
                assert_eq!(&buf[..], b"hello");
                let (result, _) = stream.read(Vec::with_capacity(100)).await;
                let error = result.expect_err("a truncated stream must not read as its end");
                assert_eq!(error.kind(), std::io::ErrorKind::UnexpectedEof);
            },
            |client: &mut Client| {
                client.write_all(b"hello").unwrap();
                client.flush().unwrap();
                client.sock.shutdown(std::net::Shutdown::Write).unwrap();
                let mut rest = Vec::new();
                let _ = client.sock.read_to_end(&mut rest);
            },
        );
    }
}
