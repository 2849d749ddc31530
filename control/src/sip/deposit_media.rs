//! The media side of one voicemail deposit that needs time: a small thread per deposit
//! that (for a DTLS-SRTP caller) waits for the handshake's keys and then starts the
//! recorder, and plays the greeting and the beep to the caller, one RTP packet every 20 ms.
//! Packets enter the relay as the callee's media would: from the deposit's sink socket to
//! the sink-facing relay port, under the sink's key; the engine re-protects them with
//! srtpgate's key toward the caller and sends them to the caller's current address, and
//! taps see them like any relayed media. Without a sink socket they go straight out of the
//! caller-facing port (`Command::SendRaw`) under srtpgate's key toward the caller. The
//! thread never blocks the SIP thread or a media worker; it stops within one frame when
//! the deposit ends.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use relay::engine::{Command, Engine, LocalPort, TapReceiver};
use relay::record::{Leg, LegSource, Recorder, RecorderConfig};
use relay::srtp::SrtpContext;

use super::greeting::{beep, Codec, Greeting, FRAME};
use crate::call::{CallRegistry, CryptoLine};

/// Time between greeting packets.
pub const PACKET_INTERVAL: Duration = Duration::from_millis(20);
/// Pause between the answer and the first greeting packet, so that the caller has the
/// 200 OK (and srtpgate's key in it) before media arrives.
pub const LEAD_IN: Duration = Duration::from_millis(200);
/// How often the thread looks for a DTLS caller's keys.
const KEY_POLL: Duration = Duration::from_millis(20);

/// What the SIP thread and the deposit's thread share.
#[derive(Default)]
pub(super) struct Shared {
    /// The deposit ended (BYE, shutdown): the thread returns.
    pub stop: AtomicBool,
    /// The deposit cannot record (DTLS handshake failed or timed out, or the recorder
    /// refused to start after it): the proxy ends the call.
    pub failed: AtomicBool,
    /// The running recorder, once its keys are known.
    pub recorder: Mutex<Option<Recorder>>,
}

/// The greeting to play, in the caller's codec.
pub(super) struct Playback {
    pub greeting: Arc<Greeting>,
    pub codec: Codec,
    pub payload_type: u8,
    pub beep: bool,
}

/// The callee's way into the relay: the deposit's sink socket, the relay port facing it,
/// and the key the sink sends with. The relay forwards what comes this way to the caller
/// like any callee's media (its own key toward the caller, latching, taps).
pub(super) struct SinkRoute {
    pub sock: UdpSocket,
    pub to: SocketAddr,
    /// `None`: plain RTP.
    pub key: Option<CryptoLine>,
}

/// Everything the thread of one deposit needs.
pub(super) struct Plan {
    pub registry: Arc<Mutex<CallRegistry>>,
    pub engine: Arc<Engine>,
    pub call_id: String,
    pub from_tag: String,
    /// The caller's stream (index of its `m=` line).
    pub stream: usize,
    /// The caller-facing relay port.
    pub port: LocalPort,
    /// A recorder still to start once the caller's keys are known (DTLS-SRTP).
    pub pending: Option<(RecorderConfig, TapReceiver)>,
    /// How long to wait for those keys.
    pub key_wait: Duration,
    pub playback: Option<Playback>,
    /// Where greeting packets go in; `None` (no sink socket, e.g. an advertised address
    /// that is not local): straight out of the caller-facing port (`Command::SendRaw`).
    pub route: Option<SinkRoute>,
    /// Media threads running; this one counts itself out when it ends.
    pub running: Arc<std::sync::atomic::AtomicUsize>,
}

/// Stack of a media thread: it protects one packet at a time and sleeps.
const STACK: usize = 256 * 1024;

