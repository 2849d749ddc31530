//! The bodies of `query` (and `delete`) and `statistics` replies, shaped as rtpengine's
//! documentation shows them. The call layer fills these types; [`super::NgResponse`] turns
//! them into dictionaries.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::bencode::Value;

/// Packet counters of one stream, or totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PacketCounters {
    pub packets: u64,
    pub bytes: u64,
    pub errors: u64,
}

impl PacketCounters {
    fn to_value(self) -> Value {
        Value::dict()
            .with("packets", self.packets)
            .with("bytes", self.bytes)
            .with("errors", self.errors)
    }
}

/// One call, as `query` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallStats {
    /// Creation time, seconds since the UNIX epoch, and its microseconds.
    pub created: i64,
    pub created_us: u32,
    /// Time of the last signalling event (offer, answer, ...), UNIX seconds.
    pub last_signal: i64,
    pub metadata: Option<String>,
    /// One entry per SIP tag; an empty tag is a side that has not signalled one yet.
    pub tags: Vec<TagStats>,
    /// Sum over all streams: RTP and RTCP.
    pub totals_rtp: PacketCounters,
    pub totals_rtcp: PacketCounters,
}

/// One call participant (SIP tag).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagStats {
    pub tag: String,
    pub label: Option<String>,
    pub via_branch: Option<String>,
    /// UNIX seconds when the tag was first seen.
    pub created: i64,
    /// The tag of the other side, once known.
    pub in_dialogue_with: Option<String>,
    pub medias: Vec<MediaStats>,
}

/// One SDP media section of a participant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MediaStats {
    /// 1-based position of the media section.
    pub index: u32,
    /// `audio`, `video`, ...
    pub media_type: String,
    /// The transport protocol, e.g. `RTP/SAVP`.
    pub protocol: Option<String>,
    /// Status flags; rtpengine uses `initialized`, `rtcp-mux`, `DTLS-SRTP`, `SDES`,
    /// `passthrough`, `ICE`, `send`, `recv`, `asymmetric`.
    pub flags: Vec<String>,
    /// Usually two: RTP then RTCP.
    pub streams: Vec<StreamStats>,
}

/// One packet stream (a local port).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamStats {
    pub local_port: Option<u16>,
    pub local_address: Option<IpAddr>,
    /// Where packets are forwarded to (learned or from the SDP).
    pub endpoint: Option<SocketAddr>,
    /// The address the peer advertised in its SDP.
    pub advertised_endpoint: Option<SocketAddr>,
    /// e.g. `AES_CM_128_HMAC_SHA1_80`, when SRTP is in effect.
    pub crypto_suite: Option<String>,
    /// UNIX seconds of the last packet received on this port.
    pub last_packet: i64,
    /// rtpengine uses `RTP`, `RTCP`, `filled`, `confirmed`, `strict source address`,
    /// `media handover`, `ICE`.
    pub flags: Vec<String>,
    /// Received on this port.
    pub stats: PacketCounters,
    /// Sent from this port.
    pub stats_out: PacketCounters,
}

fn endpoint(addr: Option<SocketAddr>) -> Value {
    match addr {
        None => Value::dict(),
        Some(a) => Value::dict()
            .with("family", if a.is_ipv4() { "IPv4" } else { "IPv6" })
            .with("address", a.ip().to_string())
            .with("port", a.port()),
    }
}

fn strings(items: &[String]) -> Value {
    Value::List(items.iter().map(Value::string).collect())
}

impl StreamStats {
    fn to_value(&self) -> Value {
        let mut d = Value::dict();
        if let Some(p) = self.local_port {
            d.insert("local port", p);
        }
        if let Some(a) = self.local_address {
            d.insert("local address", a.to_string());
            d.insert("family", if a.is_ipv4() { "IPv4" } else { "IPv6" });
        }
        d.insert("endpoint", endpoint(self.endpoint));
        d.insert("advertised endpoint", endpoint(self.advertised_endpoint));
        if let Some(s) = &self.crypto_suite {
            d.insert("crypto suite", s.as_str());
        }
        d.insert("last packet", self.last_packet);
        d.insert("flags", strings(&self.flags));
        d.insert("stats", self.stats.to_value());
        d.insert("stats_out", self.stats_out.to_value());
        d
    }
}

impl MediaStats {
    fn to_value(&self) -> Value {
        let mut d = Value::dict()
            .with("index", self.index)
            .with("type", self.media_type.as_str());
        if let Some(p) = &self.protocol {
            d.insert("protocol", p.as_str());
        }
        d.insert(
            "streams",
            Value::List(self.streams.iter().map(StreamStats::to_value).collect()),
        );
        d.insert("flags", strings(&self.flags));
        d
    }
}

