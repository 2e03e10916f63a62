//! An established TLS session over a socket: rustls's `ServerConnection`
//! driven with owned buffers on monoio.
//!
//! It replaces monoio-rustls's stream, which sends through a fixed 16 KiB
//! buffer: a large body then left in one write per TLS record. Here every
//! record rustls has ready goes out in one write (up to rustls's 64 KiB of
//! pending output), a vector of buffers is encrypted as one run of records
//! (a response head and the body behind it share them). The outgoing buffer
//! is sized for a large write before rustls fills it, kept while writes stay
//! large, and returns to its usual size after them (or when the response
//! ends, `release`), so an idle connection does not keep it.
//!
//! Reads start at one record's worth (16 KiB) and grow to 64 KiB while they
//! fill their buffer (an upload); rustls refuses to hold more than 16 KiB of
//! received plaintext that has not been read, so the bytes read are handed
//! to it a record at a time as its plaintext is taken, and one call takes
//! the plaintext of as many records as fit in the caller's buffer.

use std::io::{self, Read, Write};

use monoio::BufResult;
use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, Split};
use monoio::net::TcpStream;
use rustls::ServerConnection;

/// Bytes read from the socket at a time: at first, and at most.
const READ_MIN: usize = 16 * 1024;
const READ_MAX: usize = 64 * 1024;
/// The outgoing buffer kept between writes: a full record and its overhead.
pub(super) const OUTGOING_KEEP: usize = 17 * 1024;
/// Plaintext per TLS record, and an upper bound of what a record adds to it
/// (header, tag, content type; TLS 1.2's explicit nonce).
const RECORD_PLAINTEXT: usize = 16 * 1024;
const RECORD_OVERHEAD: usize = 32;

