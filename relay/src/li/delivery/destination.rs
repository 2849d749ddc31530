//! One thread per delivery destination: it owns the connection, numbers the PDUs on it,
//! sends keepalives, answers the agency's keepalives, and reconnects with back-off. PDUs
//! reach it through a bounded queue; when the agency is slow or down the queue fills and
//! the draining thread drops and counts (never this thread's caller's problem).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::counters::{Counters, LinkCounters};
use super::link::{Link, Transport};
use super::DeliveryConfig;
use crate::li::x3::{self, Attribute, Header, PduType};

/// One PDU waiting for its connection (the sequence number is added when it is sent).
pub(crate) struct Outgoing {
    pub(crate) header: Header,
    pub(crate) unix_nanos: u64,
    pub(crate) endpoints: Option<(SocketAddr, SocketAddr)>,
    pub(crate) payload: Arc<[u8]>,
    /// The task's and the call's counters.
    pub(crate) task: Arc<Counters>,
    pub(crate) call: Arc<Counters>,
}

/// Where PDUs go. Its Debug form hides the address.
#[derive(Clone)]
pub struct DestinationSpec {
    pub address: SocketAddr,
    pub transport: Transport,
}

impl std::fmt::Debug for DestinationSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DestinationSpec(…, {:?})", self.transport)
    }
}

impl DestinationSpec {
    pub fn tcp(address: SocketAddr) -> DestinationSpec {
        DestinationSpec {
            address,
            transport: Transport::Tcp,
        }
    }
}

pub(crate) struct DestinationWorker {
    pub(crate) spec: DestinationSpec,
    pub(crate) config: DeliveryConfig,
    pub(crate) queue: Receiver<Outgoing>,
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) pdus: Arc<Counters>,
    pub(crate) link: Arc<LinkCounters>,
}

/// The X3 attributes of one PDU.
fn attributes(seq: u32, o: &Outgoing) -> ([Attribute<'static>; 6], usize) {
    let secs = (o.unix_nanos / 1_000_000_000) as u32;
    let nanos = (o.unix_nanos % 1_000_000_000) as u32;
    let mut a = [Attribute::SequenceNumber(seq); 6];
    a[1] = Attribute::Timestamp { secs, nanos };
    let mut n = 2;
    if let Some((src, dst)) = o.endpoints {
        match (src.ip(), dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                a[2] = Attribute::SourceIpv4(s);
                a[3] = Attribute::DestinationIpv4(d);
            }
            (s, d) => {
                a[2] = Attribute::SourceIpv6(to_v6(s));
                a[3] = Attribute::DestinationIpv6(to_v6(d));
            }
        }
        a[4] = Attribute::SourcePort(src.port());
        a[5] = Attribute::DestinationPort(dst.port());
        n = 6;
    }
    (a, n)
}

fn to_v6(ip: IpAddr) -> std::net::Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// At most this many bytes are written at once (so each write is one TCP segment on
/// loopback and a capture shows whole PDUs).
const BATCH_BYTES: usize = 16 * 1024;

struct Connected {
    link: Link,
    seq: u32,
    last_tx: Instant,
    keepalive: Option<(u64, Instant)>,
    keepalive_no: u64,
    rx: Vec<u8>,
}

impl DestinationWorker {
    pub(crate) fn run(self) {
        let mut backoff = self.config.backoff_min;
        let mut next_attempt = Instant::now();
        let mut conn: Option<Connected> = None;
        let mut buf = Vec::with_capacity(BATCH_BYTES + 2048);
        let mut batch: Vec<Outgoing> = Vec::with_capacity(64);
        while !self.stop.load(Ordering::Relaxed) {
            let Some(c) = conn.as_mut() else {
                let now = Instant::now();
                if now < next_attempt {
                    std::thread::sleep((next_attempt - now).min(Duration::from_millis(20)));
                    continue;
                }
                match Link::connect(
                    self.spec.address,
                    &self.spec.transport,
                    self.config.connect_timeout,
                ) {
                    Ok(link) => {
                        LinkCounters::add(&self.link.connects);
                        self.link.connected.store(true, Ordering::Relaxed);
                        backoff = self.config.backoff_min;
                        conn = Some(Connected {
                            link,
                            seq: 0,
                            last_tx: Instant::now(),
                            keepalive: None,
                            keepalive_no: 0,
                            rx: Vec::new(),
                        });
                    }
                    Err(_) => {
                        LinkCounters::add(&self.link.connect_failures);
                        next_attempt = Instant::now() + backoff;
                        backoff = (backoff * 2).min(self.config.backoff_max);
                    }
                }
                continue;
            };
            let ok = self.serve(c, &mut buf, &mut batch);
            if !ok {
                if let Some(c) = conn.take() {
                    c.link.close();
                }
                self.link.connected.store(false, Ordering::Relaxed);
                LinkCounters::add(&self.link.disconnects);
                next_attempt = Instant::now() + backoff;
                backoff = (backoff * 2).min(self.config.backoff_max);
            }
        }
        if let Some(c) = conn.take() {
            // Deliver what is already queued, briefly, then close.
            let deadline = Instant::now() + Duration::from_millis(500);
            let mut c = c;
            while Instant::now() < deadline && !self.queue.is_empty() {
                if !self.serve(&mut c, &mut buf, &mut batch) {
                    break;
                }
            }
            c.link.close();
        }
        self.link.connected.store(false, Ordering::Relaxed);
    }

