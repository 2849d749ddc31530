//! Why each SRTP primitive uses the backend it does: the chosen implementation against the
//! alternatives, on the 160-byte payload of a 20 ms G.711 packet and on 1188 bytes.
//! `cargo bench -p srtpgate-bench --bench backends`

use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use relay::srtp::primitives::{AesCm, AesGcm, Hmac};

const SIZES: [usize; 2] = [160, 1188];

fn hmac_sha1(c: &mut Criterion) {
    use hmac::Mac as _;
    let key = [7u8; 20];
    let mut g = c.benchmark_group("hmac_sha1");
    for n in SIZES {
        let data = vec![0xa5u8; n + 12];
        g.throughput(Throughput::Bytes(data.len() as u64));
        let ours = Hmac::new(&key);
        g.bench_with_input(
            BenchmarkId::new("chosen: precomputed pads + sha1 compress", n),
            &data,
            |b, d| b.iter(|| ours.mac(&[black_box(d), &[0, 0, 0, 1]])),
        );
        let keyed =
            <hmac::Hmac<sha1::Sha1> as hmac::Mac>::new_from_slice(&key).expect("any key length");
        g.bench_with_input(
            BenchmarkId::new("RustCrypto hmac, keyed once, cloned", n),
            &data,
            |b, d| {
                b.iter(|| {
                    let mut m = keyed.clone();
                    m.update(black_box(d));
                    m.update(&[0, 0, 0, 1]);
                    m.finalize().into_bytes()
                })
            },
        );
        g.bench_with_input(
            BenchmarkId::new("RustCrypto hmac, keyed per packet", n),
            &data,
            |b, d| {
                b.iter(|| {
                    let mut m = <hmac::Hmac<sha1::Sha1> as hmac::Mac>::new_from_slice(&key)
                        .expect("any key length");
                    m.update(black_box(d));
                    m.update(&[0, 0, 0, 1]);
                    m.finalize().into_bytes()
                })
            },
        );
        let rk = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &key);
        g.bench_with_input(BenchmarkId::new("ring hmac", n), &data, |b, d| {
            b.iter(|| {
                let mut ctx = ring::hmac::Context::with_key(&rk);
                ctx.update(black_box(d));
                ctx.update(&[0, 0, 0, 1]);
                ctx.sign()
            })
        });
    }
    g.finish();
}

fn aes_ctr(c: &mut Criterion) {
    use ctr::cipher::{KeyIvInit, StreamCipher};
    let key = [3u8; 16];
    let iv = [9u8; 16];
    let mut g = c.benchmark_group("aes128_ctr");
    for n in SIZES {
        let mut data = vec![0u8; n];
        g.throughput(Throughput::Bytes(n as u64));
        let ours = AesCm::new(&key).expect("16-byte key");
        g.bench_function(
            BenchmarkId::new("chosen: aes block batches, key expanded once", n),
            |b| b.iter(|| ours.xor(&iv, black_box(&mut data))),
        );
        g.bench_function(
            BenchmarkId::new("RustCrypto ctr, key expanded per packet", n),
            |b| {
                b.iter(|| {
                    let mut s = ctr::Ctr128BE::<aes::Aes128>::new(&key.into(), &iv.into());
                    s.apply_keystream(black_box(&mut data));
                })
            },
        );
    }
    g.finish();
}

fn aes_gcm(c: &mut Criterion) {
    use aes_gcm::aead::AeadInPlace;
    use aes_gcm::KeyInit;
    let key = [5u8; 16];
    let nonce = [1u8; 12];
    let aad = [0x80u8; 12];
    let mut g = c.benchmark_group("aes128_gcm_seal");
    for n in SIZES {
        let mut data = vec![0u8; n];
        g.throughput(Throughput::Bytes(n as u64));
        let ours = AesGcm::new(&key).expect("16-byte key");
        g.bench_function(BenchmarkId::new("chosen: ring", n), |b| {
            b.iter(|| ours.seal(nonce, &aad, black_box(&mut data)))
        });
        let rc = aes_gcm::Aes128Gcm::new(&key.into());
        g.bench_function(BenchmarkId::new("RustCrypto aes-gcm", n), |b| {
            b.iter(|| rc.encrypt_in_place_detached(&nonce.into(), &aad, black_box(&mut data)))
        });
    }
    g.finish();
}

fn config() -> Criterion {
    let secs = |var: &str, default: u64| {
        Duration::from_millis(
            std::env::var(var)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default),
        )
    };
    Criterion::default()
        .warm_up_time(secs("BENCH_WARMUP_MS", 500))
        .measurement_time(secs("BENCH_MEASURE_MS", 1500))
        .sample_size(30)
}

criterion_group! { name = benches; config = config(); targets = hmac_sha1, aes_ctr, aes_gcm }
criterion_main!(benches);
