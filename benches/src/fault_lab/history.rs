//! The history: every request a client sent and every answer it got, one JSON line each
//! (`history.jsonl`), kept in memory for the checker.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Requests.
    Enter,
    Replace,
    Cancel,
    Deposit,
    /// Answers.
    Accepted,
    /// `OrderReplaced`: `cl` is the new id, `orig` the replaced one.
    Replaced,
    Cancelled,
    /// A re-sent request answered "duplicate" after a failover: the node says it holds it.
    AlreadySequenced,
    Rejected,
    Fill,
    DepositAccepted,
    DepositRejected,
    /// The client moved to another node.
    FailedOver,
    /// A request that had no answer when the run ended.
    Unknown,
    /// A fault, applied (`detail` says what) or healed.
    Fault,
    Heal,
}

/// One line of the history.
#[derive(Clone, Debug, Serialize)]
pub struct Event {
    pub t_ms: u64,
    pub account: u32,
    pub kind: Kind,
    /// The request's `cl_ord_id` (a deposit's `request_id`).
    pub cl: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub orig: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub qty: u64,
    #[serde(skip_serializing_if = "is_zero_i")]
    pub price: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub leaves: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub trade_id: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}
fn is_zero_i(v: &i64) -> bool {
    *v == 0
}

impl Event {
    pub fn new(account: u32, kind: Kind, cl: u64) -> Event {
        Event {
            t_ms: 0,
            account,
            kind,
            cl,
            orig: 0,
            qty: 0,
            price: 0,
            leaves: 0,
            trade_id: 0,
            detail: String::new(),
        }
    }
}

/// The shared history: a file and every event.
#[derive(Clone, Debug)]
pub struct History {
    started: Instant,
    inner: Arc<Mutex<(std::io::BufWriter<std::fs::File>, Vec<Event>)>>,
}

impl History {
    pub fn create(path: &std::path::Path, started: Instant) -> Result<History, String> {
        let f = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(History {
            started,
            inner: Arc::new(Mutex::new((std::io::BufWriter::new(f), Vec::new()))),
        })
    }

    pub fn record(&self, mut e: Event) {
        e.t_ms = self.started.elapsed().as_millis() as u64;
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Ok(line) = serde_json::to_string(&e) {
            let _ = writeln!(g.0, "{line}");
        }
        g.1.push(e);
    }

    pub fn events(&self) -> Vec<Event> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let _ = g.0.flush();
        g.1.clone()
    }
}