    /// One round on a live connection; `false` when it failed.
    fn serve(&self, c: &mut Connected, buf: &mut Vec<u8>, batch: &mut Vec<Outgoing>) -> bool {
        let wait = self
            .config
            .keepalive_interval
            .saturating_sub(c.last_tx.elapsed())
            .clamp(Duration::from_millis(1), Duration::from_millis(10));
        match self.queue.recv_timeout(wait) {
            Ok(o) => batch.push(o),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return true,
        }
        buf.clear();
        let mut first = true;
        while first || buf.len() < BATCH_BYTES {
            if !first {
                match self.queue.try_recv() {
                    Ok(o) => batch.push(o),
                    Err(_) => break,
                }
            }
            first = false;
            let Some(o) = batch.last() else { break };
            let (attrs, n) = attributes(c.seq, o);
            if x3::encode(&o.header, &attrs[..n], &o.payload, buf).is_err() {
                // Payloads come from tap records (at most 1500 bytes): cannot happen.
                batch.pop();
                continue;
            }
            c.seq = c.seq.wrapping_add(1);
        }
        if !batch.is_empty() {
            let deadline = Instant::now() + self.config.write_stall_timeout;
            let sent = c.link.send_all(buf, deadline).is_ok();
            let n = batch.len() as u64;
            for o in batch.drain(..) {
                if sent {
                    o.task.delivered(1);
                    o.call.delivered(1);
                } else {
                    o.task.dropped_link(1);
                    o.call.dropped_link(1);
                }
            }
            if !sent {
                self.pdus.dropped_link(n);
                return false;
            }
            self.pdus.delivered(n);
            self.link
                .bytes
                .fetch_add(buf.len() as u64, Ordering::Relaxed);
            c.last_tx = Instant::now();
        }
        self.keepalive_and_read(c)
    }

    fn send_control(&self, c: &mut Connected, ack: bool, number: u64) -> bool {
        let mut b = Vec::with_capacity(x3::FIXED_HEADER_LEN);
        if x3::encode(&Header::keepalive(ack, number), &[], &[], &mut b).is_err() {
            return false;
        }
        let deadline = Instant::now() + self.config.write_stall_timeout;
        c.link.send_all(&b, deadline).is_ok()
    }

    fn keepalive_and_read(&self, c: &mut Connected) -> bool {
        match c.link.read_available(&mut c.rx) {
            Ok(true) => {}
            Ok(false) | Err(_) => return false,
        }
        // What the agency may send: keepalives and acknowledgements, nothing else.
        let mut used = 0;
        let mut answers = Vec::new();
        loop {
            let rest = &c.rx[used..];
            match x3::frame_len(rest) {
                Ok(None) => break,
                Ok(Some(n)) if rest.len() < n => break,
                Ok(Some(_)) => {}
                Err(_) => {
                    LinkCounters::add(&self.link.garbage);
                    return false;
                }
            }
            match x3::decode(rest) {
                Ok((p, n)) => {
                    used += n;
                    match p.header.pdu_type {
                        PduType::Keepalive => answers.push(p.header.correlation_id),
                        PduType::KeepaliveAck => {
                            if c.keepalive.map(|k| k.0) == Some(p.header.correlation_id) {
                                c.keepalive = None;
                                LinkCounters::add(&self.link.keepalive_acks);
                            }
                        }
                        PduType::X2 | PduType::X3 => {
                            LinkCounters::add(&self.link.garbage);
                            return false;
                        }
                    }
                }
                Err(_) => {
                    LinkCounters::add(&self.link.garbage);
                    return false;
                }
            }
        }
        c.rx.drain(..used);
        for number in answers {
            if !self.send_control(c, true, number) {
                return false;
            }
            LinkCounters::add(&self.link.keepalives_answered);
        }
        match c.keepalive {
            Some((_, sent)) if sent.elapsed() > self.config.keepalive_timeout => return false,
            Some(_) => {}
            None if c.last_tx.elapsed() >= self.config.keepalive_interval => {
                c.keepalive_no = c.keepalive_no.wrapping_add(1);
                let n = c.keepalive_no;
                if !self.send_control(c, false, n) {
                    return false;
                }
                LinkCounters::add(&self.link.keepalives_sent);
                c.keepalive = Some((n, Instant::now()));
                c.last_tx = Instant::now();
            }
            None => {}
        }
        true
    }
}
