//! One timer per connection for the deadlines of all its reads and writes.
//!
//! Wrapping each operation in `monoio::time::timeout` inserts a timer into
//! the wheel and removes it again, four times per proxied request. Here a
//! connection keeps one timer, armed no later than the deadline of the
//! operation in progress: an operation whose deadline is later than the armed
//! one changes nothing, and when the timer fires early the operation's own
//! deadline is checked and the timer re-armed to it. With the usual timeouts
//! (seconds to minutes) the wheel is touched about once per timeout period
//! instead of once per operation.
//!
//! Every wait of a connection's task goes through it: the TLS handshake, the
//! upstream connect, the request body, the lingering close. A timer of
//! monoio's own (`monoio::time::timeout`) anywhere in the task would also
//! give the whole task future the timer's 128-byte alignment: monoio then
//! puts the future 128 bytes past its task header, and every poll reads one
//! cache line more for its stage (callgrind: about 5 first-level data
//! misses per proxied request).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use monoio::time::{Sleep, sleep_until};

use crate::clock::{Clock, Stamp};

/// An operation did not complete before its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

pub struct Deadline<'c> {
    /// Made by the first operation: a connection that never gets that far
    /// costs no timer.
    timer: Option<Pin<Box<Sleep>>>,
    /// When `timer` fires.
    armed: Stamp,
    /// The worker's clock, whose stamps the deadlines are.
    clock: &'c Clock,
    /// `timer` has been polled since it was last armed, so it holds the
    /// task's waker: until it fires there is nothing to ask it.
    polled: bool,
}

impl<'c> Deadline<'c> {
    /// Deadlines are stamps of `clock`.
    pub fn new(clock: &'c Clock) -> Deadline<'c> {
        Deadline {
            timer: None,
            armed: Stamp::default(),
            clock,
            polled: false,
        }
    }

    /// Run `op`, failing with `Elapsed` (and dropping `op`, which cancels its
    /// I/O) if it has not completed by `at`: the worker's recent time plus
    /// the operation's limit (`Clock::recent`). A future of its own rather
    /// than an `async fn`, so that `op` is not moved once more.
    pub fn run<F: Future>(&mut self, at: Stamp, op: F) -> Run<'_, 'c, F> {
        if self.timer.is_none() || at < self.armed {
            self.arm(at);
        }
        Run {
            deadline: self,
            at,
            op,
        }
    }

    /// Make the task wake by `at` at the latest, whatever it is waiting
    /// for: an operation run after this fails at its own deadline all the
    /// same, and is polled again at `at` (see `behind`).
    pub fn wake_by(&mut self, at: Stamp) {
        if self.timer.is_none() || at < self.armed {
            self.arm(at);
        }
    }

    fn arm(&mut self, at: Stamp) {
        let at_monoio = monoio::time::Instant::from_std(at.instant(self.clock.base()));
        match self.timer.as_mut() {
            Some(timer) => timer.as_mut().reset(at_monoio),
            None => self.timer = Some(Box::pin(sleep_until(at_monoio))),
        }
        self.armed = at;
        self.polled = false;
    }
}

/// The future of `Deadline::run`.
pub struct Run<'d, 'c, F> {
    deadline: &'d mut Deadline<'c>,
    at: Stamp,
    op: F,
}

impl<F: Future> Future for Run<'_, '_, F> {
    type Output = Result<F::Output, Elapsed>;

    // Inlined into each operation's future, as profile-guided builds do:
    // 120 instructions less per proxied request (callgrind, wrk).
    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `op` is pinned with `self` and never moved out of it; the
        // other fields are plain data and a reference, never pinned.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: see above; `op` stays where it is until `self` is dropped.
        let op = unsafe { Pin::new_unchecked(&mut this.op) };
        if let Poll::Ready(output) = op.poll(cx) {
            return Poll::Ready(Ok(output));
        }
        let deadline = &mut *this.deadline;
        // A timer fires in the worker's wait for events, at or after its
        // deadline (monoio rounds deadlines up to the next millisecond, the
        // time it fires at down); this pass's reading of the clock was taken
        // after that wait. Earlier than `armed`, it says that the timer has
        // not fired without reading the timer's entry: a cache line less per
        // wake-up of a task among many (callgrind).
        if deadline.polled
            && (deadline.clock.now() < deadline.armed
                || deadline.timer.as_ref().is_some_and(|t| !t.is_elapsed()))
        {
            return Poll::Pending;
        }
        while let Some(timer) = deadline.timer.as_mut()
            && timer.as_mut().poll(cx).is_ready()
        {
            if deadline.clock.exact() >= this.at {
                return Poll::Ready(Err(Elapsed));
            }
            // Armed for an earlier operation: wait for this one's deadline.
            deadline.arm(this.at);
        }
        deadline.polled = deadline.timer.is_some();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{Deadline, Elapsed};
    use crate::clock::Clock;