pub struct TlsStream {
    io: TcpStream,
    conn: ServerConnection,
    /// TLS bytes read from the socket (owned by the runtime while a read is
    /// in flight); those before `fed` have been handed to rustls.
    incoming: Vec<u8>,
    fed: usize,
    /// The size of the next read from the socket.
    read_size: usize,
    /// An error found while taking more plaintext for a read that already
    /// had some: the next read reports it.
    deferred: Option<io::Error>,
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
        incoming.reserve(READ_MIN);
        outgoing.clear();
        outgoing.reserve(OUTGOING_KEEP);
        TlsStream {
            io,
            conn,
            incoming,
            fed: 0,
            read_size: READ_MIN,
            deferred: None,
            outgoing,
        }
    }

    /// Hand rustls what was read and not yet fed, up to the first record
    /// whose plaintext is ready (more would exceed its plaintext limit).
    fn feed(&mut self) -> io::Result<()> {
        let mut rest = &self.incoming[self.fed..];
        let result = loop {
            if rest.is_empty() {
                break Ok(());
            }
            match self.conn.read_tls(&mut rest) {
                Ok(0) => break Err(io::Error::other("rustls took no TLS bytes")),
                Ok(_) => {}
                Err(e) => break Err(e),
            }
            match self.conn.process_new_packets() {
                Ok(state) if state.plaintext_bytes_to_read() > 0 => break Ok(()),
                Ok(_) => {}
                Err(e) => break Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
        };
        self.fed = self.incoming.len() - rest.len();
        result
    }

    /// Feed rustls more: bytes already read, else one read from the socket.
    /// Returns false at end of stream (rustls is told, and reports it on the
    /// next look at its plaintext).
    async fn read_tls(&mut self) -> io::Result<bool> {
        if self.fed < self.incoming.len() {
            self.feed()?;
            return Ok(true);
        }
        let mut incoming = std::mem::take(&mut self.incoming);
        incoming.clear();
        self.fed = 0;
        // Reserving also restores a buffer a cancelled read took with it.
        incoming.reserve(self.read_size);
        let (result, incoming) = self.io.read(incoming).await;
        self.incoming = incoming;
        let n = result?;
        if n == 0 {
            self.conn.read_tls(&mut io::empty())?;
            self.conn
                .process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            return Ok(false);
        }
        if n == self.incoming.capacity() && self.read_size < READ_MAX {
            self.read_size = (self.read_size * 2).min(READ_MAX);
        } else if n < READ_MIN && self.read_size > READ_MIN {
            // The large transfer is over: go back to the usual buffer once
            // these bytes are fed.
            self.read_size = READ_MIN;
        }
        self.feed()?;
        if self.read_size == READ_MIN
            && self.fed == self.incoming.len()
            && self.incoming.capacity() > READ_MIN + READ_MIN / 2
        {
            self.incoming = Vec::with_capacity(READ_MIN);
            self.fed = 0;
        }
        Ok(true)
    }

    /// Plaintext into `into`: what rustls holds, then as many more records as
    /// were already read and fit. 0 is the end of the stream.
    async fn read_plain(&mut self, into: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = self.deferred.take() {
            return Err(e);
        }
        let mut filled = 0;
        loop {
            match self.take_plaintext(&mut into[filled..]) {
                // A clean end, or `into` is full.
                Some(Ok(0)) => return Ok(filled),
                Some(Ok(n)) => {
                    filled += n;
                    continue;
                }
                Some(Err(e)) if filled == 0 => return Err(e),
                Some(Err(e)) => {
                    self.deferred = Some(e);
                    return Ok(filled);
                }
                None => {}
            }
            if filled > 0 {
                // More only from bytes already read: never wait with some in hand.
                if self.fed == self.incoming.len() {
                    return Ok(filled);
                }
                if let Err(e) = self.feed() {
                    self.deferred = Some(e);
                    return Ok(filled);
                }
                continue;
            }
            if !self.read_tls().await? {
                // rustls knows the stream ended: what it says now is final
                // (0 after close_notify, an error without one).
                return self.take_plaintext(into).unwrap_or(Ok(0));
            }
        }
    }

    /// Send every record rustls has ready, in one write per batch. A large
    /// buffer is kept while batches stay large (a body on its way); the first
    /// small batch after them, or `release`, gives it back.
    async fn write_tls(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            let mut outgoing = std::mem::take(&mut self.outgoing);
            outgoing.clear();
            self.conn.write_tls(&mut outgoing)?;
            let batch = outgoing.len();
            let (result, outgoing) = self.io.write_all(outgoing).await;
            self.outgoing = outgoing;
            if batch <= OUTGOING_KEEP {
                self.release();
            }
            result?;
        }
        Ok(())
    }

    /// Return the outgoing buffer to its usual size, at the end of a large
    /// response: an idle connection keeps no more than that.
    pub fn release(&mut self) {
        if self.outgoing.capacity() > OUTGOING_KEEP {
            self.outgoing = Vec::with_capacity(OUTGOING_KEEP);
        }
    }

    /// Plaintext the session already holds, copied into `into`; `None` when
    /// it holds none and more must be read, `Some(Ok(0))` once the peer
    /// closed the session cleanly.
    fn take_plaintext(&mut self, into: &mut [u8]) -> Option<io::Result<usize>> {
        if into.is_empty() {
            return Some(Ok(0));
        }
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
        // Records for `n` bytes, in a buffer sized for them at once rather
        // than grown (and copied) as they are written into it.
        let records = n.div_ceil(RECORD_PLAINTEXT).max(1);
        let need = n + records * RECORD_OVERHEAD;
        if self.outgoing.capacity() < need {
            self.outgoing = Vec::with_capacity(need);
        }
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
        let result = self.read_plain(into).await;
        if let Ok(n) = result {
            // SAFETY: rustls wrote `n` bytes at the start of the buffer.
            unsafe { buf.set_init(n) };
        }
        (result, buf)
    }

    async fn readv<T: IoVecBufMut>(&mut self, mut buf: T) -> BufResult<usize, T> {
        // Into the first entry of the vector, as a plain read would.
        if buf.write_iovec_len() == 0 {
            return (Ok(0), buf);
        }
        // SAFETY: the vector has at least one valid entry while we own `buf`.
        let first = unsafe { *buf.write_iovec_ptr() };
        // SAFETY: the entry points at `iov_len` writable bytes.
        let into =
            unsafe { std::slice::from_raw_parts_mut(first.iov_base.cast::<u8>(), first.iov_len) };
        let result = self.read_plain(into).await;
        if let Ok(n) = result {
            // SAFETY: rustls wrote `n` bytes into the first entry.
            unsafe { buf.set_init(n) };
        }
        (result, buf)
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

    use monoio::buf::IoBuf;
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

    /// The client side of a test that only receives: everything until close_notify.
    fn read_all(client: &mut Client) -> Vec<u8> {
        let mut got = Vec::new();
        client.read_to_end(&mut got).unwrap();
        got
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn large_writes_in_a_row_share_one_outgoing_buffer() {
        let chunk = pattern(64 * 1024);
        let expected = [&chunk[..], &chunk[..], b"end"].concat();
        let got = with_session(
            async move |stream: &mut TlsStream| {
                let (result, chunk) = stream.write(chunk).await;
                let first = result.unwrap();
                assert!(first > OUTGOING_KEEP, "took {first}");
                let buffer = stream.outgoing.as_ptr();
                assert!(stream.outgoing.capacity() > OUTGOING_KEEP);
                let (result, rest) = stream.write_all(chunk.slice(first..)).await;
                result.unwrap();
                // The next went out through the same allocation.
                let (result, chunk) = stream.write(rest.into_inner()).await;
                let second = result.unwrap();
                assert!(second > OUTGOING_KEEP, "took {second}");
                assert_eq!(stream.outgoing.as_ptr(), buffer);
                let (result, _) = stream.write_all(chunk.slice(second..)).await;
                result.unwrap();
                // A small write after them gives the large buffer back.
                let (result, _) = stream.write_all(b"end".to_vec()).await;
                result.unwrap();
                assert!(stream.outgoing.capacity() <= OUTGOING_KEEP);
                stream.shutdown().await.unwrap();
            },
            read_all,
        );
        assert!(got == expected, "the bytes differ");
    }

    #[test]
    fn a_large_write_arrives_whole_and_the_buffer_shrinks_back() {
        let body = pattern(1 << 20);
        let expected = body.clone();
        let got = with_session(
            async move |stream: &mut TlsStream| {
                let (result, _) = stream.write_all(body).await;
                result.unwrap();
                stream.release();
                assert!(stream.outgoing.capacity() <= OUTGOING_KEEP);
                let (result, _) = stream.write_all(b"end".to_vec()).await;
                result.unwrap();
                stream.shutdown().await.unwrap();
            },
            read_all,
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
            read_all,
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
                // Until the server is done: closing with its session tickets
                // unread would reset the connection under its reads.
                let mut rest = Vec::new();
                let _ = client.sock.read_to_end(&mut rest);
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
