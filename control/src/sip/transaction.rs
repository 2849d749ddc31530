//! Transaction state of the proxy (RFC 3261 section 17): server transactions (requests
//! received, keyed by branch, sent-by and method, so retransmissions are absorbed and
//! answered with the last response) and client transactions (requests forwarded on a
//! branch of ours, with the retransmission and timeout timers of UDP).

use std::time::{Duration, Instant};

use super::message::Message;
use super::Flow;

/// RFC 3261 timer values.
pub const T1: Duration = Duration::from_millis(500);
pub const T2: Duration = Duration::from_secs(4);
/// Timer B / F / H: 64*T1.
pub const TIMEOUT: Duration = Duration::from_secs(32);
/// How long a finished transaction is kept to absorb retransmissions (Timer J / I / K).
pub const LINGER: Duration = Duration::from_secs(32);

/// Identifies a server transaction (RFC 3261 17.2.3): top Via branch and sent-by, and the
/// method (ACK matches its INVITE).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServerKey {
    pub branch: String,
    pub sent_by: String,
    pub method: String,
}

impl ServerKey {
    /// The key of `req` (ACK and CANCEL are keyed as the INVITE they refer to).
    pub fn of(req: &Message) -> Option<ServerKey> {
        let via = req.top_via().ok()?;
        let method = match req.method()? {
            "ACK" => "INVITE",
            m => m,
        };
        // RFC 2543 peers send no magic-cookie branch: key by what identified their
        // transactions (Call-ID, From tag, CSeq number; RFC 3261 17.2.3).
        let branch = match via.branch() {
            Some(b) if b.starts_with("z9hG4bK") && b.len() > 7 => b.to_string(),
            _ => format!(
                "2543:{}:{}:{}",
                req.call_id(),
                req.from().ok()?.tag().unwrap_or(""),
                req.cseq().ok()?.seq
            ),
        };
        Some(ServerKey {
            branch,
            sent_by: format!(
                "{}:{}",
                via.host.to_ascii_lowercase(),
                via.port.unwrap_or(0)
            ),
            method: method.to_string(),
        })
    }
}

/// A request received and being handled (forwarded or answered here).
pub struct ServerTxn {
    /// The request as received (Via received/rport filled in).
    pub request: Message,
    /// Where responses go.
    pub reply_to: Flow,
    /// The last response sent upstream, for retransmissions.
    pub last_response: Option<Vec<u8>>,
    pub final_code: Option<u16>,
    /// Branches (client transaction ids) forwarded for this request.
    pub branches: Vec<String>,
    /// The best final response collected so far (non-2xx).
    pub best: Option<Message>,
    pub canceled: bool,
    /// When to retransmit a final non-2xx INVITE response over UDP (Timer G), and the gap.
    pub retransmit: Option<(Instant, Duration)>,
    /// Removed at this time once finished.
    pub expires: Option<Instant>,
    /// Timer C: when ringing branches are given up with 408.
    pub ring_deadline: Option<Instant>,
}

impl ServerTxn {
    pub fn new(request: Message, reply_to: Flow) -> Self {
        ServerTxn {
            request,
            reply_to,
            last_response: None,
            final_code: None,
            branches: Vec::new(),
            best: None,
            canceled: false,
            retransmit: None,
            expires: None,
            ring_deadline: None,
        }
    }

    pub fn is_invite(&self) -> bool {
        self.request.method() == Some("INVITE")
    }
}

/// Where a client transaction stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientState {
    /// Sent, nothing heard.
    Calling,
    /// A provisional response came.
    Proceeding,
    /// A final response came.
    Completed,
}

/// A request forwarded on one branch.
pub struct ClientTxn {
    pub server: Option<ServerKey>,
    pub request: Message,
    pub bytes: Vec<u8>,
    pub flow: Flow,
    pub state: ClientState,
    /// Next retransmission over UDP and the current gap (Timer A / E).
    pub retransmit: Option<(Instant, Duration)>,
    /// Timer B / F (no response) or C (ringing too long).
    pub deadline: Instant,
    /// A CANCEL must go out once this branch has sent a provisional response.
    pub cancel_pending: bool,
    /// This branch already fell back from SRTP to RTP once.
    pub retried_plain: bool,
    /// The offer on this branch was SRTP and the policy allows a plain retry.
    pub may_retry_plain: bool,
    /// Kept after completion until this time (absorbs response retransmissions).
    pub expires: Option<Instant>,
}

impl ClientTxn {
    pub fn is_invite(&self) -> bool {
        self.request.method() == Some("INVITE")
    }
}

/// Backs off a retransmission gap: doubled, capped at T2 for non-INVITE.
pub fn backoff(gap: Duration, invite: bool) -> Duration {
    let next = gap * 2;
    if invite {
        next
    } else {
        next.min(T2)
    }
}
