//! Setting calls up on a relay over ng and tearing them down: for each call, endpoint A
//! offers with its own SDES key, the relay offers to endpoint B, B answers with its own key
//! for the suite it picks, the relay answers A. Each endpoint takes the key it receives with
//! from the SDP it was given, so a relay that passes keys through (rtpengine's SDES
//! passthrough) works too, and is reported.

use std::net::{IpAddr, SocketAddr, UdpSocket};

use control::ng::bencode::Value;
use control::sdp::{Crypto, MediaDescription, SessionDescription};
use relay::srtp::{MasterKey, Suite};

use crate::ng_client::{NgClient, NgError};

/// What each leg of a call carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Media {
    /// SDES-SRTP on both legs (the relay decrypts and re-encrypts).
    Srtp,
    /// Plain RTP on both legs.
    Rtp,
    /// SRTP from A, plain RTP toward B.
    SrtpToRtp,
    /// Plain RTP from A, SRTP toward B.
    RtpToSrtp,
}

impl Media {
    pub fn a_srtp(self) -> bool {
        matches!(self, Media::Srtp | Media::SrtpToRtp)
    }
    pub fn b_srtp(self) -> bool {
        matches!(self, Media::Srtp | Media::RtpToSrtp)
    }
    pub fn name(self) -> &'static str {
        match self {
            Media::Srtp => "srtp",
            Media::Rtp => "rtp",
            Media::SrtpToRtp => "srtp-to-rtp",
            Media::RtpToSrtp => "rtp-to-srtp",
        }
    }
}

impl std::str::FromStr for Media {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "srtp" => Ok(Media::Srtp),
            "rtp" => Ok(Media::Rtp),
            "srtp-to-rtp" => Ok(Media::SrtpToRtp),
            "rtp-to-srtp" => Ok(Media::RtpToSrtp),
            _ => Err(format!(
                "unknown media {s:?}: srtp, rtp, srtp-to-rtp or rtp-to-srtp"
            )),
        }
    }
}

/// How calls are offered and answered.
#[derive(Clone, Debug)]
pub struct CallPlan {
    pub media: Media,
    /// The suite A offers.
    pub suite: Suite,
    /// The suites B accepts, in order of preference.
    pub answer_suites: Vec<Suite>,
    /// Entries of the ng `flags` list (e.g. `SDES-pad`).
    pub flags: Vec<String>,
    /// Prefix of call ids (made unique per run).
    pub call_id_prefix: String,
    /// ng `metadata` sent with every offer (e.g. identities a relay matches against
    /// interception tasks).
    pub metadata: Option<String>,
}

/// Why calls could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Ng(#[from] NgError),
    #[error("call {call}: the SDP the relay sent {toward} is malformed: {detail}")]
    BadSdp {
        call: usize,
        toward: &'static str,
        detail: String,
    },
    #[error("call {call}: {detail}")]
    Negotiation { call: usize, detail: String },
    #[error("cannot open endpoint sockets on {ip}: {source}")]
    Socket { ip: IpAddr, source: std::io::Error },
}

/// The keys and addresses of one media direction of a call.
pub struct StreamPlan {
    /// Where the sender sends to (the relay's port for its side).
    pub dest: SocketAddr,
    /// The sender's own key, when its leg is SRTP.
    pub tx_key: Option<(Suite, MasterKey)>,
    /// The key the relay sends to the receiver with, when that leg is SRTP.
    pub rx_key: Option<(Suite, MasterKey)>,
    /// The relay passes the sender's key through (no re-encryption in this direction).
    pub passthrough: bool,
}

/// One call as set up.
pub struct CallSetup {
    pub call_id: String,
    pub a_to_b: StreamPlan,
    pub b_to_a: StreamPlan,
}

/// An endpoint's SDP: one audio stream at `addr`, SRTP with `cryptos` when given.
pub fn endpoint_sdp(addr: SocketAddr, session: u64, srtp: bool, cryptos: &[Crypto]) -> String {
    let (family, ip) = match addr.ip() {
        IpAddr::V4(v) => ("IP4", v.to_string()),
        IpAddr::V6(v) => ("IP6", v.to_string()),
    };
    let mut s = format!(
        "v=0\r\no=- {session} 1 IN {family} {ip}\r\ns=srtpgate-bench\r\nc=IN {family} {ip}\r\nt=0 0\r\n\
         m=audio {} {} 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n",
        addr.port(),
        if srtp { "RTP/SAVP" } else { "RTP/AVP" }
    );
    for c in cryptos {
        s.push_str(&format!("a=crypto:{c}\r\n"));
    }
    s
}

