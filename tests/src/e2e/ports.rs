//! Free ports on 127.0.0.1.
//!
//! Ports come from 20000..32000, below Linux's ephemeral range (32768..60999 here), so a
//! port handed out is not taken a moment later by some client socket the kernel numbers.
//! A process-wide cursor keeps the tests of one binary apart; every port is checked by
//! binding it (UDP and TCP) before it is handed out.

use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::sync::Mutex;

use super::{E2eError, Result};

const LOW: u16 = 20_000;
const HIGH: u16 = 32_000;

static CURSOR: Mutex<Option<u16>> = Mutex::new(None);

fn is_free(port: u16) -> bool {
    let a = (Ipv4Addr::LOCALHOST, port);
    UdpSocket::bind(a).is_ok() && TcpListener::bind(a).is_ok()
}

/// One port free for both UDP and TCP.
pub fn free_port() -> Result<u16> {
    free_block(1)
}

/// The first of `n` consecutive ports, each free for both UDP and TCP.
pub fn free_block(n: u16) -> Result<u16> {
    if n == 0 || n > (HIGH - LOW) / 4 {
        return Err(E2eError::new(format!(
            "cannot hand out a block of {n} ports"
        )));
    }
    let mut cursor = CURSOR.lock().unwrap_or_else(|p| p.into_inner());
    let mut start = cursor.unwrap_or_else(|| {
        // Different test processes start in different places.
        let spread = (std::process::id() as u64).wrapping_mul(7919) % u64::from(HIGH - LOW);
        LOW + spread as u16
    });
    let mut tried = 0u32;
    while tried < u32::from(HIGH - LOW) {
        if start + n > HIGH {
            start = LOW;
        }
        match (start..start + n).find(|&p| !is_free(p)) {
            None => {
                *cursor = Some(start + n);
                return Ok(start);
            }
            Some(busy) => {
                tried += u32::from(busy - start) + 1;
                start = busy + 1;
            }
        }
    }
    Err(E2eError::new(format!(
        "no {n} consecutive free ports in {LOW}..{HIGH} on 127.0.0.1"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_do_not_overlap_and_are_bindable() {
        let a = free_block(10).unwrap();
        let b = free_block(10).unwrap();
        assert!(a + 10 <= b || b + 10 <= a, "{a} and {b} overlap");
        for p in a..a + 10 {
            assert!(is_free(p));
        }
        let p = free_port().unwrap();
        assert!((LOW..HIGH).contains(&p));
    }
}
