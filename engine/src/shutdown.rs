//! A worker's shutdown signal: one flag and the wakers of the futures waiting
//! for it (accept loops, idle keep-alive connections). Single-threaded, no
//! locks; waiter slots are reused, so waiting never allocates in steady state.
//! A `Wait` polled again by the same task keeps its registration: a
//! keep-alive connection holds one `Wait` for its whole life and polls it
//! between requests without registering anew.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

#[derive(Default)]
pub struct Shutdown {
    stopping: Cell<bool>,
    waiters: RefCell<Vec<Option<Waker>>>,
    free: RefCell<Vec<usize>>,
}

impl Shutdown {
    pub fn is_stopping(&self) -> bool {
        self.stopping.get()
    }

    /// Start stopping: every current and future `wait()` resolves.
    pub fn begin(&self) {
        self.stopping.set(true);
        let wakers: Vec<Waker> = self
            .waiters
            .borrow_mut()
            .iter_mut()
            .filter_map(Option::take)
            .collect();
        for waker in wakers {
            waker.wake();
        }
    }

    /// Resolves once `begin` has been called.
    pub fn wait(&self) -> Wait<'_> {
        Wait {
            shutdown: self,
            slot: None,
        }
    }
}

pub struct Wait<'a> {
    shutdown: &'a Shutdown,
    slot: Option<usize>,
}

impl Future for Wait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let shutdown = self.shutdown;
        if shutdown.stopping.get() {
            return Poll::Ready(());
        }
        let mut waiters = shutdown.waiters.borrow_mut();
        let slot = match self.slot {
            Some(slot) => slot,
            None => {
                let slot = shutdown.free.borrow_mut().pop().unwrap_or_else(|| {
                    waiters.push(None);
                    waiters.len() - 1
                });
                self.slot = Some(slot);
                slot
            }
        };
        match &waiters[slot] {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => waiters[slot] = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            self.shutdown.waiters.borrow_mut()[slot] = None;
            self.shutdown.free.borrow_mut().push(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_resolves_after_begin_and_slots_are_reused() {
        let shutdown = Shutdown::default();
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        for _ in 0..3 {
            let mut wait = Box::pin(shutdown.wait());
            assert!(wait.as_mut().poll(&mut cx).is_pending());
        }
        assert_eq!(shutdown.waiters.borrow().len(), 1, "slot reused");
        let mut wait = Box::pin(shutdown.wait());
        assert!(wait.as_mut().poll(&mut cx).is_pending());
        shutdown.begin();
        assert!(wait.as_mut().poll(&mut cx).is_ready());
        assert!(Box::pin(shutdown.wait()).as_mut().poll(&mut cx).is_ready());
    }

    struct Count(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Count {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn counting() -> (std::sync::Arc<Count>, Waker) {
        let count = std::sync::Arc::new(Count(Default::default()));
        (count.clone(), Waker::from(count))
    }

    #[test]
    fn a_wait_polled_again_keeps_its_slot_and_follows_a_new_task() {
        use std::sync::atomic::Ordering::Relaxed;
        let shutdown = Shutdown::default();
        let (first, first_waker) = counting();
        let (second, second_waker) = counting();
        let mut wait = shutdown.wait();
        for _ in 0..3 {
            let mut cx = Context::from_waker(&first_waker);
            assert!(Pin::new(&mut wait).poll(&mut cx).is_pending());
        }
        assert_eq!(shutdown.waiters.borrow().len(), 1);
        // Polled by another task: that task is the one to wake.
        let mut cx = Context::from_waker(&second_waker);
        assert!(Pin::new(&mut wait).poll(&mut cx).is_pending());
        assert_eq!(shutdown.waiters.borrow().len(), 1);
        shutdown.begin();
        assert_eq!((first.0.load(Relaxed), second.0.load(Relaxed)), (0, 1));
        assert!(Pin::new(&mut wait).poll(&mut cx).is_ready());
    }
}
