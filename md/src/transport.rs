//! Where the publisher's packets go: the A and B incremental feeds and the snapshot stream.
//!
//! [`AeronTransport`] offers each packet once to an exclusive publication per channel and never
//! retries or waits: what does not go out is counted by the publisher and left to the
//! subscribers' recovery. [`CaptureTransport`] keeps the packets in memory (tests, recordings).

use rusteron_client::{AeronExclusivePublication, AeronOfferError};

use crate::aeron::{AeronClient, AeronSetup, ChannelConfig, MdError};

/// One of the publisher's outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    /// Incremental feed A.
    A = 0,
    /// Incremental feed B (the same packets, another path).
    B = 1,
    /// The snapshot stream.
    Snapshot = 2,
}

/// What an offer did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendOutcome {
    Sent,
    /// No subscriber is connected (or the channel is not configured).
    NotConnected,
    /// The publication's window or term is full.
    BackPressured,
    /// The publication is closed or failed.
    Failed,
}

/// A sink for finished packets. `send` must not block.
pub trait MdTransport {
    fn send(&mut self, channel: Channel, packet: &[u8]) -> SendOutcome;
    /// Whether `channel` has at least one subscriber (the snapshot loop idles without one).
    fn is_connected(&self, channel: Channel) -> bool;
    /// Between commands: repairs what can be repaired (an Aeron client the driver dropped is
    /// replaced and its publications added again). `true`: it reconnected now.
    fn maintain(&mut self) -> bool {
        false
    }
}

/// The Aeron outputs of one shard's stream. Field order is drop order: the publications, then
/// the client, then the embedded driver it may own.
pub struct AeronTransport {
    a: Option<AeronExclusivePublication>,
    b: Option<AeronExclusivePublication>,
    snapshot: Option<AeronExclusivePublication>,
    /// What to publish on again after the client died.
    channels: AeronChannels,
    /// No reconnection attempt before this (after a failed one).
    next_try: std::time::Instant,
    client: AeronClient,
}

impl std::fmt::Debug for AeronTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AeronTransport")
            .field("a", &self.a.is_some())
            .field("b", &self.b.is_some())
            .field("snapshot", &self.snapshot.is_some())
            .field("client", &self.client)
            .finish()
    }
}

/// The channels a shard publishes on.
#[derive(Clone, Debug)]
pub struct AeronChannels {
    pub setup: AeronSetup,
    /// Incremental feed A (required).
    pub a: ChannelConfig,
    /// Incremental feed B (optional: a second multicast group on a second interface).
    pub b: Option<ChannelConfig>,
    /// Snapshot stream (optional: without it late joiners cannot recover).
    pub snapshot: Option<ChannelConfig>,
}

impl AeronTransport {
    /// Connects (starting an embedded driver if `setup` says so) and adds the publications.
    pub fn connect(ch: &AeronChannels) -> Result<AeronTransport, MdError> {
        let client = AeronClient::connect(&ch.setup)?;
        let mut t = AeronTransport {
            a: None,
            b: None,
            snapshot: None,
            channels: ch.clone(),
            next_try: std::time::Instant::now(),
            client,
        };
        t.publish()?;
        Ok(t)
    }

    /// Adds the publications (with their destinations) on the current client.
    fn publish(&mut self) -> Result<(), MdError> {
        let client = &self.client;
        let publish = |c: &ChannelConfig| -> Result<AeronExclusivePublication, MdError> {
            let p = client.exclusive_publication(&c.channel, c.stream_id)?;
            client.add_destinations(&p, &c.destinations)?;
            Ok(p)
        };
        let ch = &self.channels;
        let a = publish(&ch.a)?;
        let b = ch.b.as_ref().map(publish).transpose()?;
        let snapshot = ch.snapshot.as_ref().map(publish).transpose()?;
        (self.a, self.b, self.snapshot) = (Some(a), b, snapshot);
        Ok(())
    }

