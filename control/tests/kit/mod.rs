//! Set-up shared by the daemon-level tests: a daemon configuration on loopback, and a
//! sealed voicemail message recorded as a deposit would record it.
#![allow(dead_code)]

use control::config::Config;
use control::voicemail::MailboxStore;
use relay::engine::TapKind;
use relay::record::{FsyncPolicy, LegSource, MessageSession};
use relay::srtp::{MasterKey, Policy, SrtpContext, Suite};

/// A daemon configuration with ng on a free loopback port, no metrics listener, and one
/// unpinned media worker on `ports` ports from `port_min`; the rest as by default.
pub fn daemon_config(port_min: u16, ports: u16) -> Config {
    let mut c = Config::default();
    c.ng.listen = "127.0.0.1:0".parse().unwrap();
    c.metrics.listen = None;
    c.media.port_min = port_min;
    c.media.port_max = port_min + ports - 1;
    c.media.workers = 1;
    c.media.pin = false;
    c
}

/// Records a message of `packets` SRTP packets (160 payload bytes each) from one caller
/// into mailbox `id` of `store`, as a deposit would; returns the stored file's bytes.
pub fn record(store: &MailboxStore, id: &str, packets: u16) -> Vec<u8> {
    let cfg = store
        .recorder_config(id, FsyncPolicy::OnClose, 0, None)
        .unwrap();
    let s = Suite::AesCm128HmacSha1_80;
    let policy = Policy::new(s, MasterKey::new(s, &[3; 16], &[4; 14]).unwrap());
    let mut tx = SrtpContext::new(policy.clone()).unwrap();
    let legs = vec![(
        "caller".to_string(),
        LegSource::Srtp {
            policy,
            initial_roc: 0,
        },
    )];
    let mut m = MessageSession::new(&cfg, legs, 1_000).unwrap();
    for i in 0..packets {
        let mut p = vec![0x80, 0, (i >> 8) as u8, i as u8, 0, 0, 0, 0, 0, 0, 0, 7];
        p.extend_from_slice(&[0x55; 160]);
        let n = p.len();
        p.resize(n + 10, 0);
        tx.protect(&mut p, n).unwrap();
        m.on_packet(0, TapKind::Rtp, 5, &p, false);
    }
    let info = m.finish(0).unwrap().unwrap();
    std::fs::read(info.path).unwrap()
}