/// Counts a media thread out when it ends, however it ends.
struct Running(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Starts the deposit's thread; the caller has counted it in `plan.running` (and counts
/// it out again if this fails).
pub(super) fn spawn(plan: Plan, shared: Arc<Shared>) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("srtpgate-vm-media".into())
        .stack_size(STACK)
        .spawn(move || {
            let _running = Running(plan.running.clone());
            run(plan, &shared)
        })
}

/// The keys of the caller's leg once negotiated.
struct Ready {
    tx: Option<CryptoLine>,
    rx: Option<CryptoLine>,
    /// The caller's SDP address.
    fallback: Option<SocketAddr>,
}

/// What the caller's leg says now.
enum KeyState {
    Waiting,
    /// srtpgate's keys toward the caller (`None`: plain RTP), and the caller's own.
    Ready(Box<Ready>),
    Failed(String),
}

fn key_state(plan: &Plan) -> KeyState {
    let reg = plan.registry.lock().unwrap_or_else(|p| p.into_inner());
    let Some(leg) = reg
        .call(&plan.call_id)
        .and_then(|c| c.monologue(&plan.from_tag))
        .and_then(|m| m.leg(plan.stream))
    else {
        return KeyState::Failed("the deposit's call is gone".into());
    };
    if let Some(why) = leg.dtls.as_ref().and_then(|d| d.failure.clone()) {
        return KeyState::Failed(why);
    }
    match &leg.negotiated {
        Some(n) => KeyState::Ready(Box::new(Ready {
            tx: n.tx.clone(),
            rx: n.rx.clone(),
            fallback: leg.remote.rtp_addr(),
        })),
        None => KeyState::Waiting,
    }
}

/// Sleeps until `until` in steps of at most one frame; `false` when the deposit stopped.
fn wait_until(shared: &Shared, until: Instant) -> bool {
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            return false;
        }
        let now = Instant::now();
        if now >= until {
            return true;
        }
        std::thread::sleep((until - now).min(PACKET_INTERVAL));
    }
}

fn run(mut plan: Plan, shared: &Shared) {
    let started = Instant::now();
    // A DTLS-SRTP caller had the answer before the handshake could complete.
    let lead_in = if plan.pending.is_some() {
        Duration::ZERO
    } else {
        LEAD_IN
    };
    let (tx, rx, fallback) = loop {
        match key_state(&plan) {
            KeyState::Ready(r) => break (r.tx, r.rx, r.fallback),
            KeyState::Failed(why) => {
                tracing::warn!(call = %plan.call_id, reason = %why, "voicemail: no keys from the caller; ending the deposit");
                shared.failed.store(true, Ordering::Relaxed);
                return;
            }
            KeyState::Waiting if started.elapsed() >= plan.key_wait => {
                tracing::warn!(call = %plan.call_id, "voicemail: the caller's DTLS-SRTP keys did not come in time; ending the deposit");
                shared.failed.store(true, Ordering::Relaxed);
                return;
            }
            KeyState::Waiting => {
                if !wait_until(shared, Instant::now() + KEY_POLL) {
                    return;
                }
            }
        }
    };
    if let Some((cfg, tap)) = plan.pending.take() {
        let source = match &rx {
            Some(line) => LegSource::Srtp {
                policy: line.policy(),
                initial_roc: 0,
            },
            None => LegSource::Plain,
        };
        let legs = vec![Leg {
            name: "caller".into(),
            source,
            tap,
        }];
        match Recorder::start(cfg, legs) {
            Ok(r) => {
                tracing::info!(call = %plan.call_id, "voicemail: recording the DTLS-SRTP caller");
                *shared.recorder.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
            }
            Err(e) => {
                tracing::warn!(call = %plan.call_id, error = %e, "voicemail cannot record; ending the deposit");
                shared.failed.store(true, Ordering::Relaxed);
                return;
            }
        }
    }
    drop(rx);
    if let Some(p) = plan.playback.take() {
        if wait_until(shared, started + lead_in) {
            let out = match plan.route.take() {
                Some(r) => Out::Sink {
                    key: r.key,
                    sock: r.sock,
                    to: r.to,
                },
                None => Out::Raw { key: tx, fallback },
            };
            play(&plan, shared, &p, out);
        }
    }
}

