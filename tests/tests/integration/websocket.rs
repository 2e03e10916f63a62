//! WebSockets and other upgrades (DESIGN.md §1, §2.1 `idle_timeout`,
//! `websocket`): handshakes checked and forwarded, 101 relayed, both sockets
//! joined byte-exact in both directions with half-close, idle timeouts, and
//! refusals that keep the connection HTTP.

use std::fs;
use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use ringway_tests::ws::{self, SWITCHING};
use ringway_tests::{Driver, LISTEN, Ringway, app_config, both_drivers, pseudo_random_body};
use tungstenite::Message;

both_drivers!(
    text_and_binary_frames_echo,
    large_messages_arrive_byte_exact,
    thousand_concurrent_connections_echo,
    idle_timeout_closes_only_the_short_route,
    client_half_close_keeps_the_reply_flowing,
    upstream_half_close_keeps_the_request_flowing,
    refused_upgrade_is_relayed_and_the_connection_stays_http,
    abrupt_client_close_leaks_no_descriptor,
    bad_handshakes_never_reach_the_upstream,
    websocket_false_answers_403,
    bytes_pipelined_around_the_handshake_arrive,
    jatos_example_websocket_routes,
    sigterm_drains_tunnels_until_shutdown_timeout_and_logs_101,
);

fn proxy(upstream: &ws::Upstream, driver: Driver) -> Ringway {
    let routes = "[[server.route]]\nprefix = \"/\"\nproxy = \"app\"\n";
    Ringway::start(&app_config(upstream.addr(), routes), driver)
}

fn text_and_binary_frames_echo(driver: Driver) {
    let upstream = ws::echo_upstream();
    let proxy = proxy(&upstream, driver);
    let mut client = ws::connect(proxy.addr(), "/chat");
    ws::echo(&mut client, Message::text("hello through ringway"));
    ws::echo(&mut client, Message::binary(vec![0u8, 1, 2, 0xfe, 0xff]));
    ws::echo(&mut client, Message::text(""));
    client.close(None).expect("close");
    // The close handshake completes through the tunnel.
    loop {
        match client.read() {
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("close handshake: {e}"),
        }
    }
}

fn large_messages_arrive_byte_exact(driver: Driver) {
    let upstream = ws::echo_upstream();
    let proxy = proxy(&upstream, driver);
    let mut client = ws::connect(proxy.addr(), "/big");
    for (len, seed) in [(1 << 20, 1), (16 << 20, 2)] {
        ws::echo(&mut client, Message::binary(pseudo_random_body(len, seed)));
    }
}

fn thousand_concurrent_connections_echo(driver: Driver) {
    let upstream = ws::echo_upstream();
    let proxy = proxy(&upstream, driver);
    let addr = proxy.addr();
    // 10 threads, each holding 100 connections open at once.
    thread::scope(|scope| {
        for t in 0..10u64 {
            scope.spawn(move || {
                let mut clients: Vec<_> = (0..100).map(|_| ws::connect(addr, "/many")).collect();
                for (i, client) in clients.iter_mut().enumerate() {
                    let text = format!("thread {t} connection {i}");
                    client.send(Message::text(text)).expect("send");
                }
                for (i, client) in clients.iter_mut().enumerate() {
                    let back = client.read().expect("echo");
                    assert_eq!(back, Message::text(format!("thread {t} connection {i}")));
                }
            });
        }
    });
    assert_eq!(upstream.accepted(), 1000);
}

