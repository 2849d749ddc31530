//! Just enough SIP and SDP parsing to read a capture: start line, headers, body; the audio
//! media description with its port, transport and `a=crypto` lines.

use std::net::SocketAddrV4;

use super::capture::Datagram;

/// One SIP message seen on the wire.
#[derive(Clone, Debug)]
pub struct SipMessage {
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    pub start_line: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl SipMessage {
    /// Parses a datagram that holds a SIP request or response.
    pub fn parse(d: &Datagram) -> Option<SipMessage> {
        let text = std::str::from_utf8(&d.payload).ok()?;
        let (head, body) = text.split_once("\r\n\r\n")?;
        let mut lines = head.split("\r\n");
        let start_line = lines.next()?.to_string();
        let is_sip = start_line.starts_with("SIP/2.0 ") || start_line.ends_with(" SIP/2.0");
        if !is_sip {
            return None;
        }
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Some(SipMessage {
            src: d.src,
            dst: d.dst,
            start_line,
            headers,
            body: body.to_string(),
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        let short = match name.as_str() {
            "call-id" => "i",
            "content-type" => "c",
            _ => "",
        };
        self.headers
            .iter()
            .find(|(k, _)| *k == name || (!short.is_empty() && k == short))
            .map(|(_, v)| v.as_str())
    }

    /// The method of a request.
    pub fn method(&self) -> Option<&str> {
        (!self.start_line.starts_with("SIP/2.0")).then(|| self.start_line.split(' ').next())?
    }

    /// The status code of a response.
    pub fn status(&self) -> Option<u16> {
        self.start_line
            .strip_prefix("SIP/2.0 ")?
            .get(..3)?
            .parse()
            .ok()
    }

    /// The method named in CSeq.
    pub fn cseq_method(&self) -> Option<&str> {
        self.header("cseq")?.split_whitespace().nth(1)
    }

    /// The audio media description of an SDP body.
    pub fn audio(&self) -> Option<MediaDescription> {
        MediaDescription::parse_audio(&self.body)
    }

    /// One line for reports: `src -> dst: start line`.
    pub fn summary(&self) -> String {
        format!("{} -> {}: {}", self.src, self.dst, self.start_line)
    }
}

/// Every SIP message in a capture, in order.
pub fn messages(datagrams: &[Datagram]) -> Vec<SipMessage> {
    datagrams.iter().filter_map(SipMessage::parse).collect()
}

/// An SDES `a=crypto:<tag> <suite> <key params>` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Crypto {
    pub tag: u32,
    pub suite: String,
    /// `inline:<base64>[|lifetime][|mki:len]`, as written.
    pub key_params: String,
}

impl Crypto {
    /// The base64 key||salt without `inline:`, lifetime or MKI, and without `=` padding,
    /// so that padded and unpadded spellings of one key compare equal.
    pub fn key_b64(&self) -> &str {
        self.key_params
            .strip_prefix("inline:")
            .unwrap_or(&self.key_params)
            .split('|')
            .next()
            .unwrap_or("")
            .trim_end_matches('=')
    }
}

/// The first `m=audio` section of an SDP body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaDescription {
    pub port: u16,
    /// `RTP/AVP`, `RTP/SAVP`, ...
    pub proto: String,
    pub formats: Vec<String>,
    /// Connection address (media level, else session level).
    pub connection: Option<String>,
    pub cryptos: Vec<Crypto>,
    /// `a=rtcp:<port>` if present.
    pub rtcp_port: Option<u16>,
    /// DTLS-SRTP: `a=fingerprint` values (`<hash> <digest>`, media level, else session
    /// level) and `a=setup` (likewise).
    pub fingerprints: Vec<String>,
    pub setup: Option<String>,
}

impl MediaDescription {
    pub fn parse_audio(sdp: &str) -> Option<MediaDescription> {
        let mut session_c = None;
        let (mut session_fp, mut session_setup) = (Vec::new(), None);
        let mut media: Option<MediaDescription> = None;
        for line in sdp.lines().map(str::trim_end) {
            if let Some(m) = line.strip_prefix("m=") {
                if media.is_some() {
                    break; // only the first audio section
                }
                let mut f = m.split_whitespace();
                if f.next() != Some("audio") {
                    continue;
                }
                media = Some(MediaDescription {
                    port: f.next()?.split('/').next()?.parse().ok()?,
                    proto: f.next()?.to_string(),
                    formats: f.map(str::to_string).collect(),
                    connection: None,
                    cryptos: Vec::new(),
                    rtcp_port: None,
                    fingerprints: Vec::new(),
                    setup: None,
                });
                continue;
            }
            let Some(md) = media.as_mut() else {
                if let Some(c) = line.strip_prefix("c=") {
                    session_c = c.split_whitespace().nth(2).map(str::to_string);
                } else if let Some(f) = line.strip_prefix("a=fingerprint:") {
                    session_fp.push(f.trim().to_string());
                } else if let Some(r) = line.strip_prefix("a=setup:") {
                    session_setup = Some(r.trim().to_string());
                }
                continue;
            };
            if let Some(c) = line.strip_prefix("c=") {
                md.connection = c.split_whitespace().nth(2).map(str::to_string);
            } else if let Some(a) = line.strip_prefix("a=crypto:") {
                let mut f = a.split_whitespace();
                if let (Some(tag), Some(suite), Some(key)) = (f.next(), f.next(), f.next()) {
                    if let Ok(tag) = tag.parse() {
                        md.cryptos.push(Crypto {
                            tag,
                            suite: suite.to_string(),
                            key_params: key.to_string(),
                        });
                    }
                }
            } else if let Some(r) = line.strip_prefix("a=rtcp:") {
                md.rtcp_port = r.split_whitespace().next().and_then(|p| p.parse().ok());
            } else if let Some(f) = line.strip_prefix("a=fingerprint:") {
                md.fingerprints.push(f.trim().to_string());
            } else if let Some(r) = line.strip_prefix("a=setup:") {
                md.setup = Some(r.trim().to_string());
            }
        }
        let mut md = media?;
        if md.connection.is_none() {
            md.connection = session_c;
        }
        if md.fingerprints.is_empty() {
            md.fingerprints = session_fp;
        }
        if md.setup.is_none() {
            md.setup = session_setup;
        }
        Some(md)
    }

