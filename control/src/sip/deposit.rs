//! Voicemail deposit on the SIP edge: a call to a mailbox's voicemail URI is answered by
//! srtpgate itself. The relay anchors the call as if srtpgate were the callee (one
//! [`CallRegistry`] call whose answering side is a sink socket that discards what it gets),
//! answers the caller with its own SDES key or, for a DTLS-SRTP caller, its certificate's
//! fingerprint, taps the caller-facing port as received and records the caller's SRTP into
//! a sealed message ([`relay::record::Recorder`]); a greeting and a beep are played to the
//! caller meanwhile ([`super::deposit_media`]). BYE closes the message.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use relay::engine::{tap, Command, LocalPort, TapWhat};
use relay::record::{Leg, LegSource, Recorder};

use super::deposit_media::{self, Plan, Playback, Shared, SinkRoute};
use super::greeting::{Codec, Greetings};
use super::media::{AnswerHook, MediaFailure};
pub use super::proxy::{DepositReason, RedirectPolicy};
use crate::call::crypto::fresh_key;
use crate::call::sdp::{extract, rewrite, RewriteOptions};
use crate::call::{AnswerOptions, CallRegistry, CryptoLine, OfferOptions};
use crate::sdp::SessionDescription;
use crate::voicemail::config::{mailbox_for, VoicemailConfig};
use crate::voicemail::MailboxStore;

/// How long a DTLS-SRTP caller has to complete its handshake (the DTLS session's own
/// `handshake-timeout` normally fails it earlier).
const KEY_WAIT: Duration = Duration::from_secs(30);
/// Media threads (greetings, DTLS-SRTP key waits) running at once, unless configured.
pub const MEDIA_THREAD_LIMIT: usize = 256;

/// Tap ids of deposits; high bit set so they never meet lawful interception's ids.
static NEXT_TAP: AtomicU64 = AtomicU64::new(1 << 63);
const TAP_CAPACITY: usize = 1024;

/// What the proxy needs from voicemail.
pub trait Deposit: Send {
    /// `None`: `ruri_user` is not a voicemail URI. `Some(None)`: it is, but no mailbox
    /// matches (404). `Some(Some(id))`: the mailbox.
    fn mailbox_for(&self, ruri_user: &str) -> Option<Option<String>>;
    /// Anchors the caller's offer, starts recording; returns srtpgate's answer SDP.
    /// `identity` is the call's identities (JSON, as for routed calls), kept on the call so
    /// that lawful interception matches a deposit like any call.
    fn start(
        &mut self,
        call_id: &str,
        from_tag: &str,
        to_tag: &str,
        mailbox: &str,
        sdp: &[u8],
        identity: &str,
    ) -> Result<Vec<u8>, MediaFailure>;
    /// Closes the message (complete) and frees the media.
    fn stop(&mut self, call_id: &str);
    /// Whether a deposit on `call_id` is running.
    fn active(&self, call_id: &str) -> bool;
    /// Deposits whose recording stopped by itself (maximum length, disk full): the proxy
    /// ends their calls with a BYE, then calls [`Deposit::stop`].
    fn finished(&self) -> Vec<String> {
        Vec::new()
    }
    /// The mailbox of a called or diverting `user` (a mailbox id, or its owner's user
    /// part), for calls sent to voicemail by [`Deposit::redirect_policy`] or the fixed URI.
    fn mailbox_of(&self, _user: &str) -> Option<String> {
        None
    }
    /// When routed calls to `mailbox`'s owner are answered by voicemail instead.
    fn redirect_policy(&self, _mailbox: &str) -> RedirectPolicy {
        RedirectPolicy::default()
    }
    /// Whether `ruri_user` is the fixed voicemail URI (mailbox from diversion information).
    fn is_fixed_uri(&self, _ruri_user: &str) -> bool {
        false
    }
}

struct Session {
    port: LocalPort,
    tap_id: u64,
    shared: Arc<Shared>,
    /// The deposit's media thread (DTLS keys, greeting), while it runs.
    media: Option<std::thread::JoinHandle<()>>,
}

/// [`Deposit`] on the daemon's call registry and mailbox store.
pub struct RegistryDeposit {
    pub registry: Arc<Mutex<CallRegistry>>,
    pub store: Arc<Mutex<MailboxStore>>,
    pub config: VoicemailConfig,
    /// Run once a deposit's media is installed (lawful interception attaches its taps).
    after_answer: Option<AnswerHook>,
    /// Where the relay sends the caller's media on (see [`Sink`]), per local address.
    sinks: HashMap<std::net::IpAddr, Sink>,
    sessions: HashMap<String, Session>,
    greetings: Greetings,
    /// Media threads running now, and how many may run at once.
    media_running: Arc<AtomicUsize>,
    media_limit: usize,
}

