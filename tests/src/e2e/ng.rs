//! The ng control protocol, only as far as readiness needs it: `ping`.
//!
//! An ng request is one UDP datagram `<cookie> <bencoded dictionary>`; the answer repeats
//! the cookie. `ping` is `d7:command4:pinge` and its answer carries `6:result4:pong`.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::Result;

/// Sends one ng `ping` and waits up to `timeout` for `pong`. `Ok(false)` when nothing (or
/// something else) came back in time.
pub fn ping(ng: SocketAddr, timeout: Duration) -> Result<bool> {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let cookie = format!(
        "e2e_{}_{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    );
    let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    sock.set_read_timeout(Some(timeout))?;
    sock.send_to(format!("{cookie} d7:command4:pinge").as_bytes(), ng)?;
    let mut buf = [0u8; 1500];
    loop {
        match sock.recv_from(&mut buf) {
            Ok((n, from)) if from == ng => {
                let reply = &buf[..n];
                let Some(rest) = reply.strip_prefix(cookie.as_bytes()) else {
                    continue;
                };
                return Ok(contains(rest, b"6:result4:pong"));
            }
            Ok(_) => continue,
            // Nothing listening yet (ICMP port unreachable) or no answer in time.
            Err(_) => return Ok(false),
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
