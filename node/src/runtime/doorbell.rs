//! Wake-ups for parked cores (`idle = "park"` only).
//!
//! A parked core sleeps in `ppoll(2)` on its sockets and its doorbell (an `eventfd`), so data on
//! a socket or a message on one of its rings wakes it at once instead of at the end of a timer.
//! The protocol that loses no wake-up:
//!
//! - the parking core: `arm()` (sets `parked`, full fence), runs one more duty cycle, and sleeps
//!   only if that found nothing; `disarm()` after waking;
//! - a producer on another core, after pushing to the parked core's ring: full fence, then
//!   `ring()`, which writes the eventfd only if `parked` is set.
//!
//! Either the consumer's re-check sees the message, or the producer sees `parked`. In
//! `idle = "spin"` no doorbell exists and the hot path does none of this.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{fence, AtomicBool, Ordering};

#[derive(Debug)]
pub struct Doorbell {
    fd: OwnedFd,
    parked: AtomicBool,
}

impl Doorbell {
    pub fn new() -> std::io::Result<Doorbell> {
        // SAFETY: eventfd returns a new descriptor we own, or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Doorbell {
            // SAFETY: fd is a fresh, valid descriptor.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            parked: AtomicBool::new(false),
        })
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The consumer is about to sleep (it must re-check its inputs after this).
    pub fn arm(&self) {
        self.parked.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    /// The consumer is awake again: clears the flag and the eventfd's counter.
    pub fn disarm(&self) {
        self.parked.store(false, Ordering::SeqCst);
        let mut v = 0u64;
        // SAFETY: reading 8 bytes into a u64 from our non-blocking eventfd.
        unsafe {
            libc::read(self.fd(), (&mut v as *mut u64).cast(), 8);
        }
    }

    /// A producer pushed to this core's ring: wake it if it sleeps.
    #[inline]
    pub fn ring(&self) {
        fence(Ordering::SeqCst);
        if self.parked.load(Ordering::SeqCst) {
            let one = 1u64;
            // SAFETY: writing 8 bytes to our eventfd.
            unsafe {
                libc::write(self.fd(), (&one as *const u64).cast(), 8);
            }
        }
    }
}

/// Sleeps until one of `fds` is ready or `timeout_us` passes.
pub fn sleep_on(fds: &mut [libc::pollfd], timeout_us: u64) {
    let ts = libc::timespec {
        tv_sec: (timeout_us / 1_000_000) as libc::time_t,
        tv_nsec: ((timeout_us % 1_000_000) * 1_000) as libc::c_long,
    };
    // SAFETY: a valid pollfd array and timespec for the duration of the call.
    unsafe {
        libc::ppoll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            &ts,
            std::ptr::null(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rings_only_when_parked() {
        let d = Doorbell::new().unwrap();
        d.ring();
        let mut p = [libc::pollfd {
            fd: d.fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        sleep_on(&mut p, 0);
        assert_eq!(p[0].revents, 0, "not parked: no write");
        d.arm();
        d.ring();
        sleep_on(&mut p, 1_000_000);
        assert_ne!(p[0].revents & libc::POLLIN, 0);
        d.disarm();
        p[0].revents = 0;
        sleep_on(&mut p, 0);
        assert_eq!(p[0].revents, 0, "disarm drains");
    }
}
