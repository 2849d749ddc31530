//! Installing a stream's flows in the engine once both of its legs have keys: ingress and
//! egress transforms per port, re-keying without losing SRTP state, and the peers ports send
//! to (the SDP address, or the one ICE selected).

use std::net::SocketAddr;

use relay::engine::{Command, Transform};
use relay::srtp::SrtpContext;

use super::crypto::CryptoLine;
use super::model::{Call, Leg, Negotiated};
use super::registry::{CallError, CallRegistry};
use relay::engine::FlowSpec;

impl CallRegistry {
    /// Installs (or re-keys) the flows of stream `i` between monologues `x` and `y`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn install_pair(
        &mut self,
        call: &mut Call,
        x: usize,
        y: usize,
        i: usize,
        x_neg: Negotiated,
        y_neg: Negotiated,
        strict: bool,
    ) -> Result<(), CallError> {
        let (xl, yl) = (leg_ref(call, x, i).clone(), leg_ref(call, y, i).clone());
        // Packets arriving from X: unprotect with X's key, protect with ours toward Y.
        self.install_direction(
            &xl,
            &yl,
            xl.negotiated.as_ref(),
            &x_neg,
            yl.negotiated.as_ref(),
            &y_neg,
            strict,
        )?;
        self.install_direction(
            &yl,
            &xl,
            yl.negotiated.as_ref(),
            &y_neg,
            xl.negotiated.as_ref(),
            &x_neg,
            strict,
        )?;
        self.set_leg_peers(&xl)?;
        self.set_leg_peers(&yl)?;
        leg_mut(call, x, i).negotiated = Some(x_neg);
        leg_mut(call, y, i).negotiated = Some(y_neg);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn install_direction(
        &self,
        from: &Leg,
        to: &Leg,
        from_old: Option<&Negotiated>,
        from_new: &Negotiated,
        to_old: Option<&Negotiated>,
        to_new: &Negotiated,
        strict: bool,
    ) -> Result<(), CallError> {
        let rtcp_out = if to.mux { to.ports.rtp } else { to.ports.rtcp };
        let mut locals = vec![from.ports.rtp];
        if !from.mux && from.ports.rtcp != from.ports.rtp {
            locals.push(from.ports.rtcp);
        }
        let same_rx = from_old.is_some_and(|o| same_line(&o.rx, &from_new.rx));
        let same_tx = to_old.is_some_and(|o| same_line(&o.tx, &to_new.tx));
        for local in locals {
            let installed = self.engine.query(local).is_ok();
            if installed && same_rx && same_tx {
                // Same keys: keep the SRTP state (rollover counters, replay windows).
                continue;
            }
            if installed && (same_rx || same_tx) {
                self.engine.apply(
                    local,
                    Command::UpdateKeys {
                        local,
                        ingress: (!same_rx).then(|| transform(&from_new.rx)).transpose()?,
                        egress: (!same_tx).then(|| transform(&to_new.tx)).transpose()?,
                    },
                )?;
                continue;
            }
            let spec = FlowSpec {
                ingress: transform(&from_new.rx)?,
                egress: transform(&to_new.tx)?,
                rtp_out: to.ports.rtp,
                rtcp_out,
                latch: from.latch,
                strict_source: strict || from.strict,
                clock_rate: 8000,
            };
            self.engine.install(local, spec)?;
        }
        Ok(())
    }

    pub(super) fn advertised(&self, iface: usize) -> Result<std::net::IpAddr, CallError> {
        self.engine
            .advertised(iface)
            .ok_or(CallError::UnknownInterface(iface))
    }

    /// Points the leg's ports at the endpoint: the address ICE selected, else the SDP's.
    pub(super) fn set_leg_peers(&self, leg: &Leg) -> Result<(), CallError> {
        let r = &leg.remote;
        let (rtp, rtcp): (Option<SocketAddr>, Option<SocketAddr>) = match leg.ice_selected {
            Some(a) => (Some(a), None),
            None if r.rtcp_mux => (r.rtp_addr(), None),
            None => (r.rtp_addr(), r.rtcp_addr()),
        };
        self.engine.set_peer(leg.ports.rtp, rtp)?;
        if leg.ports.rtcp != leg.ports.rtp {
            self.engine.set_peer(leg.ports.rtcp, rtcp)?;
        }
        Ok(())
    }
}

pub(super) fn leg_mut(call: &mut Call, m: usize, i: usize) -> &mut Leg {
    match call.monologues[m].leg_mut(i) {
        Some(l) => l,
        None => unreachable!("ensure_leg ran for every stream"),
    }
}

pub(super) fn leg_ref(call: &Call, m: usize, i: usize) -> &Leg {
    match call.monologues[m].leg(i) {
        Some(l) => l,
        None => unreachable!("ensure_leg ran for every stream"),
    }
}

fn same_line(a: &Option<CryptoLine>, b: &Option<CryptoLine>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            a.suite == b.suite && a.key.key() == b.key.key() && a.key.salt() == b.key.salt()
        }
        _ => false,
    }
}

fn transform(line: &Option<CryptoLine>) -> Result<Transform, CallError> {
    match line {
        None => Ok(Transform::Plain),
        Some(l) => Ok(Transform::Srtp(Box::new(SrtpContext::new(l.policy())?))),
    }
}
