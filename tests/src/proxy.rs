//! The proxy under test: the real `ringway` binary as a child process.
//!
//! `Ringway::start` writes the config into a private temporary directory, substitutes a free
//! loopback address for every `@LISTEN@`, runs `ringway run -c FILE --workers 1 --driver D
//! --no-pin`, and returns once the address accepts connections. Its stdout (the access log) and
//! stderr are captured. Dropping it sends SIGTERM and, if the process has not exited after a
//! grace period, SIGKILL, so no proxy outlives its test.

use std::fs;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::binary::ringway_binary;
use crate::http::HttpStream;

/// Placeholder in a config for the address `Ringway::start` picks.
pub const LISTEN: &str = "@LISTEN@";

/// How long the listen address may take to accept after the process starts.
const STARTUP_LIMIT: Duration = Duration::from_secs(10);
/// How long a SIGTERM'd proxy may take to drain before it is killed.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How long test clients wait for any single read from the proxy.
pub const CLIENT_PATIENCE: Duration = Duration::from_secs(10);

/// monoio driver, passed as `--driver`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    IoUring,
    Epoll,
}

impl Driver {
    pub fn as_arg(self) -> &'static str {
        match self {
            Driver::IoUring => "io_uring",
            Driver::Epoll => "epoll",
        }
    }
}

