//! A session table's image in a node snapshot (`shard/snapshot.rs`): what the log determines
//! of it, and nothing local. Per session `(account, session_id)`, its next reply number and the
//! replies its journal keeps; every tracked order's owner; the mass cancels some shards have
//! answered. Not in it (this process's, set again by logins and requests): connections,
//! throttles, admin flags, the last `cl_ord_id` a session sent here, local tags and counters.
//! The snapshot thread's tables are fed only the log's reports, like a node replaying its log
//! at start, so a table restored from an image equals the one a full replay builds.
//!
//! Little-endian, fixed-width fields; [`SessionTable::from_image`] answers a typed error, never
//! a panic, for bytes that do not decode (the file's CRC has been checked before).

use tpx_engine::InstrumentId;

use super::{Owner, PendingMass, Session, SessionSettings, SessionTable, MAX_REPLY_LEN};
use crate::gateway::journal::Journal;
use crate::gateway::routing::Routing;

const IMAGE_VERSION: u32 = 1;

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.b.len() < n {
            return Err("session image cut short".into());
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().expect("2")))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4")))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8")))
    }
}

impl SessionTable {
    /// The table's image (see the module docs).
    pub fn image(&self) -> Vec<u8> {
        let mut o = Vec::with_capacity(64 + self.sessions.len() * 256 + self.owners.len() * 24);
        o.extend_from_slice(&IMAGE_VERSION.to_le_bytes());
        o.extend_from_slice(&(self.sessions.len() as u32).to_le_bytes());
        for s in &self.sessions {
            o.extend_from_slice(&s.account.to_le_bytes());
            o.extend_from_slice(&s.session_id.to_le_bytes());
            let j = &s.journal;
            o.extend_from_slice(&j.next_seq().to_le_bytes());
            let kept: Vec<&[u8]> = (j.oldest_seq()..j.next_seq())
                .filter_map(|q| j.get(q))
                .collect();
            o.extend_from_slice(&(kept.len() as u32).to_le_bytes());
            for r in kept {
                o.extend_from_slice(&(r.len() as u16).to_le_bytes());
                o.extend_from_slice(r);
            }
            o.extend_from_slice(&(s.pending_mass.len() as u32).to_le_bytes());
            for p in &s.pending_mass {
                o.extend_from_slice(&p.seq.to_le_bytes());
                o.extend_from_slice(&p.remaining.to_le_bytes());
                o.extend_from_slice(&p.cancelled.to_le_bytes());
                o.push(u8::from(p.instrument.is_some()));
                o.extend_from_slice(&p.instrument.unwrap_or(0).to_le_bytes());
                o.extend_from_slice(&p.ts_ns.to_le_bytes());
            }
        }
        // Owners in key order: the same table gives the same bytes.
        let mut owners: Vec<_> = self.owners.iter().filter(|(_, o)| o.live).collect();
        owners.sort_unstable_by_key(|(k, _)| **k);
        o.extend_from_slice(&(owners.len() as u32).to_le_bytes());
        for ((account, cl), ow) in owners {
            o.extend_from_slice(&account.to_le_bytes());
            o.extend_from_slice(&cl.to_le_bytes());
            o.extend_from_slice(&ow.session.to_le_bytes());
            o.extend_from_slice(&ow.shard.to_le_bytes());
            o.extend_from_slice(&ow.instrument.to_le_bytes());
        }
        o
    }