impl TagStats {
    fn to_value(&self) -> Value {
        let mut d = Value::dict().with("tag", self.tag.as_str());
        if let Some(v) = &self.via_branch {
            d.insert("via-branch", v.as_str());
        }
        if let Some(l) = &self.label {
            d.insert("label", l.as_str());
        }
        d.insert("created", self.created);
        if let Some(other) = &self.in_dialogue_with {
            d.insert("in dialogue with", other.as_str());
        }
        d.insert(
            "medias",
            Value::List(self.medias.iter().map(MediaStats::to_value).collect()),
        );
        d
    }
}

impl CallStats {
    /// Appends the query keys (`created`, `last signal`, `tags`, `totals`, ...) to `d`.
    pub(crate) fn append_to(&self, d: &mut Value) {
        d.insert("created", self.created);
        d.insert("created_us", self.created_us);
        d.insert("last signal", self.last_signal);
        if let Some(m) = &self.metadata {
            d.insert("metadata", m.as_str());
        }
        let mut tags = Value::dict();
        for t in &self.tags {
            tags.insert(&t.tag, t.to_value());
        }
        d.insert("tags", tags);
        d.insert(
            "totals",
            Value::dict()
                .with("RTP", self.totals_rtp.to_value())
                .with("RTCP", self.totals_rtcp.to_value()),
        );
    }
}

/// The `statistics` reply: the content of rtpengine's `list jsonstats`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Statistics {
    pub current: CurrentStatistics,
    pub total: TotalStatistics,
    /// Per-proxy ng command counts. Left `None` by the call layer, the server fills it
    /// from its own counters.
    pub control: Option<ControlStatistics>,
}

/// Gauges and rates now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CurrentStatistics {
    pub sessions_own: u64,
    pub sessions_foreign: u64,
    pub sessions_total: u64,
    pub transcoded_media: u64,
    /// Per second.
    pub packet_rate: u64,
    pub byte_rate: u64,
    pub error_rate: u64,
}

/// Totals since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TotalStatistics {
    pub uptime: Duration,
    pub managed_sessions: u64,
    pub rejected_sessions: u64,
    pub timeout_sessions: u64,
    pub silent_timeout_sessions: u64,
    pub final_timeout_sessions: u64,
    pub offer_timeout_sessions: u64,
    pub regular_terminated_sessions: u64,
    pub forced_terminated_sessions: u64,
    pub relayed_packets: u64,
    pub relayed_packet_errors: u64,
    pub zero_way_streams: u64,
    pub one_way_streams: u64,
    pub avg_call_duration: Duration,
}

/// ng commands counted per proxy (source address).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ControlStatistics {
    pub proxies: Vec<ProxyStatistics>,
}

/// The commands one proxy sent. Commands srtpgate does not implement count as errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyStatistics {
    pub proxy: IpAddr,
    pub ping: u64,
    pub offer: u64,
    pub answer: u64,
    pub delete: u64,
    pub query: u64,
    pub list: u64,
    pub start_recording: u64,
    pub stop_recording: u64,
    pub statistics: u64,
    pub errors: u64,
}

impl ProxyStatistics {
    pub fn new(proxy: IpAddr) -> ProxyStatistics {
        ProxyStatistics {
            proxy,
            ping: 0,
            offer: 0,
            answer: 0,
            delete: 0,
            query: 0,
            list: 0,
            start_recording: 0,
            stop_recording: 0,
            statistics: 0,
            errors: 0,
        }
    }

