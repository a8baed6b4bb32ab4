//! Which of a core's sockets have something to read, asked once per duty cycle.
//!
//! A busy core (parked mode under load: there is work every cycle, so it never sleeps) used to
//! `recv` every connection every cycle; most found nothing, and those empty system calls were
//! half of a loaded primary's sequencing core in `perf` (`make bench`, 100 k orders/s, 8
//! sessions). One zero-wait `poll(2)` over the set costs one system call, and only the
//! sockets it names are read.

use std::os::fd::RawFd;

/// A set of (id, descriptor) pairs, polled without waiting.
#[derive(Debug, Default)]
pub struct Readiness {
    fds: Vec<libc::pollfd>,
    ids: Vec<u32>,
}

impl Readiness {
    /// Empties the set (keeping its memory).
    pub fn clear(&mut self) {
        self.fds.clear();
        self.ids.clear();
    }

    /// Adds a socket to ask about.
    pub fn push(&mut self, id: u32, fd: RawFd) {
        self.fds.push(libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        });
        self.ids.push(id);
    }

    /// Polls the set without waiting and keeps only the ids whose socket has bytes, an end
    /// or an error to read (the read finds which). If the poll itself fails, every id stays:
    /// reading them all is what a cycle did before. A set of one is not polled: one `recv`
    /// that finds nothing costs what the `poll` would, and one that finds bytes saves it.
    pub fn poll(&mut self) -> &[u32] {
        if self.fds.len() <= 1 {
            return &self.ids;
        }
        // SAFETY: `fds` is a valid array of `fds.len()` pollfds for the whole call; no wait.
        let n = unsafe { libc::poll(self.fds.as_mut_ptr(), self.fds.len() as libc::nfds_t, 0) };
        if n < 0 {
            return &self.ids;
        }
        let mut kept = 0;
        for i in 0..self.fds.len() {
            if self.fds[i].revents != 0 {
                self.ids[kept] = self.ids[i];
                kept += 1;
            }
        }
        self.ids.truncate(kept);
        &self.ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn only_sockets_with_something_to_read_are_named() {
        let (mut a_tx, a_rx) = UnixStream::pair().unwrap();
        let (_b_tx, b_rx) = UnixStream::pair().unwrap();
        let (c_tx, c_rx) = UnixStream::pair().unwrap();
        a_tx.write_all(b"x").unwrap();
        drop(c_tx); // an end is something to read too (`Ok(0)`)
        let mut r = Readiness::default();
        for (id, s) in [(7, &a_rx), (8, &b_rx), (9, &c_rx)] {
            r.push(id, s.as_raw_fd());
        }
        assert_eq!(r.poll(), &[7, 9]);
        r.clear();
        r.push(8, b_rx.as_raw_fd());
        r.push(9, c_rx.as_raw_fd());
        assert_eq!(r.poll(), &[9]);
        // One socket is read without asking (the read is the question).
        r.clear();
        r.push(8, b_rx.as_raw_fd());
        assert_eq!(r.poll(), &[8]);
    }
}