    /// A clock of the test's thread for its whole life, as a worker's is.
    fn clock() -> &'static Clock {
        thread_local! {
            static CLOCK: &'static Clock = Box::leak(Box::new(Clock::new()));
        }
        CLOCK.with(|clock| *clock)
    }

    fn after(limit: Duration) -> crate::clock::Stamp {
        clock().exact() + limit
    }

    fn deadline() -> Deadline<'static> {
        Deadline::new(clock())
    }

    fn runtime() -> monoio::Runtime<monoio::time::TimeDriver<monoio::LegacyDriver>> {
        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .expect("a monoio runtime")
    }

    #[test]
    fn an_operation_that_finishes_in_time_returns_its_output() {
        runtime().block_on(async {
            let mut deadline = deadline();
            let out = deadline
                .run(after(Duration::from_secs(1)), async {
                    monoio::time::sleep(Duration::from_millis(5)).await;
                    7
                })
                .await;
            assert_eq!(out, Ok(7));
        });
    }

    #[test]
    fn a_late_operation_fails_at_its_own_deadline() {
        runtime().block_on(async {
            let mut deadline = deadline();
            let start = Instant::now();
            let out = deadline
                .run(
                    after(Duration::from_millis(50)),
                    monoio::time::sleep(Duration::from_secs(10)),
                )
                .await;
            assert_eq!(out, Err(Elapsed));
            let waited = start.elapsed();
            assert!(
                waited >= Duration::from_millis(50) && waited < Duration::from_secs(5),
                "failed after {waited:?}"
            );
        });
    }

    /// As a worker runs: one reading of the clock per pass of the event
    /// loop, which a deadline's wake-up must not take for the timer's
    /// answer. The operations run in a task of their own, as a connection's
    /// do (the main future, woken by each new reading, must not read it).
    #[test]
    fn late_operations_fail_with_one_reading_of_the_clock_per_pass() {
        let operations = async {
            for limit in [20, 50] {
                // The pass starts with a reading, as a request's does.
                let now = clock().now();
                let mut deadline = deadline();
                let start = Instant::now();
                let out = deadline
                    .run(
                        now + Duration::from_millis(limit),
                        monoio::time::sleep(Duration::from_secs(10)),
                    )
                    .await;
                assert_eq!(out, Err(Elapsed));
                let waited = start.elapsed();
                assert!(
                    waited >= Duration::from_millis(limit) && waited < Duration::from_secs(5),
                    "failed after {waited:?}"
                );
            }
        };
        runtime().block_on(clock().expiring(async { monoio::spawn(operations).await }));
    }

    #[test]
    fn a_timer_armed_early_by_a_short_operation_does_not_cut_a_long_one_short() {
        runtime().block_on(async {
            let mut deadline = deadline();
            // Arms the timer 30 ms out, then completes at once.
            assert_eq!(
                deadline
                    .run(after(Duration::from_millis(30)), async {})
                    .await,
                Ok(())
            );
            // The timer fires during this one, which still has time left.
            let out = deadline
                .run(after(Duration::from_millis(500)), async {
                    monoio::time::sleep(Duration::from_millis(100)).await;
                    "done"
                })
                .await;
            assert_eq!(out, Ok("done"));
            // And the re-armed timer still bounds the next late operation.
            let start = Instant::now();
            let out = deadline
                .run(
                    after(Duration::from_millis(40)),
                    monoio::time::sleep(Duration::from_secs(10)),
                )
                .await;
            assert_eq!(out, Err(Elapsed));
            assert!(start.elapsed() < Duration::from_secs(5));
        });
    }
}