/// RTP header fields of the greeting stream.
struct Stream {
    ssrc: u32,
    seq: u16,
    ts: u32,
}

fn random_stream() -> Stream {
    let mut b = [0u8; 10];
    // A fixed stream is still correct RTP; randomness only avoids collisions.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    Stream {
        ssrc: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        // Below 2^15 so that the first packets never sit next to a rollover.
        seq: u16::from_be_bytes([b[4], b[5]]) & 0x7fff,
        ts: u32::from_be_bytes([b[6], b[7], b[8], b[9]]),
    }
}

/// Where the greeting's packets go, and the key they are protected with there.
enum Out {
    /// Into the relay from the sink socket, with the sink's key.
    Sink {
        key: Option<CryptoLine>,
        sock: UdpSocket,
        to: SocketAddr,
    },
    /// Out of the caller-facing port, with srtpgate's key toward the caller.
    Raw {
        key: Option<CryptoLine>,
        fallback: Option<SocketAddr>,
    },
}

fn play(plan: &Plan, shared: &Shared, p: &Playback, mut out: Out) {
    let key = match &mut out {
        Out::Sink { key, .. } | Out::Raw { key, .. } => key.take(),
    };
    let mut ctx = match key
        .as_ref()
        .map(|l| SrtpContext::new(l.policy()))
        .transpose()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(call = %plan.call_id, error = %e, "voicemail: no greeting (its key is unusable)");
            return;
        }
    };
    drop(key);
    let mut frames = p.greeting.frames(p.codec);
    if p.beep {
        frames.extend(beep().frames(p.codec));
    }
    let mut s = random_stream();
    let mut buf = [0u8; 12 + FRAME + 64];
    let start = Instant::now();
    let mut sent = 0u64;
    for (n, frame) in frames.iter().enumerate() {
        if !wait_until(shared, start + PACKET_INTERVAL * n as u32) {
            break;
        }
        buf[0] = 0x80;
        buf[1] = p.payload_type | if n == 0 { 0x80 } else { 0 };
        buf[2..4].copy_from_slice(&s.seq.to_be_bytes());
        buf[4..8].copy_from_slice(&s.ts.to_be_bytes());
        buf[8..12].copy_from_slice(&s.ssrc.to_be_bytes());
        buf[12..12 + FRAME].copy_from_slice(frame);
        s.seq = s.seq.wrapping_add(1);
        s.ts = s.ts.wrapping_add(FRAME as u32);
        let len = match ctx.as_mut() {
            Some(c) => match c.protect(&mut buf, 12 + FRAME) {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(call = %plan.call_id, error = %e, "voicemail: greeting stopped (SRTP)");
                    break;
                }
            },
            None => 12 + FRAME,
        };
        let pkt = &buf[..len];
        let result = match &out {
            Out::Sink { sock, to, .. } => {
                sock.send_to(pkt, to).map(|_| ()).map_err(|e| e.to_string())
            }
            Out::Raw { fallback, .. } => {
                // Where the port sends now: the caller's latched source, else its SDP
                // address.
                let to = match plan.engine.query(plan.port) {
                    Ok((_, Some(peer))) => Some(peer.addr),
                    _ => *fallback,
                };
                let Some(to) = to else { continue };
                let cmd = Command::SendRaw {
                    local: plan.port,
                    to,
                    data: pkt.to_vec(),
                };
                plan.engine.apply(plan.port, cmd).map_err(|e| e.to_string())
            }
        };
        if let Err(e) = result {
            tracing::debug!(call = %plan.call_id, error = %e, "voicemail: greeting packet not sent");
            continue;
        }
        sent += 1;
    }
    buf.fill(0);
    tracing::info!(call = %plan.call_id, packets = sent, "voicemail greeting played");
}
