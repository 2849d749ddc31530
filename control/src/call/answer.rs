//! The answer side of offer/answer: the answerer's keys (SDES lines or a DTLS role), the
//! line accepted from the offerer or srtpgate's DTLS role toward it, and installing the
//! stream once both legs have keys.

use super::crypto::{choose, fresh_key, CryptoLine};
use super::install::{leg_mut, leg_ref};
use super::model::{Call, LocalDtls, LocalMedia, Negotiated, RemoteMedia};
use super::registry::{local_ice, AnswerOptions, CallError, CallRegistry, DtlsPreference};
use crate::dtls::Role;
use crate::sdp::Setup;

impl CallRegistry {
    pub(super) fn answer_in(
        &mut self,
        call: &mut Call,
        from_tag: &str,
        to_tag: &str,
        media: &[RemoteMedia],
        opts: &AnswerOptions,
    ) -> Result<Vec<LocalMedia>, CallError> {
        let x = call
            .monologue_index(from_tag)
            .ok_or(CallError::UnknownTag)?;
        // The answerer: known by its tag, or the placeholder the offer made; a later answer
        // from another fork branch takes over the same ports (the last answer wins).
        let y = match call.monologue_index(to_tag) {
            Some(y) => y,
            None => {
                let y = call
                    .monologue_index("")
                    .or_else(|| (0..call.monologues.len()).find(|&m| m != x))
                    .ok_or(CallError::UnknownTag)?;
                call.monologues[y].tag = to_tag.to_string();
                y
            }
        };
        if opts.label.is_some() {
            call.monologues[y].label = opts.label.clone();
        }
        let mut out = Vec::with_capacity(media.len());
        for (i, remote) in media.iter().enumerate() {
            let (Some(xl), Some(_)) = (call.monologues[x].leg(i), call.monologues[y].leg(i)) else {
                return Err(CallError::AnswerMismatch(i));
            };
            let x_remote = xl.remote.clone();
            // The answerer's side.
            let yl = leg_mut(call, y, i);
            yl.remote = remote.clone();
            yl.mux = remote.rtcp_mux;
            yl.partner = Some(x);
            if remote.ice.is_none() {
                yl.ice = None;
            }
            match (&mut yl.dtls, &remote.dtls) {
                (Some(d), Some(r)) => {
                    // The answerer's role decides ours; `actpass` is not a valid answer.
                    let role = match r.setup {
                        Some(Setup::Active) | None | Some(Setup::HoldConn) => Role::Server,
                        Some(Setup::Passive) => Role::Client,
                        Some(Setup::ActPass) if d.setup == Some(Setup::Passive) => Role::Server,
                        Some(Setup::ActPass) => Role::Client,
                    };
                    if d.role != Some(role) || d.remote_fingerprints != r.fingerprints {
                        d.role = Some(role);
                        d.remote_fingerprints = r.fingerprints.clone();
                        d.connected = false;
                        yl.want = None;
                    }
                    yl.srtp = true;
                    yl.local_crypto.clear();
                }
                (d, _) => *d = None,
            }
            let y_suite = if yl.dtls.is_none() {
                let y_neg = if remote.srtp && !remote.crypto.is_empty() {
                    let theirs = remote.crypto[0].clone();
                    let ours = yl
                        .local_crypto
                        .iter()
                        .find(|c| c.tag == theirs.tag && c.suite == theirs.suite)
                        .cloned()
                        .ok_or(CallError::UnknownCryptoTag { tag: theirs.tag })?;
                    yl.srtp = true;
                    yl.local_crypto = vec![ours.clone()];
                    Negotiated {
                        rx: Some(theirs),
                        tx: Some(ours),
                    }
                } else {
                    yl.srtp = false;
                    yl.local_crypto.clear();
                    Negotiated { rx: None, tx: None }
                };
                let suite = y_neg.tx.as_ref().map(|c| c.suite);
                yl.want = Some(y_neg);
                suite
            } else {
                None
            };
            // The offerer's side: accept one of its lines, preferably the answerer's suite.
            let x_mux = x_remote.rtcp_mux && !opts.reject_offerer_mux;
            let fingerprint = if leg_ref(call, x, i).dtls.is_some() {
                Some(self.our_fingerprint(opts.fingerprint_hash.as_deref())?)
            } else {
                None
            };
            let xl = leg_mut(call, x, i);
            xl.mux = x_mux;
            xl.partner = Some(y);
            if opts.remove_ice_toward_offerer {
                xl.ice = None;
            }
            let mut local_dtls = None;
            if let (Some(d), Some(fingerprint)) = (&mut xl.dtls, fingerprint) {
                let role = match x_remote.dtls.as_ref().and_then(|r| r.setup) {
                    Some(Setup::Active) => Role::Server,
                    Some(Setup::Passive) => Role::Client,
                    _ if opts.dtls_preference == DtlsPreference::Passive => Role::Server,
                    _ => Role::Client,
                };
                let setup = match role {
                    Role::Client => Setup::Active,
                    Role::Server => Setup::Passive,
                };
                if d.role != Some(role) {
                    d.role = Some(role);
                    d.connected = false;
                    xl.want = None;
                }
                d.setup = Some(setup);
                xl.srtp = true;
                xl.local_crypto.clear();
                local_dtls = Some(LocalDtls { fingerprint, setup });
            } else if x_remote.srtp {
                let line = choose(&x_remote.crypto, y_suite)
                    .ok_or(CallError::NoCryptoSuite)?
                    .clone();
                // Keep srtpgate's key toward the offerer across re-answers with the same line.
                let tx = match xl.negotiated.as_ref().and_then(|n| n.tx.clone()) {
                    Some(t) if t.suite == line.suite && t.tag == line.tag => t,
                    _ => CryptoLine {
                        tag: line.tag,
                        suite: line.suite,
                        key: fresh_key(line.suite)?,
                        extra_keys: Vec::new(),
                        params: Vec::new(),
                    },
                };
                xl.srtp = true;
                xl.local_crypto = vec![tx.clone()];
                xl.want = Some(Negotiated {
                    rx: Some(line),
                    tx: Some(tx),
                });
            } else {
                xl.srtp = false;
                xl.local_crypto.clear();
                xl.want = Some(Negotiated { rx: None, tx: None });
            }
            let x_ports = xl.ports;
            let rejected = remote.port == 0 || x_remote.port == 0;
            let addr = self.advertised(x_ports.rtp.iface as usize)?;
            let xl = leg_ref(call, x, i);
            out.push(LocalMedia {
                addr,
                port: if rejected { 0 } else { x_ports.rtp.port },
                rtcp_port: x_ports.rtcp.port,
                rtcp_mux: x_mux,
                srtp: x_remote.srtp,
                crypto: xl.local_crypto.clone(),
                rejected,
                dtls: local_dtls,
                ice: xl.ice.as_ref().map(|c| local_ice(c, addr, x_ports, x_mux)),
                // The answer keeps the offer's profile.
                feedback: Some(x_remote.feedback),
            });
            if rejected {
                continue;
            }
            leg_mut(call, x, i).strict |= opts.strict_source;
            leg_mut(call, y, i).strict |= opts.strict_source;
            self.ensure_transport(call, x, i)?;
            self.ensure_transport(call, y, i)?;
            self.try_install(call, x, y, i)?;
        }
        Ok(out)
    }

    /// Installs stream `i` between monologues `x` and `y` once both legs have keys.
    pub(super) fn try_install(
        &mut self,
        call: &mut Call,
        x: usize,
        y: usize,
        i: usize,
    ) -> Result<(), CallError> {
        let (xl, yl) = (leg_ref(call, x, i), leg_ref(call, y, i));
        let (Some(xw), Some(yw)) = (xl.want.clone(), yl.want.clone()) else {
            return Ok(());
        };
        let strict = xl.strict || yl.strict;
        self.install_pair(call, x, y, i, xw, yw, strict)
    }
}