fn same_key(a: &MasterKey, b: &MasterKey) -> bool {
    a.key() == b.key() && a.salt() == b.salt()
}

/// The relay's media address and the parsed crypto lines of its SDP.
struct RelaySide {
    addr: SocketAddr,
    cryptos: Vec<(Crypto, Suite, MasterKey)>,
    srtp_proto: bool,
}

fn read_relay_sdp(call: usize, toward: &'static str, body: &[u8]) -> Result<RelaySide, SetupError> {
    let bad = |detail: String| SetupError::BadSdp {
        call,
        toward,
        detail,
    };
    let sdp = SessionDescription::parse_bytes(body).map_err(|e| bad(e.to_string()))?;
    let m: &MediaDescription = sdp
        .media
        .iter()
        .find(|m| m.media == "audio")
        .or(sdp.media.first())
        .ok_or_else(|| bad("no m= line".into()))?;
    if m.is_rejected() {
        return Err(bad("the audio stream is rejected (port 0)".into()));
    }
    let ip = sdp
        .connection_for(m)
        .and_then(|c| c.ip())
        .ok_or_else(|| bad("no usable c= address for the audio stream".into()))?;
    if ip.is_unspecified() {
        return Err(bad(format!("the media address is {ip}")));
    }
    let mut cryptos = Vec::new();
    for c in m.cryptos().flatten() {
        let (Ok(suite), Ok(keys)) = (c.suite(), c.master_keys()) else {
            continue;
        };
        if let Some(k) = keys.into_iter().next() {
            cryptos.push((c, suite, k));
        }
    }
    Ok(RelaySide {
        addr: SocketAddr::new(ip, m.port),
        cryptos,
        srtp_proto: m.proto.is_srtp(),
    })
}

fn sdp_of(call: usize, toward: &'static str, reply: &Value) -> Result<Vec<u8>, SetupError> {
    reply
        .get(b"sdp")
        .and_then(Value::as_bytes)
        .map(<[u8]>::to_vec)
        .ok_or(SetupError::BadSdp {
            call,
            toward,
            detail: "the reply carries no `sdp`".into(),
        })
}

fn fresh(suite: Suite, call: usize) -> Result<MasterKey, SetupError> {
    control::call::crypto::fresh_key(suite).map_err(|e| SetupError::Negotiation {
        call,
        detail: e.to_string(),
    })
}

impl CallPlan {
    fn request(&self, command: &str, call_id: &str) -> Value {
        let flags = Value::List(self.flags.iter().map(Value::string).collect());
        Value::dict()
            .with("command", command)
            .with("call-id", call_id)
            .with("from-tag", "bench-a")
            .with("flags", flags)
            .with(
                "replace",
                Value::List(vec![
                    Value::string("origin"),
                    Value::string("session-connection"),
                ]),
            )
            .with("ICE", "remove")
            .with("DTLS", "off")
    }

    /// Sets call number `call` up between endpoints at `a` and `b`.
    pub fn setup(
        &self,
        ng: &mut NgClient,
        call: usize,
        a: SocketAddr,
        b: SocketAddr,
    ) -> Result<CallSetup, SetupError> {
        let call_id = format!("{}-{call}", self.call_id_prefix);
        let a_key = if self.media.a_srtp() {
            Some(fresh(self.suite, call)?)
        } else {
            None
        };
        let a_cryptos: Vec<Crypto> = a_key
            .iter()
            .map(|k| Crypto::new(1, self.suite, std::slice::from_ref(k)))
            .collect();
        let mut offer = self.request("offer", &call_id).with(
            "sdp",
            endpoint_sdp(a, 2 * call as u64 + 1, self.media.a_srtp(), &a_cryptos).as_str(),
        );
        if let Some(m) = &self.metadata {
            offer.insert("metadata", m.as_str());
        }
        match self.media {
            Media::SrtpToRtp => offer.insert("transport-protocol", "RTP/AVP"),
            Media::RtpToSrtp => offer.insert("transport-protocol", "RTP/SAVP"),
            _ => {}
        }
        let reply = ng.request(&offer)?;
        let to_b = read_relay_sdp(call, "to B (offer)", &sdp_of(call, "to B (offer)", &reply)?)?;

        // B's choice among the relay's lines: the first preferred suite whose key is not
        // A's own; A's own key only when nothing else matches (passthrough).
        let mut b_choice: Option<(&Crypto, Suite, &MasterKey, bool)> = None;
        if self.media.b_srtp() {
            'pick: for pass in [false, true] {
                for want in &self.answer_suites {
                    for (c, s, k) in &to_b.cryptos {
                        let reused = a_key.as_ref().is_some_and(|a| same_key(a, k));
                        if s == want && reused == pass {
                            b_choice = Some((c, *s, k, reused));
                            break 'pick;
                        }
                    }
                }
            }
            if b_choice.is_none() {
                let offered: Vec<&str> = to_b
                    .cryptos
                    .iter()
                    .map(|(c, _, _)| c.suite.as_str())
                    .collect();
                let wanted: Vec<&str> = self.answer_suites.iter().map(|s| s.name()).collect();
                return Err(SetupError::Negotiation {
                    call,
                    detail: format!(
                        "the relay offered B the suites [{}], none of those B accepts ([{}])",
                        offered.join(", "),
                        wanted.join(", ")
                    ),
                });
            }
        } else if to_b.srtp_proto {
            return Err(SetupError::Negotiation {
                call,
                detail: "the relay offered SRTP to B where plain RTP was asked".into(),
            });
        }