/// A UDP socket that takes and discards what the relay forwards from deposit callers.
/// The relay then handles a deposit like any call (packets have a destination, so taps
/// that see relayed media, e.g. lawful interception's, see the caller's media too).
struct Sink {
    addr: std::net::SocketAddr,
    /// The same socket, for sending greetings into the relay as the callee would.
    sender: std::net::UdpSocket,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sink {
    fn start(ip: std::net::IpAddr) -> std::io::Result<Sink> {
        let sock = std::net::UdpSocket::bind((ip, 0))?;
        sock.set_read_timeout(Some(std::time::Duration::from_millis(200)))?;
        let addr = sock.local_addr()?;
        let sender = sock.try_clone()?;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("srtpgate-vm-sink".into())
            .spawn(move || {
                let mut buf = [0u8; 2048];
                while !flag.load(Ordering::Relaxed) {
                    let _ = sock.recv_from(&mut buf);
                }
            })?;
        Ok(Sink {
            addr,
            sender,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl RegistryDeposit {
    pub fn new(
        registry: Arc<Mutex<CallRegistry>>,
        store: Arc<Mutex<MailboxStore>>,
        config: VoicemailConfig,
    ) -> Self {
        RegistryDeposit {
            registry,
            store,
            config,
            after_answer: None,
            sinks: HashMap::new(),
            sessions: HashMap::new(),
            greetings: Greetings::default(),
            media_running: Arc::new(AtomicUsize::new(0)),
            media_limit: MEDIA_THREAD_LIMIT,
        }
    }

    /// At most `n` deposits run a media thread at once: beyond that, deposits get no
    /// greeting and DTLS-SRTP callers are refused (488).
    pub fn with_media_thread_limit(mut self, n: usize) -> Self {
        self.media_limit = n;
        self
    }

    fn media_busy(&self) -> bool {
        self.media_running.load(Ordering::Relaxed) >= self.media_limit
    }

    /// Plays these greetings (loaded at start-up) to callers.
    pub fn with_greetings(mut self, greetings: Greetings) -> Self {
        self.greetings = greetings;
        self
    }

    /// Runs `hook` after each deposit's media is installed, before the 200 OK goes out.
    pub fn with_after_answer(mut self, hook: Option<AnswerHook>) -> Self {
        self.after_answer = hook;
        self
    }
}

fn fail(s: impl Into<String>) -> MediaFailure {
    MediaFailure(s.into())
}

impl Deposit for RegistryDeposit {
    fn mailbox_for(&self, ruri_user: &str) -> Option<Option<String>> {
        let user = self.config.user_of(ruri_user)?;
        let store = self.store.lock().unwrap_or_else(|p| p.into_inner());
        Some(mailbox_for(&store, user))
    }

    fn start(
        &mut self,
        call_id: &str,
        from_tag: &str,
        to_tag: &str,
        mailbox: &str,
        sdp: &[u8],
        identity: &str,
    ) -> Result<Vec<u8>, MediaFailure> {
        let mut sdp = SessionDescription::parse_bytes(sdp)
            .map_err(|e| fail(format!("SDP not understood: {e}")))?;
        let media = extract(&sdp, None).map_err(|e| fail(e.to_string()))?;
        let first = media
            .iter()
            .position(|m| m.port != 0 && m.kind == "audio")
            .ok_or_else(|| fail("no audio stream to record"))?;
        let codec = sdp.media.get(first).and_then(Codec::choose);
        // A DTLS-SRTP caller (no SDES keys to use instead) needs a media thread to start
        // its recording once the handshake is done.
        if media[first].dtls.is_some() && media[first].crypto.is_empty() && self.media_busy() {
            return Err(fail(
                "voicemail is busy: too many DTLS-SRTP deposits and greetings at once",
            ));
        }
        let cfg = {
            let store = self.store.lock().unwrap_or_else(|p| p.into_inner());
            store
                .recorder_config(
                    mailbox,
                    self.config
                        .fsync_policy()
                        .map_err(|e| fail(e.to_string()))?,
                    self.config.min_free_bytes,
                    Some(self.config.max_length()),
                )
                .map_err(|e| fail(e.to_string()))?
        };
        let mut reg = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        let offer = OfferOptions {
            srtp_toward_answerer: Some(true),
            dtls_toward_answerer: Some(false),
            ..Default::default()
        };
        let toward_sink = reg
            .offer(call_id, from_tag, None, &media, &offer)
            .map_err(|e| fail(e.to_string()))?;
        if let Some(c) = reg.call_mut(call_id) {
            c.metadata = Some(identity.to_string());
        }
        // The answering side is a sink: no address (the relay sends nowhere), a fresh key
        // of its own for the suite the relay offered.
        let mut sink = Vec::with_capacity(media.len());
        // How the greeting enters the relay: from the sink socket to the sink-facing port.
        let mut route = None;
        for (i, (m, l)) in media.iter().zip(&toward_sink).enumerate() {
            let mut s = m.clone();
            let sink_sock = match self.sinks.entry(l.addr) {
                std::collections::hash_map::Entry::Occupied(e) => Some(e.into_mut()),
                std::collections::hash_map::Entry::Vacant(v) => match Sink::start(l.addr) {
                    Ok(k) => Some(v.insert(k)),
                    Err(e) => {
                        // An advertised address that cannot be bound (NAT): record all the
                        // same, with nowhere to forward to.
                        tracing::debug!(error = %e, "voicemail: no sink socket");
                        None
                    }
                },
            };
            let to = sink_sock.as_ref().map(|k| k.addr);
            let sender = match sink_sock {
                Some(k) if i == first => k.sender.try_clone().ok(),
                _ => None,
            };
            s.addr = to.map(|a| a.ip());
            s.port = to.map_or(m.port, |a| a.port());
            s.rtcp = to;
            s.ice = None;
            s.dtls = None;
            s.unsupported_suites.clear();
            s.crypto = match l.crypto.first() {
                Some(c) => vec![CryptoLine {
                    tag: c.tag,
                    suite: c.suite,
                    key: fresh_key(c.suite).map_err(|e| fail(e.to_string()))?,
                    extra_keys: Vec::new(),
                    params: Vec::new(),
                }],
                None => Vec::new(),
            };
            s.srtp = !s.crypto.is_empty();
            if let Some(sock) = sender {
                route = Some(SinkRoute {
                    sock,
                    to: std::net::SocketAddr::new(l.addr, l.port),
                    key: s.crypto.first().cloned(),
                });
            }
            sink.push(s);
        }
        let started = reg
            .answer(call_id, from_tag, to_tag, &sink, &AnswerOptions::default())
            .map_err(|e| fail(e.to_string()))
            .and_then(|toward_caller| {
                let leg = reg
                    .call(call_id)
                    .and_then(|c| c.monologue(from_tag))
                    .and_then(|m| m.leg(first))
                    .ok_or_else(|| fail("the caller's leg is missing"))?;
                // A DTLS-SRTP caller's keys come from the handshake, after the 200 OK: the
                // tap is attached now (it keeps what arrives) and the recorder starts when
                // the keys are there.
                let dtls = leg.dtls.is_some();
                let source = match leg.negotiated.as_ref().and_then(|n| n.rx.as_ref()) {
                    Some(line) => LegSource::Srtp {
                        policy: line.policy(),
                        initial_roc: 0,
                    },
                    None => LegSource::Plain,
                };
                let port = leg.ports.rtp;
                let tap_id = NEXT_TAP.fetch_add(1, Ordering::Relaxed);
                let (t, rx) = tap(tap_id, TapWhat::AsReceived, 0, TAP_CAPACITY);
                reg.engine()
                    .apply(port, Command::AttachTap(port, t))
                    .map_err(|e| fail(e.to_string()))?;
                if dtls {
                    return Ok((toward_caller, None, Some((cfg, rx)), port, tap_id));
                }
                let legs = vec![Leg {
                    name: "caller".into(),
                    source,
                    tap: rx,
                }];
                match Recorder::start(cfg, legs) {
                    Ok(recorder) => Ok((toward_caller, Some(recorder), None, port, tap_id)),
                    Err(e) => {
                        let _ = reg.engine().apply(port, Command::DetachTap(port, tap_id));
                        Err(fail(format!("voicemail cannot record: {e}")))
                    }
                }
            });
        let (toward_caller, recorder, pending, port, tap_id) = match started {
            Ok(s) => s,
            Err(e) => {
                let _ = reg.delete(call_id, std::time::Duration::ZERO);
                return Err(e);
            }
        };
        if let Some(hook) = &self.after_answer {
            hook(&reg, call_id);
        }
        let engine = reg.engine_handle();
        drop(reg);
        let greeting = self.greetings.for_mailbox(mailbox);
        let playback = match (greeting, codec) {
            (Some(greeting), Some((codec, payload_type))) => Some(Playback {
                greeting,
                codec,
                payload_type,
                beep: self.greetings.beep,
            }),
            (Some(_), None) => {
                tracing::info!(call = %call_id, "voicemail: no greeting (the caller offered neither PCMU nor PCMA)");
                None
            }
            (None, _) => None,
        };
        let playback = match playback {
            Some(_) if pending.is_none() && self.media_busy() => {
                tracing::warn!(call = %call_id, "voicemail: no greeting (too many deposits playing one at once)");
                None
            }
            p => p,
        };
        let shared = Arc::new(Shared::default());
        *shared.recorder.lock().unwrap_or_else(|p| p.into_inner()) = recorder;
        let (media, spawn_error) = if pending.is_some() || playback.is_some() {
            let plan = Plan {
                registry: self.registry.clone(),
                engine,
                call_id: call_id.to_string(),
                from_tag: from_tag.to_string(),
                stream: first,
                port,
                pending,
                key_wait: KEY_WAIT,
                playback,
                route,
                running: self.media_running.clone(),
            };
            self.media_running.fetch_add(1, Ordering::Relaxed);
            match deposit_media::spawn(plan, shared.clone()) {
                Ok(h) => (Some(h), None),
                Err(e) => {
                    self.media_running.fetch_sub(1, Ordering::Relaxed);
                    (None, Some(e))
                }
            }
        } else {
            (None, None)
        };
        self.sessions.insert(
            call_id.to_string(),
            Session {
                port,
                tap_id,
                shared,
                media,
            },
        );
        if let Some(e) = spawn_error {
            // Without the thread a DTLS caller would never be recorded: the session is
            // stopped like any other.
            self.stop(call_id);
            return Err(fail(format!(
                "voicemail cannot start its media thread: {e}"
            )));
        }
        rewrite(&mut sdp, &toward_caller, &RewriteOptions::default());
        sdp.bump_version();
        tracing::info!(call = %call_id, mailbox = %mailbox, "voicemail deposit started");
        Ok(sdp.to_string().into_bytes())
    }

    fn stop(&mut self, call_id: &str) {
        let Some(mut s) = self.sessions.remove(call_id) else {
            return;
        };
        s.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = s.media.take() {
            let _ = t.join();
        }
        let mut reg = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        let _ = reg
            .engine()
            .apply(s.port, Command::DetachTap(s.port, s.tap_id));
        let _ = reg.delete(call_id, std::time::Duration::ZERO);
        drop(reg);
        let recorder = s
            .shared
            .recorder
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        match recorder.map(Recorder::stop) {
            Some(Ok(Some(info))) => {
                tracing::info!(call = %call_id, packets = info.packets, "voicemail message stored")
            }
            Some(Ok(None)) | None => {
                tracing::info!(call = %call_id, "voicemail deposit ended with nothing recorded")
            }
            Some(Err(e)) => {
                tracing::warn!(call = %call_id, error = %e, "voicemail message could not be closed")
            }
        }
    }

    fn active(&self, call_id: &str) -> bool {
        self.sessions.contains_key(call_id)
    }

    fn mailbox_of(&self, user: &str) -> Option<String> {
        let store = self.store.lock().unwrap_or_else(|p| p.into_inner());
        mailbox_for(&store, user)
    }

    fn redirect_policy(&self, mailbox: &str) -> RedirectPolicy {
        self.config.redirect_policy(mailbox)
    }

    fn is_fixed_uri(&self, ruri_user: &str) -> bool {
        self.config.is_fixed_uri(ruri_user)
    }

    fn finished(&self) -> Vec<String> {
        self.sessions
            .iter()
            .filter(|(_, s)| {
                s.shared.failed.load(Ordering::Relaxed)
                    || s.shared
                        .recorder
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .as_ref()
                        .is_some_and(|r| r.stopped().is_some())
            })
            .map(|(id, _)| id.clone())
            .collect()
    }
}

impl Drop for RegistryDeposit {
    fn drop(&mut self) {
        let ids: Vec<String> = self.sessions.keys().cloned().collect();
        for id in ids {
            self.stop(&id);
        }
    }
}
