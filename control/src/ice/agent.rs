//! The ICE-lite agent of one leg (RFC 8445 §2.5, §7.3): srtpgate is always lite and
//! controlled. It answers connectivity checks for its credentials with a binding success
//! (XOR-MAPPED-ADDRESS, MESSAGE-INTEGRITY, FINGERPRINT), learns which remote addresses
//! passed a check, takes the one the controlling agent nominates, and treats consent as
//! lost when no valid check arrived for the consent timeout (RFC 7675 §5.1: 30 s).
//! Sans-IO: bytes and time in, a reply and what changed out.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ring::rand::{SecureRandom, SystemRandom};

use super::stun::{attr, Message, MessageWriter, StunError, BINDING_ERROR, BINDING_REQUEST};

/// How many remote addresses the agent remembers as having passed a check.
const MAX_VALID: usize = 8;
/// Consent lapses after this long without a valid check (RFC 7675).
pub const CONSENT_TIMEOUT: Duration = Duration::from_secs(30);

/// `a=ice-ufrag` / `a=ice-pwd`. The password keys MESSAGE-INTEGRITY: it is a secret
/// and is never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub ufrag: String,
    pub pwd: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("ufrag", &self.ufrag)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Fresh random credentials: an 8-character ufrag and a 24-character password (RFC 8839
    /// asks for at least 4 and 22 `ice-char`s).
    pub fn random() -> Option<Self> {
        Some(Credentials {
            ufrag: random_ice_chars(8)?,
            pwd: random_ice_chars(24)?,
        })
    }
}

fn random_ice_chars(n: usize) -> Option<String> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bytes = vec![0u8; n];
    SystemRandom::new().fill(&mut bytes).ok()?;
    Some(
        bytes
            .iter()
            .map(|b| ALPHABET[usize::from(b & 63)] as char)
            .collect(),
    )
}

/// Why a STUN datagram got no binding success.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error("malformed STUN: {0}")]
    Malformed(#[from] StunError),
    #[error("not a binding request")]
    NotRequest,
    #[error("binding request without USERNAME, MESSAGE-INTEGRITY or FINGERPRINT")]
    MissingAttribute,
    #[error("USERNAME does not name this leg's ufrag")]
    WrongUsername,
    #[error("MESSAGE-INTEGRITY does not match")]
    BadIntegrity,
}

/// What a binding request did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    /// The datagram to send back to the source (a success or an error response); `None`
    /// for what gets no answer (responses, indications, garbage).
    pub reply: Option<Vec<u8>>,
    pub result: Result<Check, CheckError>,
}

/// A valid connectivity check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Check {
    /// The source had not passed a check before.
    pub new_source: bool,
    /// The check carried USE-CANDIDATE and moved the selected address here.
    pub nominated: bool,
}

/// One leg's ICE-lite state.
#[derive(Debug, Clone)]
pub struct IceLite {
    local: Credentials,
    remote_ufrag: Option<String>,
    valid: Vec<(SocketAddr, Instant)>,
    selected: Option<SocketAddr>,
}

impl IceLite {
    pub fn new(local: Credentials) -> Self {
        IceLite {
            local,
            remote_ufrag: None,
            valid: Vec::new(),
            selected: None,
        }
    }

    pub fn local(&self) -> &Credentials {
        &self.local
    }

    /// The peer's ufrag from its SDP; checks must then name it as the second part of
    /// USERNAME. A new ufrag (an ICE restart) forgets what was learned.
    pub fn set_remote_ufrag(&mut self, ufrag: Option<&str>) {
        let new = ufrag.map(str::to_string);
        if new.is_some() && self.remote_ufrag.is_some() && new != self.remote_ufrag {
            self.valid.clear();
            self.selected = None;
        }
        self.remote_ufrag = new;
    }

    /// The address media and DTLS go to: the nominated one, else the latest that passed
    /// a check.
    pub fn selected(&self) -> Option<SocketAddr> {
        self.selected
            .or_else(|| self.valid.iter().max_by_key(|v| v.1).map(|v| v.0))
    }

    /// Whether `from` passed a check within the consent timeout.
    pub fn is_valid_source(&self, from: SocketAddr, now: Instant) -> bool {
        self.valid
            .iter()
            .any(|(a, t)| *a == from && now.saturating_duration_since(*t) < CONSENT_TIMEOUT)
    }

    /// Whether consent on the selected address lapsed; the caller stops sending there.
    /// Forgets the lapsed address, so this reports once per loss.
    pub fn consent_lost(&mut self, now: Instant) -> bool {
        let Some(sel) = self.selected() else {
            return false;
        };
        if self.is_valid_source(sel, now) {
            return false;
        }
        self.valid.retain(|(a, _)| *a != sel);
        if self.selected == Some(sel) {
            self.selected = None;
        }
        true
    }

