//! Runs SRTP protect and unprotect a fixed number of times in functions that callgrind can
//! isolate (`--toggle-collect`), so that `bench/icount.sh` can report instructions per
//! packet: a number that does not depend on how busy the machine is.
//!
//! Usage: `srtp-icount [SUITE] [PACKETS]` (default AES_CM_128_HMAC_SHA1_80, 1000).

use relay::srtp::{MasterKey, Policy, SrtpContext, Suite};

const PAYLOAD: usize = 160;

#[inline(never)]
fn icount_protect(ctx: &mut SrtpContext, bufs: &mut [Vec<u8>], lens: &mut [usize]) {
    for (b, l) in bufs.iter_mut().zip(lens.iter_mut()) {
        *l = ctx.protect(b, 12 + PAYLOAD).unwrap_or(0);
    }
}

#[inline(never)]
fn icount_unprotect(ctx: &mut SrtpContext, bufs: &mut [Vec<u8>], lens: &[usize]) -> usize {
    let mut ok = 0;
    for (b, l) in bufs.iter_mut().zip(lens) {
        ok += ctx.unprotect(&mut b[..*l]).is_ok() as usize;
    }
    ok
}

fn main() {
    let mut args = std::env::args().skip(1);
    let suite: Suite = args
        .next()
        .map_or(Ok(Suite::AesCm128HmacSha1_80), |s| s.parse())
        .unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(2)
        });
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let key: Vec<u8> = (0..suite.key_len() as u8).collect();
    let salt: Vec<u8> = (0..suite.salt_len() as u8).map(|b| b ^ 0x5a).collect();
    let master = MasterKey::new(suite, &key, &salt).expect("key sizes follow the suite");
    let mut tx = SrtpContext::new(Policy::new(suite, master.clone())).expect("policy");
    let mut rx = SrtpContext::new(Policy::new(suite, master)).expect("policy");
    let mut bufs: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let mut b = vec![0u8; 12 + PAYLOAD + 32];
            b[0] = 0x80;
            b[1] = 0;
            b[2..4].copy_from_slice(&(i as u16).to_be_bytes());
            b[4..8].copy_from_slice(&(i as u32 * 160).to_be_bytes());
            b[8..12].copy_from_slice(&0x1234_5678u32.to_be_bytes());
            b[12..12 + PAYLOAD].fill(0xd5);
            b
        })
        .collect();
    let mut lens = vec![0; n];
    icount_protect(&mut tx, &mut bufs, &mut lens);
    let ok = icount_unprotect(&mut rx, &mut bufs, &lens);
    if ok != n {
        eprintln!("only {ok} of {n} packets round-tripped");
        std::process::exit(1);
    }
    println!("{suite} {n} packets round-tripped");
}
