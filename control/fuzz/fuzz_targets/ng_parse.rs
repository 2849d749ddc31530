#![no_main]
//! ng datagrams straight from the network: the bencode decoder, the request parser and
//! the server front must never panic, whatever the bytes. The decoder is strict (no
//! leading zeros, no `-0`, no trailing bytes) and keeps dictionary order, so every
//! accepted input has exactly one encoding: re-encoding must give the input back.

use std::net::SocketAddr;
use std::time::Instant;

use control::ng::{bencode, NgHandler, NgRequest, NgResponse, NgServer};

struct Echo;

impl NgHandler for Echo {
    fn handle(&mut self, req: &NgRequest) -> NgResponse {
        NgResponse::ok().warn(format!("{:?}", req.command))
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(value) = bencode::decode(data) {
        assert_eq!(value.encode(), data, "decode/encode is not the identity");
        let _ = NgRequest::from_value(&value);
    }
    let _ = NgRequest::parse(data);

    let peer = SocketAddr::from(([127, 0, 0, 1], 5060));
    let mut server = NgServer::default();
    let now = Instant::now();
    let first = server.handle_datagram(peer, data, now, &mut Echo);
    // A second copy is a retransmission: same answer, no second action.
    let second = server.handle_datagram(peer, data, now, &mut Echo);
    assert_eq!(first, second);
});
