//! One client connection's loop: send the request, read the whole response,
//! repeat, at once (closed loop) or at the pacer's next scheduled time (open
//! loop); reconnect after an error, a close, or every request with
//! `--close`. Latency runs from the moment a request is due to the last byte
//! of its response, so it includes the connect when the request needs a new
//! connection. Steady state allocates nothing: the request bytes and the
//! read buffer are lent to the kernel and handed back after each operation.

use std::cell::RefCell;
use std::mem;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use monoio::time::{sleep, timeout, timeout_at};

use super::dial::Dial;
use super::pacer::Pacer;
use super::{ConnPlan, Mode, Timeline, ws};
use crate::report::{ErrorKind, Totals};
use crate::response::parse_response_head;
use crate::socket::{READ_CAPACITY, read_more};

/// Pause after a refused connect or failed handshake, so that a server that
/// is down is not hammered by a busy loop that would only count errors.
pub(super) const CONNECT_RETRY_DELAY: Duration = Duration::from_millis(10);

/// Which of the run's connections this thread drives: `count` slots
/// `first`, `first + step`, ... out of `total`, which set the open-loop
/// phase of each.
#[derive(Debug, Clone, Copy)]
pub(super) struct Slots {
    pub first: usize,
    pub step: usize,
    pub count: usize,
    pub total: usize,
}

/// Runs this thread's connections until the deadline, each connecting
/// with `dial`.
pub(super) async fn run_thread<D: Dial + 'static>(
    plan: Rc<ConnPlan>,
    dial: Rc<D>,
    timeline: Timeline,
    slots: Slots,
) -> Totals {
    let stats = Rc::new(ThreadStats {
        timeline,
        totals: RefCell::new(Totals::default()),
    });
    let deadline = monoio::time::Instant::from_std(timeline.deadline);
    let tasks: Vec<_> = (0..slots.count)
        .map(|k| {
            let plan = Rc::clone(&plan);
            let dial = Rc::clone(&dial);
            let stats = Rc::clone(&stats);
            let pacer = plan.interval.map(|interval| {
                let slot = slots.first + k * slots.step;
                Pacer::new(timeline.start, interval, slot, slots.total)
            });
            // At the deadline the connection is dropped wherever it is: an
            // unfinished exchange is neither a request nor an error.
            monoio::spawn(async move {
                let work = async {
                    match plan.mode {
                        Mode::Http => drive(&plan, &*dial, &stats, pacer).await,
                        Mode::WsEcho { .. } => ws::echo(&plan, &*dial, &stats).await,
                        Mode::WsIdle => {
                            // Handshakes are spread over the first half of
                            // the warmup so as not to overflow the server's
                            // accept queue with thousands of SYNs at once.
                            let warmup = timeline.measure_from - timeline.start;
                            let delay = warmup.mul_f64(0.5 * k as f64 / slots.count as f64);
                            ws::idle(&plan, &*dial, &stats, timeline.start + delay).await;
                        }
                    }
                };
                let _ = timeout_at(deadline, work).await;
            })
        })
        .collect();
    for task in tasks {
        task.await;
    }
    stats.totals.take()
}

/// One thread's counters. Connections of a thread run on one runtime and
/// never hold a borrow across an await, so a `RefCell` is all it needs.
pub(super) struct ThreadStats {
    timeline: Timeline,
    pub(super) totals: RefCell<Totals>,
}

impl ThreadStats {
    /// Whether an exchange from `started` to `ended` is inside the
    /// measured window.
    pub(super) fn measured(&self, started: Instant, ended: Instant) -> bool {
        started >= self.timeline.measure_from && ended <= self.timeline.deadline
    }

    /// Counts a complete response if its request started after warmup and
    /// it ended inside the measured window.
    fn response(&self, started: Instant, ended: Instant, exchanged: &Exchanged) {
        if !self.measured(started, ended) {
            return;
        }
        let mut totals = self.totals.borrow_mut();
        totals.histogram.record(ended - started);
        totals.requests += 1;
        totals.bytes_read += exchanged.bytes_read;
        totals.bytes_written += exchanged.bytes_written;
        if !exchanged.success {
            totals.errors.count(ErrorKind::Status);
        }
    }

    /// Counts an echoed WebSocket message, as `response` counts a response.
    pub(super) fn message(&self, started: Instant, ended: Instant, sent: u64, received: u64) {
        if !self.measured(started, ended) {
            return;
        }
        let mut totals = self.totals.borrow_mut();
        totals.histogram.record(ended - started);
        totals.requests += 1;
        totals.bytes_read += received;
        totals.bytes_written += sent;
    }

    /// Counts an idle WebSocket's opening handshake, whenever in the run it
    /// happened: idle connections open during warmup by design.
    pub(super) fn handshake(&self, started: Instant, ended: Instant) {
        let mut totals = self.totals.borrow_mut();
        totals.histogram.record(ended - started);
        totals.requests += 1;
    }

    /// Counts an error whenever in the run it happened.
    pub(super) fn count_error(&self, kind: ErrorKind) {
        self.totals.borrow_mut().errors.count(kind);
    }