        let b_key = match &b_choice {
            Some((_, s, _, _)) => Some((*s, fresh(*s, call)?)),
            None => None,
        };
        let b_cryptos: Vec<Crypto> = match (&b_choice, &b_key) {
            (Some((c, s, _, _)), Some((_, k))) => {
                vec![Crypto::new(c.tag, *s, std::slice::from_ref(k))]
            }
            _ => Vec::new(),
        };
        let answer = self
            .request("answer", &call_id)
            .with("to-tag", "bench-b")
            .with(
                "sdp",
                endpoint_sdp(b, 2 * call as u64 + 2, self.media.b_srtp(), &b_cryptos).as_str(),
            );
        let reply = ng.request(&answer)?;
        let to_a = read_relay_sdp(
            call,
            "to A (answer)",
            &sdp_of(call, "to A (answer)", &reply)?,
        )?;

        let a_rx = if self.media.a_srtp() {
            let line = to_a
                .cryptos
                .iter()
                .find(|(c, _, _)| c.tag == 1)
                .or(to_a.cryptos.first());
            let Some((_, s, k)) = line else {
                return Err(SetupError::Negotiation {
                    call,
                    detail: "the relay's answer to A has no usable a=crypto line".into(),
                });
            };
            if *s != self.suite {
                return Err(SetupError::Negotiation {
                    call,
                    detail: format!(
                        "the relay answered A with {s}, A offered only {}",
                        self.suite
                    ),
                });
            }
            Some((*s, k.clone()))
        } else {
            None
        };
        let b_passthrough = b_choice.as_ref().is_some_and(|c| c.3);
        let a_passthrough = match (&a_rx, &b_key) {
            (Some((_, k)), Some((_, bk))) => same_key(k, bk),
            _ => false,
        };
        Ok(CallSetup {
            call_id,
            a_to_b: StreamPlan {
                dest: to_a.addr,
                tx_key: a_key.map(|k| (self.suite, k)),
                rx_key: b_choice.map(|(_, s, k, _)| (s, k.clone())),
                passthrough: b_passthrough,
            },
            b_to_a: StreamPlan {
                dest: to_b.addr,
                tx_key: b_key,
                rx_key: a_rx,
                passthrough: a_passthrough,
            },
        })
    }

    /// Deletes a call; errors are returned for counting, never fatal.
    pub fn delete(&self, ng: &mut NgClient, call_id: &str) -> Result<(), NgError> {
        let req = Value::dict()
            .with("command", "delete")
            .with("call-id", call_id)
            .with("from-tag", "bench-a");
        ng.request(&req).map(|_| ())
    }
}

/// Opens `n` UDP sockets on `ip` with large receive buffers and kernel receive timestamps.
pub fn open_sockets(ip: IpAddr, n: usize) -> Result<Vec<UdpSocket>, SetupError> {
    (0..n)
        .map(|_| {
            let s = UdpSocket::bind(SocketAddr::new(ip, 0))
                .map_err(|source| SetupError::Socket { ip, source })?;
            crate::io::tune_socket(&s);
            Ok(s)
        })
        .collect()
}
