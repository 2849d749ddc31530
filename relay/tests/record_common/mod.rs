//! Helpers shared by the recording tests: SRTP senders, a G.711 µ-law tone, key material.
#![allow(dead_code)]

use relay::srtp::{MasterKey, Policy, SrtpContext, Suite};

pub const SUITE: Suite = Suite::AesCm128HmacSha1_80;

pub fn policy(seed: u8) -> Policy {
    let key: Vec<u8> = (0..16u8).map(|b| b ^ seed).collect();
    let salt: Vec<u8> = (0..14u8).map(|b| b.wrapping_mul(7) ^ seed).collect();
    Policy::new(SUITE, MasterKey::new(SUITE, &key, &salt).unwrap())
}

pub fn sender(seed: u8) -> SrtpContext {
    SrtpContext::new(policy(seed)).unwrap()
}

pub fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, pt, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[4..8].copy_from_slice(&ts.to_be_bytes());
    p[8..12].copy_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

pub fn protect(ctx: &mut SrtpContext, plain: &[u8]) -> Vec<u8> {
    let mut p = plain.to_vec();
    p.resize(plain.len() + 32, 0);
    let n = ctx.protect(&mut p, plain.len()).unwrap();
    p.truncate(n);
    p
}

/// G.711 µ-law of a 16-bit linear sample (ITU-T G.711, the segment encoding).
pub fn ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    let mut s = sample as i32;
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    let s = (s.min(32635) + BIAS) as u32;
    let exp = (31 - s.leading_zeros()).saturating_sub(7).min(7);
    let mant = (s >> (exp + 3)) & 0x0f;
    !(sign as u8 | ((exp as u8) << 4) | mant as u8)
}

/// `ms` milliseconds of a `freq` Hz tone at 8 kHz, µ-law, in 20 ms frames of 160 bytes.
pub fn tone_frames(freq: f64, ms: usize) -> Vec<Vec<u8>> {
    let samples = ms * 8;
    let all: Vec<u8> = (0..samples)
        .map(|i| {
            let t = i as f64 / 8000.0;
            ulaw((f64::sin(2.0 * std::f64::consts::PI * freq * t) * 12000.0) as i16)
        })
        .collect();
    all.chunks(160).map(|c| c.to_vec()).collect()
}

/// Whether `hay` contains any `n`-byte window of any of `frames`.
pub fn contains_any_window(hay: &[u8], frames: &[Vec<u8>], n: usize) -> bool {
    let mut windows = std::collections::HashSet::new();
    for f in frames {
        for w in f.windows(n) {
            windows.insert(w.to_vec());
        }
    }
    hay.windows(n).any(|w| windows.contains(w))
}

/// An engine on ports `base..base+99` with an SRTP flow (keys of `seed`) on one port and an
/// as-received tap on it; the flow has nowhere to send, as for a voicemail deposit.
pub fn engine_with_tap(
    base: u16,
    seed: u8,
) -> (
    relay::engine::Engine,
    relay::engine::LocalPort,
    relay::engine::TapReceiver,
) {
    use relay::engine::{
        tap, Command, Engine, EngineConfig, FlowSpec, PortShape, TapWhat, Transform,
    };
    let e = Engine::start(EngineConfig {
        workers: 1,
        pin: false,
        port_min: base,
        port_max: base + 99,
        ..Default::default()
    })
    .unwrap();
    let pa = e.allocate(0, None, PortShape::Single, 1).unwrap().ports[0];
    let pb = e.allocate(0, Some(0), PortShape::Single, 1).unwrap().ports[0];
    let mut spec = FlowSpec::plain(pb);
    spec.ingress = Transform::Srtp(Box::new(sender(seed)));
    e.install(pa, spec).unwrap();
    let (t, rx) = tap(1, TapWhat::AsReceived, 0, 256);
    e.apply(pa, Command::AttachTap(pa, t)).unwrap();
    (e, pa, rx)
}

pub fn port_addr(l: relay::engine::LocalPort) -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], l.port))
}
