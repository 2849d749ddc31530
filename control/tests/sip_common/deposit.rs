//! A scripted voicemail deposit back end for the proxy tests: it answers with a fixed SDP
//! and logs what the proxy asks of it.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use control::sip::deposit::{Deposit, RedirectPolicy};
use control::sip::media::MediaFailure;

/// The deposit's answer.
pub const DEPOSIT_SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 30000 RTP/SAVP 0\r\n";

#[derive(Default)]
pub struct DepositLog {
    /// (call id, mailbox, the caller's SDP as the deposit got it)
    pub started: Vec<(String, String, String)>,
    pub stopped: Vec<String>,
    pub active: Vec<String>,
    /// Deposits that ended by themselves (a test puts them here).
    pub finished: Vec<String>,
}

/// Mailboxes by user (id = user) with their redirect policies, reached as `vm-<user>`;
/// `fixed` is the user part of the fixed voicemail URI; `fail` makes every start fail;
/// `identity`, when set, must be part of every started call's identities.
pub struct FakeDeposit {
    pub log: Arc<Mutex<DepositLog>>,
    pub policies: HashMap<String, RedirectPolicy>,
    pub fixed: Option<String>,
    pub fail: bool,
    pub identity: Option<&'static str>,
}

impl Deposit for FakeDeposit {
    fn mailbox_for(&self, ruri_user: &str) -> Option<Option<String>> {
        let user = ruri_user.strip_prefix("vm-")?;
        Some(self.mailbox_of(user))
    }
    fn start(
        &mut self,
        call_id: &str,
        _from_tag: &str,
        _to_tag: &str,
        mailbox: &str,
        sdp: &[u8],
        identity: &str,
    ) -> Result<Vec<u8>, MediaFailure> {
        if let Some(want) = self.identity {
            assert!(identity.contains(want), "{identity}");
        }
        if self.fail {
            return Err(MediaFailure("disk short of space".into()));
        }
        let mut l = self.log.lock().unwrap();
        l.started.push((
            call_id.into(),
            mailbox.into(),
            String::from_utf8_lossy(sdp).into_owned(),
        ));
        l.active.push(call_id.into());
        Ok(DEPOSIT_SDP.as_bytes().to_vec())
    }
    fn stop(&mut self, call_id: &str) {
        let mut l = self.log.lock().unwrap();
        l.stopped.push(call_id.into());
        l.active.retain(|c| c != call_id);
        l.finished.retain(|c| c != call_id);
    }
    fn active(&self, call_id: &str) -> bool {
        self.log.lock().unwrap().active.iter().any(|c| c == call_id)
    }
    fn finished(&self) -> Vec<String> {
        self.log.lock().unwrap().finished.clone()
    }
    fn mailbox_of(&self, user: &str) -> Option<String> {
        self.policies.contains_key(user).then(|| user.to_string())
    }
    fn redirect_policy(&self, mailbox: &str) -> RedirectPolicy {
        self.policies.get(mailbox).copied().unwrap_or_default()
    }
    fn is_fixed_uri(&self, ruri_user: &str) -> bool {
        self.fixed.as_deref() == Some(ruri_user)
    }
}