    /// `(rtpengine key suffix, count)`, in rtpengine's order.
    fn counts(&self) -> [(&'static str, u64); 10] {
        [
            ("pingcount", self.ping),
            ("offercount", self.offer),
            ("answercount", self.answer),
            ("deletecount", self.delete),
            ("querycount", self.query),
            ("listcount", self.list),
            ("startreccount", self.start_recording),
            ("stopreccount", self.stop_recording),
            ("statistics", self.statistics),
            ("errorcount", self.errors),
        ]
    }
}

fn seconds(d: Duration) -> String {
    format!("{}.{:06}", d.as_secs(), d.subsec_micros())
}

impl Statistics {
    pub(crate) fn to_value(&self) -> Value {
        let c = &self.current;
        let current = Value::dict()
            .with("sessionsown", c.sessions_own)
            .with("sessionsforeign", c.sessions_foreign)
            .with("sessionstotal", c.sessions_total)
            .with("transcodedmedia", c.transcoded_media)
            .with("packetrate", c.packet_rate)
            .with("byterate", c.byte_rate)
            .with("errorrate", c.error_rate);
        let t = &self.total;
        let total = Value::dict()
            .with("uptime", t.uptime.as_secs().to_string())
            .with("managedsessions", t.managed_sessions)
            .with("rejectedsessions", t.rejected_sessions)
            .with("timeoutsessions", t.timeout_sessions)
            .with("silenttimeoutsessions", t.silent_timeout_sessions)
            .with("finaltimeoutsessions", t.final_timeout_sessions)
            .with("offertimeoutsessions", t.offer_timeout_sessions)
            .with("regularterminatedsessions", t.regular_terminated_sessions)
            .with("forcedterminatedsessions", t.forced_terminated_sessions)
            .with("relayedpackets", t.relayed_packets)
            .with("relayedpacketerrors", t.relayed_packet_errors)
            .with("zerowaystreams", t.zero_way_streams)
            .with("onewaystreams", t.one_way_streams)
            .with("avgcallduration", seconds(t.avg_call_duration));
        let mut stats = Value::dict()
            .with("currentstatistics", current)
            .with("totalstatistics", total);
        if let Some(control) = &self.control {
            stats.insert("controlstatistics", control.to_value());
        }
        Value::dict().with("statistics", stats)
    }
}

impl ControlStatistics {
    fn to_value(&self) -> Value {
        let mut totals = [0u64; 10];
        let mut proxies = Vec::new();
        for p in &self.proxies {
            let mut d = Value::dict().with("proxy", p.proxy.to_string());
            for (i, (key, n)) in p.counts().into_iter().enumerate() {
                d.insert(key, n);
                totals[i] = totals[i].saturating_add(n);
            }
            proxies.push(d);
        }
        let mut d = Value::dict().with("proxies", Value::List(proxies));
        let keys = ProxyStatistics::new(IpAddr::from([0, 0, 0, 0])).counts();
        for ((key, _), n) in keys.into_iter().zip(totals) {
            d.insert(&format!("total{key}"), n);
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_shape() {
        let call = CallStats {
            created: 1402064111,
            last_signal: 1402064116,
            tags: vec![TagStats {
                tag: "cs6kn1rloc".into(),
                created: 1402064111,
                in_dialogue_with: Some("0f0d2e18".into()),
                medias: vec![MediaStats {
                    index: 1,
                    media_type: "audio".into(),
                    protocol: Some("RTP/SAVP".into()),
                    flags: vec!["initialized".into(), "SDES".into()],
                    streams: vec![StreamStats {
                        local_port: Some(30018),
                        endpoint: Some("10.0.0.1:57370".parse().unwrap()),
                        crypto_suite: Some("AES_CM_128_HMAC_SHA1_80".into()),
                        last_packet: 1402064124,
                        flags: vec!["RTP".into(), "filled".into()],
                        stats: PacketCounters {
                            packets: 343,
                            bytes: 56950,
                            errors: 0,
                        },
                        ..StreamStats::default()
                    }],
                }],
                ..TagStats::default()
            }],
            totals_rtp: PacketCounters {
                packets: 343,
                bytes: 56950,
                errors: 0,
            },
            ..CallStats::default()
        };
        let mut d = Value::dict();
        call.append_to(&mut d);
        assert_eq!(d.get(b"last signal"), Some(&Value::Int(1402064116)));
        let tag = d.get(b"tags").and_then(|t| t.get(b"cs6kn1rloc")).unwrap();
        assert_eq!(
            tag.get(b"in dialogue with"),
            Some(&Value::string("0f0d2e18"))
        );
        let media = &tag.get(b"medias").unwrap().as_list().unwrap()[0];
        let stream = &media.get(b"streams").unwrap().as_list().unwrap()[0];
        assert_eq!(stream.get(b"local port"), Some(&Value::Int(30018)));
        let ep = stream.get(b"endpoint").unwrap();
        assert_eq!(ep.get(b"family"), Some(&Value::string("IPv4")));
        assert_eq!(ep.get(b"port"), Some(&Value::Int(57370)));
        assert_eq!(stream.get(b"advertised endpoint"), Some(&Value::dict()));
        let rtp = d.get(b"totals").and_then(|t| t.get(b"RTP")).unwrap();
        assert_eq!(rtp.get(b"packets"), Some(&Value::Int(343)));
    }

    #[test]
    fn statistics_shape() {
        let mut p = ProxyStatistics::new("127.0.0.1".parse().unwrap());
        p.offer = 3;
        p.errors = 1;
        let s = Statistics {
            total: TotalStatistics {
                uptime: Duration::from_secs(18),
                avg_call_duration: Duration::from_millis(1500),
                ..TotalStatistics::default()
            },
            control: Some(ControlStatistics { proxies: vec![p] }),
            ..Statistics::default()
        };
        let v = s.to_value();
        let st = v.get(b"statistics").unwrap();
        let total = st.get(b"totalstatistics").unwrap();
        assert_eq!(total.get(b"uptime"), Some(&Value::string("18")));
        assert_eq!(
            total.get(b"avgcallduration"),
            Some(&Value::string("1.500000"))
        );
        let control = st.get(b"controlstatistics").unwrap();
        assert_eq!(control.get(b"totaloffercount"), Some(&Value::Int(3)));
        assert_eq!(control.get(b"totalerrorcount"), Some(&Value::Int(1)));
        let proxy = &control.get(b"proxies").unwrap().as_list().unwrap()[0];
        assert_eq!(proxy.get(b"proxy"), Some(&Value::string("127.0.0.1")));
    }
}
