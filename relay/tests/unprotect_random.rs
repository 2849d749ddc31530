//! A bounded, deterministic random-input run of the fuzz drivers in relay/fuzz, so that
//! every `cargo test` checks that `unprotect` and `unprotect_rtcp` never panic and that
//! round trips hold, for every suite and option combination, without nightly tooling.
//! The open-ended search is `tools/fuzz.sh` (cargo-fuzz / libFuzzer).

#[path = "../fuzz/src/lib.rs"]
mod drivers;

/// xorshift64*: a small deterministic generator, so that a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Inputs in the drivers' layout: suite byte, options byte, then 1..=4 length-prefixed
/// packets. Suite and options run through all 11 x 256 combinations, without and then
/// with damage.
fn inputs(seed: u64) -> impl Iterator<Item = Vec<u8>> {
    let mut rng = Rng(seed);
    (0..2 * 11 * 256).map(move |i| {
        // The second pass damages protected packets in round trips.
        let damage = if i >= 11 * 256 { 0x80 } else { 0 };
        let mut input = vec![(i % 11) as u8 | damage, ((i / 11) % 256) as u8];
        for _ in 0..1 + rng.below(4) {
            let len = rng.below(300);
            input.extend_from_slice(&(len as u16).to_be_bytes());
            let mut pkt: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            // Mostly version 2, so that packets get past the first check; few CSRCs, so
            // that the header usually fits.
            if let Some(b) = pkt.first_mut() {
                if rng.below(4) != 0 {
                    *b = 0x80 | (*b & 0x13);
                }
            }
            input.extend_from_slice(&pkt);
        }
        input
    })
}

#[test]
fn unprotect_never_panics_on_random_input() {
    for input in inputs(0x5eed_0001) {
        drivers::unprotect(&input);
    }
}

#[test]
fn unprotect_rtcp_never_panics_on_random_input() {
    for input in inputs(0x5eed_0002) {
        drivers::unprotect_rtcp(&input);
    }
}