/// A directory under the system temp dir, removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("ringway-tests-{}-{n}", std::process::id()));
        fs::create_dir_all(&path).expect("create a temporary directory");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Default for TempDir {
    fn default() -> Self {
        TempDir::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Ports handed out by `free_addr`: below Linux's ephemeral range (32768 and
/// up by default), which port-0 binds and outgoing connections draw from.
const FREE_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A free port on 127.0.0.1 right now, for ringway to bind. Found by binding
/// it and released at once, so it is taken from outside the ephemeral range:
/// there, a connection any test opens meanwhile could be given it (and an
/// admin address, chosen before ringway starts, could never be retried).
/// Each call tries the next port; the process id spreads the test binaries.
pub fn free_addr() -> SocketAddr {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let span = usize::from(FREE_PORTS.end - FREE_PORTS.start);
    let offset = std::process::id() as usize * 97;
    for _ in 0..span {
        let n = (offset + NEXT.fetch_add(1, Ordering::Relaxed)) % span;
        let port = FREE_PORTS.start + n as u16;
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) {
            return listener.local_addr().expect("local address");
        }
    }
    panic!("no free port on 127.0.0.1 in {FREE_PORTS:?}")
}

type Captured = Arc<Mutex<Vec<u8>>>;

/// How a stopped ringway ended.
#[derive(Debug)]
pub struct Exited {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// A running ringway process.
#[derive(Debug)]
pub struct Ringway {
    child: Option<Child>,
    addr: SocketAddr,
    stdout: Captured,
    stderr: Captured,
    readers: Vec<JoinHandle<()>>,
    dir: TempDir,
}

impl Ringway {
    /// Run `config_toml` (with `@LISTEN@` for the address to test) on one worker with `driver`.
    /// Panics, with ringway's stderr, if the proxy does not come up.
    pub fn start(config_toml: &str, driver: Driver) -> Ringway {
        assert!(
            config_toml.contains(LISTEN),
            "the config must listen on {LISTEN}"
        );
        let mut last_error = String::new();
        // A port released by `free_addr` can be taken by someone else before ringway binds it;
        // only that case is retried.
        for _ in 0..3 {
            let dir = TempDir::new();
            let addr = free_addr();
            let config = config_toml.replace(LISTEN, &addr.to_string());
            let file = dir.path().join("ringway.toml");
            fs::write(&file, config).expect("write the config file");
            let args = [
                "run".to_owned(),
                "-c".to_owned(),
                file.display().to_string(),
                "--workers".to_owned(),
                "1".to_owned(),
                "--driver".to_owned(),
                driver.as_arg().to_owned(),
                "--no-pin".to_owned(),
            ];
            match Ringway::spawn(&args, addr, dir) {
                Ok(proxy) => return proxy,
                Err(e) if e.contains("in use") => last_error = e,
                Err(e) => panic!("{e}"),
            }
        }
        panic!("ringway could not bind a free port three times: {last_error}")
    }

    /// Run the binary with `args` in `dir` and wait until `listen` accepts connections.
    pub fn spawn(args: &[String], listen: SocketAddr, dir: TempDir) -> Result<Ringway, String> {
        let mut args = args.to_vec();
        // As root the default pid file is /run/ringway.pid, shared by every test: keep it
        // private to this instance.
        if args.first().is_some_and(|a| a == "run") && !args.iter().any(|a| a == "--pid-file") {
            args.push("--pid-file".to_owned());
            args.push(dir.path().join("ringway.pid").display().to_string());
        }
        // RINGWAY_TEST_ARGS (split on whitespace) is appended to every `run`: the
        // suite can be run again with other tuning, e.g. `--buffer-size 4KiB`.
        if args.first().is_some_and(|a| a == "run")
            && let Ok(extra) = std::env::var("RINGWAY_TEST_ARGS")
        {
            args.extend(extra.split_whitespace().map(str::to_owned));
        }
        let args = args.as_slice();
        let mut child = Command::new(ringway_binary())
            .args(args)
            .current_dir(dir.path())
            // Keeps the default pid file (DESIGN.md §2: $XDG_RUNTIME_DIR when not root) private.
            .env("XDG_RUNTIME_DIR", dir.path())
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start ringway: {e}"))?;
        let stdout = Captured::default();
        let stderr = Captured::default();
        let mut readers = Vec::new();
        if let Some(pipe) = child.stdout.take() {
            readers.push(capture(pipe, Arc::clone(&stdout)));
        }
        if let Some(pipe) = child.stderr.take() {
            readers.push(capture(pipe, Arc::clone(&stderr)));
        }
        let mut proxy = Ringway {
            child: Some(child),
            addr: listen,
            stdout,
            stderr,
            readers,
            dir,
        };
        proxy.wait_ready(args)?;
        Ok(proxy)
    }

    fn wait_ready(&mut self, args: &[String]) -> Result<(), String> {
        let began = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.join_readers();
                return Err(format!(
                    "ringway {args:?} exited with {status} before listening on {}; stderr:\n{}",
                    self.addr,
                    self.stderr()
                ));
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if began.elapsed() > STARTUP_LIMIT {
                return Err(format!(
                    "ringway {args:?} does not accept on {} after {STARTUP_LIMIT:?}; stderr:\n{}",
                    self.addr,
                    self.stderr()
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The directory holding the config file; the process's working directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The pid file `start` gives the instance.
    pub fn pid_file(&self) -> PathBuf {
        self.dir.path().join("ringway.pid")
    }

    /// Replace the config file `start` wrote with `config_toml` (`@LISTEN@` is
    /// this instance's address); the running process sees it on its next reload.
    pub fn rewrite_config(&self, config_toml: &str) {
        let config = config_toml.replace(LISTEN, &self.addr.to_string());
        fs::write(self.dir.path().join("ringway.toml"), config).expect("write the config file");
    }

    /// Run `ringway reload --pid-file ...` against this instance, as an operator would.
    pub fn reload(&self) -> std::process::Output {
        Command::new(ringway_binary())
            .args(["reload", "--pid-file"])
            .arg(self.pid_file())
            .current_dir(self.dir.path())
            .output()
            .expect("run ringway reload")
    }

    /// Everything ringway wrote to stdout so far (the access log with `access = "stdout"`).
    pub fn stdout(&self) -> String {
        let bytes = self.stdout.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Everything ringway wrote to stderr so far.
    pub fn stderr(&self) -> String {
        let bytes = self.stderr.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Peak resident set size of the process (VmHWM in /proc/PID/status), in KiB.
    pub fn vm_hwm_kib(&self) -> u64 {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/PID/status of ringway");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM line in /proc/PID/status")
    }

    /// A new client connection to the proxy.
    pub fn connect(&self) -> HttpStream {
        let stream = TcpStream::connect(self.addr).expect("connect to ringway");
        HttpStream::client(stream, CLIENT_PATIENCE).expect("configure client socket")
    }

    /// A client connection from `source`, another loopback address (any of
    /// 127.0.0.0/8 on Linux), so that ringway sees a different peer.
    pub fn connect_from(&self, source: std::net::IpAddr) -> HttpStream {
        use socket2::{Domain, Socket, Type};
        let socket = Socket::new(Domain::for_address(self.addr), Type::STREAM, None)
            .expect("a client socket");
        socket
            .bind(&SocketAddr::new(source, 0).into())
            .expect("bind the client's source address");
        socket
            .connect(&self.addr.into())
            .expect("connect to ringway");
        HttpStream::client(socket.into(), CLIENT_PATIENCE).expect("configure client socket")
    }

    /// Send SIGTERM without waiting: for tests of the graceful drain.
    pub fn sigterm(&self) {
        let Some(child) = self.child.as_ref() else {
            return;
        };
        let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
        // SAFETY: kill(2) takes no pointers; `pid` is our own child, which is reaped only by
        // `terminate` (it takes `child` first), so the pid still names our process.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }

    /// Send SIGTERM and wait for the exit (SIGKILL after a grace period); returns the exit
    /// status and everything the process wrote.
    pub fn stop(mut self) -> Exited {
        let status = self.terminate();
        Exited {
            status,
            stdout: self.stdout(),
            stderr: self.stderr(),
        }
    }

    fn terminate(&mut self) -> ExitStatus {
        let Some(mut child) = self.child.take() else {
            panic!("ringway was already stopped");
        };
        if let Ok(Some(status)) = child.try_wait() {
            self.join_readers();
            return status;
        }
        let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
        // SAFETY: kill(2) takes no pointers; `pid` is our own child, not yet reaped (try_wait
        // above saw it running), so the pid cannot have been reused by another process.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let began = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if began.elapsed() < SHUTDOWN_GRACE => {
                    thread::sleep(Duration::from_millis(10));
                }
                _ => {
                    let _ = child.kill();
                    break child.wait().expect("wait for killed ringway");
                }
            }
        };
        self.join_readers();
        status
    }

    fn join_readers(&mut self) {
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }
}

impl Drop for Ringway {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.terminate();
        }
        if thread::panicking() {
            let stderr = self.stderr();
            let mut start = stderr.len().saturating_sub(4000);
            while !stderr.is_char_boundary(start) {
                start += 1;
            }
            let tail = &stderr[start..];
            eprintln!("--- ringway stderr (last 4000 bytes) ---\n{tail}\n---");
        }
    }
}

fn capture(mut pipe: impl Read + Send + 'static, into: Captured) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            into.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend_from_slice(&buf[..n]);
        }
    })
}