    /// Replaces a dead client (the driver dropped it: this process was frozen longer than the
    /// driver's client liveness timeout, or the driver restarted) and publishes again; retried
    /// every 100 ms while it fails. Packets sent meanwhile were counted `failed`: subscribers
    /// see a gap and recover it (retransmission ring, snapshots) as any other.
    fn revive(&mut self) -> bool {
        if !self.client.is_dead() || std::time::Instant::now() < self.next_try {
            return false;
        }
        self.next_try = std::time::Instant::now() + std::time::Duration::from_millis(100);
        (self.a, self.b, self.snapshot) = (None, None, None);
        let r = self.client.reconnect().and_then(|()| self.publish());
        match r {
            Ok(()) => {
                crate::warn(format_args!(
                    "md: the Aeron driver dropped this client; reconnected and published again ({} reconnects)",
                    self.client.reconnects()
                ));
                true
            }
            Err(e) => {
                crate::warn(format_args!("md: reconnecting to the Aeron driver: {e}"));
                false
            }
        }
    }

    /// The largest message every publication takes without fragmenting it (Aeron's MTU less
    /// its frame header).
    pub fn max_payload(&self) -> usize {
        [&self.a, &self.b, &self.snapshot]
            .into_iter()
            .flatten()
            .filter_map(|p| p.get_constants().ok())
            .map(|c| c.max_payload_length())
            .min()
            .unwrap_or(crate::encode::DEFAULT_MAX_PACKET_LEN)
    }

    /// The client (to add more publications or read its error count).
    pub fn client(&self) -> &AeronClient {
        &self.client
    }

    fn publication(&self, channel: Channel) -> Option<&AeronExclusivePublication> {
        match channel {
            Channel::A => self.a.as_ref(),
            Channel::B => self.b.as_ref(),
            Channel::Snapshot => self.snapshot.as_ref(),
        }
    }
}

impl MdTransport for AeronTransport {
    #[inline]
    fn send(&mut self, channel: Channel, packet: &[u8]) -> SendOutcome {
        let Some(p) = self.publication(channel) else {
            return SendOutcome::NotConnected;
        };
        // ADMIN_ACTION (a term rotation) asks for an immediate retry; it cannot repeat more
        // than once or twice, so this loop is bounded.
        for _ in 0..4 {
            return match p.offer(packet) {
                Ok(_) => SendOutcome::Sent,
                Err(AeronOfferError::AdminAction) => continue,
                Err(AeronOfferError::NotConnected) => SendOutcome::NotConnected,
                Err(AeronOfferError::BackPressured) => SendOutcome::BackPressured,
                Err(_) => SendOutcome::Failed,
            };
        }
        SendOutcome::BackPressured
    }

    fn is_connected(&self, channel: Channel) -> bool {
        self.publication(channel).is_some_and(|p| p.is_connected())
    }

    fn maintain(&mut self) -> bool {
        self.revive()
    }
}

/// Keeps every packet in memory, per channel (tests and recordings).
#[derive(Debug, Default)]
pub struct CaptureTransport {
    pub a: Vec<Vec<u8>>,
    pub b: Vec<Vec<u8>>,
    pub snapshot: Vec<Vec<u8>>,
    /// Whether the snapshot channel reports a subscriber.
    pub snapshot_connected: bool,
}

impl CaptureTransport {
    pub fn new() -> CaptureTransport {
        CaptureTransport {
            snapshot_connected: true,
            ..CaptureTransport::default()
        }
    }
}

impl MdTransport for CaptureTransport {
    fn send(&mut self, channel: Channel, packet: &[u8]) -> SendOutcome {
        match channel {
            Channel::A => self.a.push(packet.to_vec()),
            Channel::B => self.b.push(packet.to_vec()),
            Channel::Snapshot => self.snapshot.push(packet.to_vec()),
        }
        SendOutcome::Sent
    }

    fn is_connected(&self, channel: Channel) -> bool {
        channel != Channel::Snapshot || self.snapshot_connected
    }
}

/// Sends nothing and reports not connected (a publisher in standby, or a recording-only one).
#[derive(Debug, Default, Clone, Copy)]
pub struct NullTransport;

impl MdTransport for NullTransport {
    fn send(&mut self, _channel: Channel, _packet: &[u8]) -> SendOutcome {
        SendOutcome::NotConnected
    }
    fn is_connected(&self, _channel: Channel) -> bool {
        false
    }
}
