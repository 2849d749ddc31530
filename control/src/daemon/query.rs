//! Filling the ng `query` and `statistics` replies from the call registry and the engine.

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::call::{Call, CallRegistry};
use crate::metrics::ControlMetrics;
use crate::ng::{
    CallStats, CurrentStatistics, MediaStats, PacketCounters, Statistics, StreamStats, TagStats,
    TotalStatistics,
};

fn unix(t: SystemTime) -> Duration {
    t.duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// What `query` answers for one call: per tag, per stream, per local port.
pub fn call_stats(reg: &CallRegistry, call: &Call) -> CallStats {
    let mut totals_rtp = PacketCounters::default();
    let mut totals_rtcp = PacketCounters::default();
    let now_s = unix(SystemTime::now()).as_secs() as i64;
    let tags = call
        .monologues
        .iter()
        .map(|m| {
            let other = call
                .monologues
                .iter()
                .find(|o| o.tag != m.tag)
                .map(|o| o.tag.clone());
            let medias = m
                .legs
                .iter()
                .map(|leg| {
                    let suite = leg
                        .negotiated
                        .as_ref()
                        .and_then(|n| n.rx.as_ref())
                        .map(|c| c.suite.name().to_string());
                    let mut ports = vec![(leg.ports.rtp, "RTP")];
                    if !leg.mux && leg.ports.rtcp != leg.ports.rtp {
                        ports.push((leg.ports.rtcp, "RTCP"));
                    }
                    let streams = ports
                        .into_iter()
                        .map(|(p, kind)| {
                            let q = reg.engine().query(p).ok();
                            let (c, peer) = q.map_or((Default::default(), None), |(c, p)| (c, p));
                            let c: relay::engine::FlowCounters = c;
                            let errors = c.auth_failures + c.replays + c.srtp_errors;
                            let stats = PacketCounters {
                                packets: c.packets_in,
                                bytes: c.bytes_in,
                                errors,
                            };
                            let stats_out = PacketCounters {
                                packets: c.packets_out,
                                bytes: c.bytes_out,
                                errors: c.protect_errors,
                            };
                            let into = if kind == "RTP" {
                                &mut totals_rtp
                            } else {
                                &mut totals_rtcp
                            };
                            into.packets += stats.packets;
                            into.bytes += stats.bytes;
                            into.errors += stats.errors;
                            let mut flags = vec![kind.to_string()];
                            if peer.is_some_and(|p| p.latched) {
                                flags.push("confirmed".into());
                            }
                            if leg.strict {
                                flags.push("strict source address".into());
                            }
                            StreamStats {
                                local_port: Some(p.port),
                                local_address: reg.engine().advertised(p.iface as usize),
                                endpoint: peer.map(|p| p.addr),
                                advertised_endpoint: if kind == "RTP" {
                                    leg.remote.rtp_addr()
                                } else {
                                    leg.remote.rtcp_addr()
                                },
                                crypto_suite: suite.clone(),
                                last_packet: if c.packets_in > 0 {
                                    now_s - (c.idle_ms / 1000) as i64
                                } else {
                                    0
                                },
                                flags,
                                stats,
                                stats_out,
                            }
                        })
                        .collect();
                    MediaStats {
                        index: leg.index as u32 + 1,
                        media_type: leg.remote.kind.clone(),
                        protocol: Some(if leg.srtp { "RTP/SAVP" } else { "RTP/AVP" }.to_string()),
                        flags: Vec::new(),
                        streams,
                    }
                })
                .collect();
            TagStats {
                tag: m.tag.clone(),
                label: m.label.clone(),
                via_branch: None,
                created: unix(m.created).as_secs() as i64,
                in_dialogue_with: other,
                medias,
            }
        })
        .collect();
    let created = unix(call.created);
    CallStats {
        created: created.as_secs() as i64,
        created_us: created.subsec_micros(),
        last_signal: unix(call.last_signal).as_secs() as i64,
        metadata: call.metadata.clone(),
        tags,
        totals_rtp,
        totals_rtcp,
    }
}

/// What `statistics` answers.
pub fn statistics(reg: &CallRegistry, m: &ControlMetrics, started: SystemTime) -> Statistics {
    let workers = reg.engine().stats();
    let relayed: u64 = workers.iter().map(|w| w.packets_sent).sum();
    let errors: u64 = workers
        .iter()
        .map(|w| w.auth_failures + w.replays + w.srtp_errors + w.send_failures)
        .sum();
    let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    Statistics {
        current: CurrentStatistics {
            sessions_own: reg.len() as u64,
            sessions_total: reg.len() as u64,
            ..Default::default()
        },
        total: TotalStatistics {
            uptime: SystemTime::now()
                .duration_since(started)
                .unwrap_or_default(),
            managed_sessions: get(&m.calls_created),
            rejected_sessions: get(&m.load_limit),
            timeout_sessions: get(&m.calls_timed_out),
            regular_terminated_sessions: get(&m.calls_deleted),
            relayed_packets: relayed,
            relayed_packet_errors: errors,
            ..Default::default()
        },
        control: None,
    }
}