fn idle_timeout_closes_only_the_short_route(driver: Driver) {
    let upstream = ws::echo_upstream();
    let routes = "[[server.route]]\nprefix = \"/short\"\nproxy = \"app\"\nidle_timeout = \"1s\"\n\
                  [[server.route]]\nprefix = \"/long\"\nproxy = \"app\"\nidle_timeout = \"1h\"\n";
    let proxy = Ringway::start(&app_config(upstream.addr(), routes), driver);
    let mut short = ws::connect(proxy.addr(), "/short");
    let mut long = ws::connect(proxy.addr(), "/long");
    // Traffic resets the timer: 3 messages 0.6s apart outlive a 1s timeout.
    for i in 0..3 {
        thread::sleep(Duration::from_millis(600));
        ws::echo(&mut short, Message::text(format!("keep {i}")));
    }
    thread::sleep(Duration::from_millis(1600));
    let started = Instant::now();
    match short.read() {
        Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
            panic!("idle tunnel still open after its idle_timeout")
        }
        Err(_) => {}
        Ok(msg) => panic!("unexpected message on an idle tunnel: {msg:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    ws::echo(&mut long, Message::text("still here"));
}

fn client_half_close_keeps_the_reply_flowing(driver: Driver) {
    // The upstream reads to end of stream, then answers with what it got.
    let upstream = ws::raw_upstream(|mut stream, _| {
        ws::send(&mut stream, SWITCHING);
        let (got, ended) = ws::read_to_end(&mut stream, Duration::from_secs(10));
        assert!(ended, "upstream never saw the client's end of stream");
        let mut reply = b"got: ".to_vec();
        reply.extend_from_slice(&got);
        ws::send(&mut stream, &reply);
    });
    let proxy = proxy(&upstream, driver);
    let mut client = TcpStream::connect(proxy.addr()).expect("connect");
    ws::send(&mut client, ws::handshake("/half").as_bytes());
    let head = ws::read_head(&mut client).expect("101 head");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    ws::send(&mut client, b"last words");
    client.shutdown(Shutdown::Write).expect("shutdown");
    let (reply, ended) = ws::read_to_end(&mut client, Duration::from_secs(10));
    assert_eq!(reply, b"got: last words");
    assert!(ended, "the tunnel did not close after both sides ended");
}

fn upstream_half_close_keeps_the_request_flowing(driver: Driver) {
    // The upstream says its piece and ends its stream, then still reads.
    let upstream = ws::raw_upstream(|mut stream, _| {
        ws::send(&mut stream, SWITCHING);
        ws::send(&mut stream, b"bye from upstream");
        stream.shutdown(Shutdown::Write).expect("shutdown");
        let (got, ended) = ws::read_to_end(&mut stream, Duration::from_secs(10));
        assert!(ended);
        assert_eq!(got, b"client still talking");
    });
    let proxy = proxy(&upstream, driver);
    let mut client = TcpStream::connect(proxy.addr()).expect("connect");
    ws::send(&mut client, ws::handshake("/half").as_bytes());
    let head = ws::read_head(&mut client).expect("101 head");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let (got, ended) = ws::read_to_end(&mut client, Duration::from_secs(10));
    assert_eq!(got, b"bye from upstream");
    assert!(ended, "the upstream's end of stream was not passed on");
    // The other direction still flows after the upstream's half-close.
    ws::send(&mut client, b"client still talking");
    client.shutdown(Shutdown::Write).expect("shutdown");
    let (rest, _) = ws::read_to_end(&mut client, Duration::from_secs(10));
    assert!(rest.is_empty());
}

fn refused_upgrade_is_relayed_and_the_connection_stays_http(driver: Driver) {
    let upstream = ws::raw_upstream(|mut stream, head| {
        // Upgrade and Connection: upgrade reach the upstream.
        let lower = head.to_ascii_lowercase();
        assert!(lower.contains("\r\nupgrade: websocket\r\n"), "{head}");
        assert!(lower.contains("\r\nconnection: upgrade\r\n"), "{head}");
        ws::send(
            &mut stream,
            b"HTTP/1.1 403 Forbidden\r\nContent-Length: 6\r\n\r\nno ws\n",
        );
        let _ = ws::read_to_end(&mut stream, Duration::from_secs(5));
    });
    let routes = "[[server.route]]\nprefix = \"/ws\"\nproxy = \"app\"\n\
                  [[server.route]]\npath = \"/after\"\nrespond = 200\nbody = \"plain http\"\n";
    let proxy = Ringway::start(&app_config(upstream.addr(), routes), driver);
    let mut client = proxy.connect();
    let first = client.roundtrip(ws::handshake("/ws").as_bytes());
    assert_eq!(first.status, 403);
    assert_eq!(first.body, b"no ws\n");
    let second = client.roundtrip(b"GET /after HTTP/1.1\r\nHost: ws.test\r\n\r\n");
    assert_eq!(second.status, 200);
    assert_eq!(second.body, b"plain http");
}

fn fd_count(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read /proc/PID/fd")
        .count()
}

fn abrupt_client_close_leaks_no_descriptor(driver: Driver) {
    let upstream = ws::raw_upstream(|mut stream, _| {
        ws::send(&mut stream, SWITCHING);
        let (_, ended) = ws::read_to_end(&mut stream, Duration::from_secs(10));
        assert!(ended, "upstream side not closed after the client vanished");
    });
    let proxy = proxy(&upstream, driver);
    // Warm up (pipes pooled, lazy allocations made) before counting.
    let mut warm = TcpStream::connect(proxy.addr()).expect("connect");
    ws::send(&mut warm, ws::handshake("/warm").as_bytes());
    ws::read_head(&mut warm).expect("101 head");
    ws::send(&mut warm, b"warm");
    drop(warm);
    thread::sleep(Duration::from_millis(300));
    let before = fd_count(proxy.pid());
    for _ in 0..20 {
        let mut client = TcpStream::connect(proxy.addr()).expect("connect");
        ws::send(&mut client, ws::handshake("/abrupt").as_bytes());
        ws::read_head(&mut client).expect("101 head");
        ws::send(&mut client, b"some bytes in flight");
        // Reset instead of a clean close.
        socket_linger_zero(&client);
        drop(client);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while fd_count(proxy.pid()) > before && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    // Pooled pipes closed after an error can leave the count below `before`.
    let after = fd_count(proxy.pid());
    assert!(
        after <= before,
        "descriptors leaked: {before} before, {after} after"
    );
}

/// SO_LINGER 0, so that closing `stream` sends a reset.
fn socket_linger_zero(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt reads `linger`, which lives across the call, on the
    // open socket of `stream`.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
}

fn bad_handshakes_never_reach_the_upstream(driver: Driver) {
    let upstream = ws::echo_upstream();
    let proxy = proxy(&upstream, driver);
    let mut client = proxy.connect();
    let missing_key = "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                       Sec-WebSocket-Version: 13\r\n\r\n";
    assert_eq!(client.roundtrip(missing_key.as_bytes()).status, 400);
    let bad_version = ws::handshake("/ws").replace("Version: 13", "Version: 8");
    let refused = client.roundtrip(bad_version.as_bytes());
    assert_eq!(refused.status, 426);
    assert_eq!(refused.header("sec-websocket-version"), Some("13"));
    let bad_key = ws::handshake("/ws").replace(ws::KEY, "c2hvcnQ=");
    assert_eq!(client.roundtrip(bad_key.as_bytes()).status, 400);
    assert_eq!(upstream.accepted(), 0);
}

fn websocket_false_answers_403(driver: Driver) {
    let upstream = ws::echo_upstream();
    let routes = "[[server.route]]\nprefix = \"/\"\nproxy = \"app\"\nwebsocket = false\n";
    let proxy = Ringway::start(&app_config(upstream.addr(), routes), driver);
    let mut client = proxy.connect();
    assert_eq!(client.roundtrip(ws::handshake("/").as_bytes()).status, 403);
    assert_eq!(upstream.accepted(), 0);
}

fn bytes_pipelined_around_the_handshake_arrive(driver: Driver) {
    // The upstream sends its first bytes in the same write as the 101.
    let upstream = ws::raw_upstream(|mut stream, _| {
        let mut first = SWITCHING.to_vec();
        first.extend_from_slice(b"hello early client");
        ws::send(&mut stream, &first);
        let got = ws::read_exact(&mut stream, b"hello early upstream".len()).expect("read");
        assert_eq!(got, b"hello early upstream");
        ws::send(&mut stream, b"ack");
        let _ = ws::read_to_end(&mut stream, Duration::from_secs(5));
    });
    let proxy = proxy(&upstream, driver);
    let mut client = TcpStream::connect(proxy.addr()).expect("connect");
    // The client's first bytes ride in the handshake's own write.
    let mut first = ws::handshake("/early").into_bytes();
    first.extend_from_slice(b"hello early upstream");
    client.write_all(&first).expect("write");
    let head = ws::read_head(&mut client).expect("101 head");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let got = ws::read_exact(&mut client, b"hello early client".len()).expect("read");
    assert_eq!(got, b"hello early client");
    assert_eq!(ws::read_exact(&mut client, 3).expect("ack"), b"ack");
}

fn jatos_example_websocket_routes(driver: Driver) {
    let upstream = ws::echo_upstream();
    let example = fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/jatos.toml"
    ))
    .expect("read examples/jatos.toml");
    let config = example
        .replace("0.0.0.0:80", LISTEN)
        .replace("127.0.0.1:9000", &upstream.addr().to_string())
        .replace("\"/var/log/ringway/access.log\"", "\"off\"")
        .replace("names = [\"www.example.com\"]", "");
    let proxy = Ringway::start(&config, driver);
    for path in [
        "/publix/123/group/join",
        "/publix/123/batch/open",
        "/jatos/testWebSocket",
    ] {
        let mut client = ws::connect(proxy.addr(), path);
        ws::echo(&mut client, Message::text(format!("JATOS channel {path}")));
    }
}