    pub(super) fn error(&self, kind: ErrorKind) {
        let now = Instant::now();
        if now >= self.timeline.measure_from && now <= self.timeline.deadline {
            self.totals.borrow_mut().errors.count(kind);
        }
    }
}

/// The loop of one connection slot; it only ends by being dropped.
async fn drive<D: Dial>(plan: &ConnPlan, dial: &D, stats: &ThreadStats, mut pacer: Option<Pacer>) {
    let mut request = plan.request.clone();
    let mut buf = BytesMut::with_capacity(READ_CAPACITY);
    // After a failed connect the same request is still due: its clock keeps
    // running from its scheduled time.
    let mut pending = None;
    loop {
        let mut started = match pending.take() {
            Some(started) => started,
            None => due(&mut pacer).await,
        };
        let stream = match timeout(plan.timeout, dial.dial(plan.addr)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(kind)) => {
                stats.error(kind);
                sleep(CONNECT_RETRY_DELAY).await;
                pending = pacer.is_some().then_some(started);
                continue;
            }
            Err(_) => {
                stats.error(ErrorKind::Timeout);
                pending = pacer.is_some().then_some(started);
                continue;
            }
        };
        buf.clear();
        let mut conn = Connection {
            stream,
            request,
            buf,
            is_head: plan.is_head,
        };
        loop {
            let outcome = timeout(plan.timeout, conn.exchange()).await;
            let ended = Instant::now();
            match outcome {
                Ok(Ok(exchanged)) => {
                    stats.response(started, ended, &exchanged);
                    if !exchanged.keep_alive || plan.close {
                        break;
                    }
                }
                Ok(Err(kind)) => {
                    stats.error(kind);
                    break;
                }
                Err(_) => {
                    stats.error(ErrorKind::Timeout);
                    break;
                }
            }
            started = match &mut pacer {
                Some(pacer) => pacer.wait().await,
                None => ended,
            };
        }
        (request, buf) = conn.into_parts(plan);
    }
}

/// When the next request is due: now in a closed loop, at its scheduled
/// time in an open one.
async fn due(pacer: &mut Option<Pacer>) -> Instant {
    match pacer {
        Some(pacer) => pacer.wait().await,
        None => Instant::now(),
    }
}

/// What one complete exchange yielded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Exchanged {
    /// Head and body bytes of the response (interim 1xx heads included).
    bytes_read: u64,
    bytes_written: u64,
    success: bool,
    keep_alive: bool,
}

struct Connection<S> {
    stream: S,
    request: Bytes,
    /// Bytes read and not yet consumed; kept between exchanges.
    buf: BytesMut,
    is_head: bool,
}

impl<S: AsyncReadRent + AsyncWriteRent> Connection<S> {
    /// Sends the request and reads its response to the end of the body.
    async fn exchange(&mut self) -> Result<Exchanged, ErrorKind> {
        let (written, request) = self.stream.write_all(mem::take(&mut self.request)).await;
        self.request = request;
        let bytes_written = written.map_err(|_| ErrorKind::Io)? as u64;

        let mut bytes_read = 0u64;
        let head = loop {
            match parse_response_head(&self.buf, self.is_head) {
                Ok(Some(head)) if head.is_interim() => {
                    self.buf.advance(head.head_len);
                    bytes_read += head.head_len as u64;
                }
                Ok(Some(head)) => break head,
                Ok(None) => self.fill().await?,
                Err(_) => return Err(ErrorKind::Protocol),
            }
        };
        self.buf.advance(head.head_len);
        bytes_read += head.head_len as u64;

        let mut body = head.body;
        loop {
            let progress = body.decode(&self.buf).map_err(|_| ErrorKind::Protocol)?;
            self.buf.advance(progress.consumed);
            bytes_read += progress.consumed as u64;
            if progress.done {
                break;
            }
            match read_more(&mut self.stream, &mut self.buf).await {
                Ok(0) => {
                    // A close-delimited body ends here; any other is cut short.
                    body.finish_on_eof().map_err(|_| ErrorKind::Io)?;
                    return Ok(Exchanged {
                        bytes_read,
                        bytes_written,
                        success: head.is_success(),
                        keep_alive: false,
                    });
                }
                Ok(_) => {}
                Err(_) => return Err(ErrorKind::Io),
            }
        }
        Ok(Exchanged {
            bytes_read,
            bytes_written,
            success: head.is_success(),
            keep_alive: head.keep_alive,
        })
    }

    /// Reads more of a head; the server closing first is an I/O error.
    async fn fill(&mut self) -> Result<(), ErrorKind> {
        match read_more(&mut self.stream, &mut self.buf).await {
            Ok(0) | Err(_) => Err(ErrorKind::Io),
            Ok(_) => Ok(()),
        }
    }

    /// Takes back the request and buffer for the next connection. A timeout
    /// that dropped an exchange mid-operation leaves them with the kernel,
    /// so they are made anew then (error path only).
    fn into_parts(self, plan: &ConnPlan) -> (Bytes, BytesMut) {
        let request = if self.request.is_empty() {
            plan.request.clone()
        } else {
            self.request
        };
        let buf = if self.buf.capacity() == 0 {
            BytesMut::with_capacity(READ_CAPACITY)
        } else {
            self.buf
        };
        (request, buf)
    }
}