    /// A table rebuilt from [`SessionTable::image`] with this process's `settings` and
    /// `routing` (its journals keep at most `settings.journal_capacity` replies).
    pub fn from_image(
        settings: SessionSettings,
        routing: Routing,
        bytes: &[u8],
    ) -> Result<SessionTable, String> {
        let mut r = Reader { b: bytes };
        let v = r.u32()?;
        if v != IMAGE_VERSION {
            return Err(format!(
                "session image version {v}, this build reads {IMAGE_VERSION}"
            ));
        }
        let mut t = SessionTable::new(settings, routing);
        let n = r.u32()?;
        for _ in 0..n {
            let account = r.u32()?;
            let session_id = r.u32()?;
            let next_seq = r.u64()?;
            let kept_n = r.u32()? as usize;
            let mut kept = Vec::with_capacity(kept_n.min(1 << 16));
            for _ in 0..kept_n {
                let len = usize::from(r.u16()?);
                if len > MAX_REPLY_LEN {
                    return Err(format!("a journaled reply of {len} bytes"));
                }
                kept.push(r.take(len)?);
            }
            let slot = t
                .add_session(account, session_id)
                .ok_or("more sessions in the image than max_sessions")?;
            if t.by_key.len() != t.sessions.len() {
                return Err(format!("session ({account}, {session_id}) twice"));
            }
            let cap = t.settings.journal_capacity;
            let s: &mut Session = &mut t.sessions[slot as usize];
            s.journal =
                Journal::restored(cap, MAX_REPLY_LEN, next_seq, kept.iter().map(|k| &k[..]));
            let m = r.u32()?;
            for _ in 0..m {
                let seq = r.u64()?;
                let remaining = r.u16()?;
                let cancelled = r.u32()?;
                let has = r.take(1)?[0] != 0;
                let instrument: InstrumentId = r.u32()?;
                let ts_ns = r.u64()?;
                s.pending_mass.push(PendingMass {
                    seq,
                    remaining,
                    cancelled,
                    instrument: has.then_some(instrument),
                    ts_ns,
                });
            }
        }
        let owners = r.u32()?;
        for _ in 0..owners {
            let account = r.u32()?;
            let cl = r.u64()?;
            let session = r.u32()?;
            let shard = r.u16()?;
            let instrument = r.u32()?;
            if session != super::ORPHAN && session as usize >= t.sessions.len() {
                return Err(format!(
                    "order ({account}, {cl}) owned by unknown slot {session}"
                ));
            }
            t.owners.insert(
                (account, cl),
                Owner {
                    session,
                    shard,
                    instrument,
                    live: true,
                },
            );
        }
        if !r.b.is_empty() {
            return Err("bytes after the session image".into());
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::{Report, Request, Sequenced};
    use crate::shard::apply::Shard;
    use tpx_wire::enums::{OrderKind, Side, StpMode, TimeInForce};
    use tpx_wire::log_record::Input;
    use tpx_wire::order_entry::EnterOrder;
    use tpx_wire::replies::ServerMessage;

    fn settings() -> SessionSettings {
        SessionSettings {
            heartbeat_interval_ms: 1000,
            journal_capacity: 4,
            max_sessions: 8,
            max_sessions_per_account: 64,
        }
    }

    /// The reports of one order record.
    fn order(
        sh: &mut Shard,
        seq: u64,
        account: u32,
        session: u32,
        cl: u64,
        side: Side,
        qty: u64,
    ) -> Vec<Report> {
        let o = EnterOrder {
            cl_ord_id: cl,
            instrument: 1,
            side,
            kind: OrderKind::Limit,
            price: 60_000,
            qty,
            tif: TimeInForce::Gtc,
            post_only: false,
            reduce_only: false,
            stp: StpMode::None,
        };
        let e = Sequenced {
            seq,
            ts_ns: 7,
            req: Request::new(session, 0, account, Input::EnterOrder(o)),
        };
        let mut reports = Vec::new();
        sh.apply(&e, |r| reports.push(r));
        reports
    }

    /// A table fed from the log, imaged and rebuilt: the same image, the same replays, and a
    /// fill of an order placed before the image goes to the session that placed it, numbered
    /// as in the table that was never imaged.
    #[test]
    fn a_table_rebuilt_from_its_image_continues_the_same_streams() {
        let routing = Routing::new(&[(1, 0)], 1);
        let specs = vec![crate::config::builtin_instruments()[0].spec().unwrap()];
        let cfg = tpx_engine::EngineConfig {
            instruments: specs,
            max_orders: 64,
            max_accounts: 16,
        };
        let mut sh = Shard::new(0, cfg, None).unwrap();
        let mut t = SessionTable::new(settings(), routing.clone());
        // Six rests of account 1 session 3 (its journal keeps 4), one of account 2.
        for cl in 1..=6 {
            for r in order(&mut sh, cl, 1, 3, cl, Side::Sell, 1) {
                t.on_report(&r, &mut Vec::new());
            }
        }
        for r in order(&mut sh, 7, 2, 1, 1, Side::Sell, 1) {
            t.on_report(&r, &mut Vec::new());
        }
        let img = t.image();
        let mut back = SessionTable::from_image(settings(), routing.clone(), &img).unwrap();
        assert_eq!(back.image(), img);
        let slot = back.slot_of(1, 3).unwrap();
        assert_eq!((t.slot_of(1, 3), back.next_seq(slot)), (Some(slot), 7));
        let a: Vec<Vec<u8>> = t.replay(slot, 3..7).map(|b| b.to_vec()).collect();
        let b: Vec<Vec<u8>> = back.replay(slot, 3..7).map(|b| b.to_vec()).collect();
        assert_eq!(a.len(), 4);
        assert_eq!(a, b);
        // Account 2 session 1 takes two of session 3's orders: both tables journal the same.
        for r in order(&mut sh, 8, 2, 1, 2, Side::Buy, 2) {
            t.on_report(&r, &mut Vec::new());
            back.on_report(&r, &mut Vec::new());
        }
        assert_eq!(back.next_seq(slot), 9);
        assert_eq!(back.image(), t.image());
        let fills: Vec<ServerMessage> = back
            .replay(slot, 7..9)
            .map(|b| ServerMessage::decode(b).unwrap())
            .collect();
        assert!(
            matches!(fills[..], [ServerMessage::OrderExecuted(x), ServerMessage::OrderExecuted(y)]
            if x.seq == 7 && x.cl_ord_id == 1 && y.seq == 8 && y.cl_ord_id == 2)
        );
        // Cut and bad bytes are typed errors.
        assert!(
            SessionTable::from_image(settings(), routing.clone(), &img[..img.len() - 1]).is_err()
        );
        let mut bad = img.clone();
        bad[0] = 9;
        assert!(SessionTable::from_image(settings(), routing, &bad).is_err());
    }
}