fn sigterm_drains_tunnels_until_shutdown_timeout_and_logs_101(driver: Driver) {
    let upstream = ws::echo_upstream();
    let config = format!(
        "[runtime]\nshutdown_timeout = \"2s\"\n{}",
        app_config(
            upstream.addr(),
            "[[server.route]]\nprefix = \"/\"\nproxy = \"app\"\n"
        )
    )
    .replace("access = \"off\"", "access = \"stdout\"");
    let proxy = Ringway::start(&config, driver);
    let mut client = ws::connect(proxy.addr(), "/drain");
    ws::echo(&mut client, Message::text("before"));
    let stopping = Instant::now();
    proxy.sigterm();
    thread::sleep(Duration::from_millis(500));
    ws::echo(&mut client, Message::text("during"));
    assert!(client.read().is_err(), "the tunnel outlived the drain");
    let closed_after = stopping.elapsed();
    assert!(
        closed_after > Duration::from_millis(1500) && closed_after < Duration::from_secs(4),
        "closed after {closed_after:?}, shutdown_timeout is 2s"
    );
    let exited = proxy.stop();
    assert!(exited.status.success(), "{}", exited.status);
    // One line, written when the tunnel ended: 101 and the bytes sent to the
    // client through it (two 8-byte text frames).
    let line = "\"GET /drain HTTP/1.1\" 101 16 ";
    assert_eq!(
        exited.stdout.matches(line).count(),
        1,
        "{line:?} in:\n{}",
        exited.stdout
    );
}