    /// Handles a STUN datagram from `from`.
    pub fn handle(&mut self, from: SocketAddr, data: &[u8], now: Instant) -> CheckOutcome {
        let msg = match Message::parse(data) {
            Ok(m) => m,
            Err(e) => {
                return CheckOutcome {
                    reply: None,
                    result: Err(e.into()),
                }
            }
        };
        if msg.kind != BINDING_REQUEST {
            return CheckOutcome {
                reply: None,
                result: Err(CheckError::NotRequest),
            };
        }
        let reject = |code: u16, reason: &str, e: CheckError| CheckOutcome {
            reply: Some(
                MessageWriter::new(BINDING_ERROR, &msg.transaction)
                    .error(code, reason)
                    .fingerprint(),
            ),
            result: Err(e),
        };
        let (Some(username), true, true) = (
            msg.username(),
            msg.has(attr::MESSAGE_INTEGRITY),
            msg.has_fingerprint(),
        ) else {
            return reject(400, "Bad Request", CheckError::MissingAttribute);
        };
        let (ours, theirs) = username.split_once(':').unwrap_or((username, ""));
        let remote_ok = self.remote_ufrag.as_deref().is_none_or(|r| r == theirs);
        if ours != self.local.ufrag || !remote_ok {
            return reject(401, "Unauthorized", CheckError::WrongUsername);
        }
        if !msg.integrity_ok(self.local.pwd.as_bytes()) {
            return reject(401, "Unauthorized", CheckError::BadIntegrity);
        }
        let new_source = match self.valid.iter_mut().find(|v| v.0 == from) {
            Some(v) => {
                v.1 = now;
                false
            }
            None => {
                if self.valid.len() >= MAX_VALID {
                    if let Some(oldest) = self
                        .valid
                        .iter()
                        .enumerate()
                        .filter(|(_, v)| Some(v.0) != self.selected)
                        .min_by_key(|(_, v)| v.1)
                        .map(|(i, _)| i)
                    {
                        self.valid.swap_remove(oldest);
                    }
                }
                self.valid.push((from, now));
                true
            }
        };
        let nominated = msg.has(attr::USE_CANDIDATE) && self.selected != Some(from);
        if nominated {
            self.selected = Some(from);
        }
        let reply = MessageWriter::new(super::stun::BINDING_SUCCESS, &msg.transaction)
            .xor_mapped_address(from)
            .integrity(self.local.pwd.as_bytes())
            .fingerprint();
        CheckOutcome {
            reply: Some(reply),
            result: Ok(Check {
                new_source,
                nominated,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        Credentials {
            ufrag: "lite".into(),
            pwd: "0123456789abcdefghijklmn".into(),
        }
    }

    fn request(username: &str, pwd: &[u8], use_candidate: bool) -> Vec<u8> {
        let mut w = MessageWriter::new(BINDING_REQUEST, &[7; 12])
            .attribute(attr::USERNAME, username.as_bytes())
            .attribute(attr::PRIORITY, &1_862_270_975u32.to_be_bytes())
            .attribute(attr::ICE_CONTROLLING, &[1; 8]);
        if use_candidate {
            w = w.attribute(attr::USE_CANDIDATE, &[]);
        }
        w.integrity(pwd).fingerprint()
    }

    #[test]
    fn answers_valid_checks_and_follows_nomination() {
        let mut ice = IceLite::new(creds());
        ice.set_remote_ufrag(Some("peer"));
        let now = Instant::now();
        let a: SocketAddr = "192.0.2.7:5000".parse().unwrap();
        let out = ice.handle(
            a,
            &request("lite:peer", b"0123456789abcdefghijklmn", false),
            now,
        );
        let check = out.result.unwrap();
        assert!(check.new_source && !check.nominated);
        let reply = out.reply.unwrap();
        let m = Message::parse(&reply).unwrap();
        assert_eq!(m.kind, super::super::stun::BINDING_SUCCESS);
        assert_eq!(m.transaction, [7; 12]);
        assert_eq!(m.mapped_address(), Some(a));
        assert!(m.integrity_ok(b"0123456789abcdefghijklmn"));
        assert_eq!(ice.selected(), Some(a));
        let b: SocketAddr = "192.0.2.8:5002".parse().unwrap();
        let out = ice.handle(
            b,
            &request("lite:peer", b"0123456789abcdefghijklmn", true),
            now,
        );
        assert!(out.result.unwrap().nominated);
        assert_eq!(ice.selected(), Some(b));
        assert!(ice.is_valid_source(a, now) && ice.is_valid_source(b, now));
        assert!(!ice.consent_lost(now + Duration::from_secs(29)));
        assert!(ice.consent_lost(now + Duration::from_secs(31)));
        assert!(!ice.is_valid_source(b, now + Duration::from_secs(31)));
    }

    #[test]
    fn rejects_bad_integrity_and_strangers() {
        let mut ice = IceLite::new(creds());
        let now = Instant::now();
        let a: SocketAddr = "192.0.2.7:5000".parse().unwrap();
        let out = ice.handle(
            a,
            &request("lite:peer", b"wrong-password-wrong-pw", false),
            now,
        );
        assert_eq!(out.result, Err(CheckError::BadIntegrity));
        let err = Message::parse(out.reply.as_ref().unwrap()).unwrap();
        assert_eq!(err.error_code(), Some(401));
        let out = ice.handle(
            a,
            &request("other:peer", b"0123456789abcdefghijklmn", false),
            now,
        );
        assert_eq!(out.result, Err(CheckError::WrongUsername));
        assert_eq!(ice.selected(), None);
        assert!(!ice.is_valid_source(a, now));
        // Responses and garbage get no answer.
        assert_eq!(ice.handle(a, &[0, 1, 2], now).reply, None);
        ice.set_remote_ufrag(Some("peer"));
        let out = ice.handle(
            a,
            &request("lite:else", b"0123456789abcdefghijklmn", false),
            now,
        );
        assert_eq!(out.result, Err(CheckError::WrongUsername));
    }

    #[test]
    fn random_credentials_are_long_enough() {
        let c = Credentials::random().unwrap();
        assert_eq!((c.ufrag.len(), c.pwd.len()), (8, 24));
        assert!(!format!("{c:?}").contains(&c.pwd));
    }
}