    pub fn crypto(&self, tag: u32) -> Option<&Crypto> {
        self.cryptos.iter().find(|c| c.tag == tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDP: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
        m=audio 30000 RTP/SAVP 0 101\r\na=rtcp:30001\r\n\
        a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:V0XRwBeSVl5uGoC9OeeClPgpsjCqmsNgiNFBq5Nc\r\n\
        a=crypto:2 AEAD_AES_128_GCM inline:A4A4/cYJ45fq7dOUOlbkSeFSDQbNaBvEcPzC4w==|2^31\r\n\
        m=video 0 RTP/AVP 96\r\n";

    #[test]
    fn audio_section_and_cryptos() {
        let m = MediaDescription::parse_audio(SDP).unwrap();
        assert_eq!((m.port, m.proto.as_str()), (30000, "RTP/SAVP"));
        assert_eq!(m.connection.as_deref(), Some("127.0.0.1"));
        assert_eq!(m.rtcp_port, Some(30001));
        assert_eq!(m.cryptos.len(), 2);
        assert_eq!(
            m.crypto(2).unwrap().key_b64(),
            "A4A4/cYJ45fq7dOUOlbkSeFSDQbNaBvEcPzC4w"
        );
    }

    #[test]
    fn sip_message_fields() {
        let text = format!(
            "SIP/2.0 200 OK\r\nCSeq: 2 INVITE\r\ni: abc\r\nContent-Length: {}\r\n\r\n{SDP}",
            SDP.len()
        );
        let d = Datagram {
            time: 0.0,
            src: "127.0.0.1:5060".parse().unwrap(),
            dst: "127.0.0.1:5070".parse().unwrap(),
            payload: text.into_bytes(),
        };
        let m = SipMessage::parse(&d).unwrap();
        assert_eq!(m.status(), Some(200));
        assert_eq!(m.method(), None);
        assert_eq!(m.cseq_method(), Some("INVITE"));
        assert_eq!(m.header("Call-ID"), Some("abc"));
        assert_eq!(m.audio().unwrap().port, 30000);
    }
}
