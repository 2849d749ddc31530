//! Interception of live calls: the identities of a call, matched against the tasks in
//! force, decide whether it gets plaintext taps on its flows and X3 delivery.
//!
//! Run after a call's media is installed (ng `answer`), after it is deleted, on every
//! timer round of the daemon (the SIP edge's calls, calls removed by timers), and whenever
//! an X1 operation changes tasks or destinations (mid-call start and stop). A call that
//! matches nothing gets no tap; the worker never sees LI at all for it.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use relay::engine::{tap, Command, LocalPort, TapWhat};
use relay::li::tasks::{DestinationDetails, SecurityMode, TargetSide};
use relay::li::{
    CallIdentities, CallTap, DId, DeliveryConfig, DestinationSpec, IdentityRole, Interception,
    LiTasks, Transport, X3Delivery, Xid, LABEL_FROM_TARGET, LABEL_TO_TARGET,
};

use crate::call::{Call, CallRegistry};

/// Records a tap holds before the worker drops (about 10 s of one 50 pps stream).
const TAP_CAPACITY: usize = 512;

struct Tapped {
    delivery_id: u64,
    taps: Vec<(LocalPort, u64)>,
    xids: Vec<Xid>,
}

/// This node's client identity for mutual TLS toward destinations (PEM bytes).
#[derive(Clone, Default)]
pub struct NodeTls {
    pub cert: Option<Vec<u8>>,
    pub key: Option<Vec<u8>>,
    pub ca: Option<Vec<u8>>,
}

/// Live interception state of the daemon.
pub struct LiCalls {
    tasks: Arc<Mutex<LiTasks>>,
    delivery: X3Delivery,
    tls: NodeTls,
    state: Mutex<State>,
    next_id: AtomicU64,
}

#[derive(Default)]
struct State {
    calls: HashMap<String, Tapped>,
    destinations: HashMap<DId, DestinationDetails>,
    /// Calls matched since their media was installed (the timer round skips them).
    seen: HashSet<String>,
    /// When matching last ran over every call because a task has a time window.
    window_check: Option<Instant>,
}

/// How often matching re-runs over live calls while some task has a start or end time, so
/// that its window opens and closes on time.
const WINDOW_CHECK: Duration = Duration::from_secs(1);

/// The identities a call carries: the SIP edge's JSON in `metadata`
/// (`{"caller": {"from", "p_asserted_identity", "authenticated_user"},
/// "callee": {"to", "request_uri"}}`, the same shape is accepted from ng), otherwise the
/// ng `metadata` as a list of identities separated by commas or white space; and every
/// monologue's ng `label`.
pub fn identities(call: &Call) -> CallIdentities {
    let mut ids = CallIdentities::default();
    if let Some(meta) = &call.metadata {
        match serde_json::from_str::<serde_json::Value>(meta) {
            Ok(serde_json::Value::Object(o)) => {
                let fields = [
                    ("caller", "from", IdentityRole::From),
                    (
                        "caller",
                        "p_asserted_identity",
                        IdentityRole::PAssertedIdentity,
                    ),
                    (
                        "caller",
                        "authenticated_user",
                        IdentityRole::AuthenticatedUser,
                    ),
                    ("callee", "to", IdentityRole::To),
                    ("callee", "request_uri", IdentityRole::RequestUri),
                ];
                for (side, key, role) in fields {
                    if let Some(s) = o
                        .get(side)
                        .and_then(|v| v.get(key))
                        .and_then(|v| v.as_str())
                    {
                        ids.0.push((role, s.to_string()));
                    }
                }
            }
            _ => {
                for part in meta.split(|c: char| c == ',' || c.is_whitespace()) {
                    if !part.is_empty() {
                        ids.0.push((IdentityRole::Other, part.to_string()));
                    }
                }
            }
        }
    }
    for m in &call.monologues {
        if let Some(l) = m.label.as_deref().filter(|l| !l.is_empty()) {
            ids.0.push((IdentityRole::Other, l.to_string()));
        }
    }
    ids
}

impl LiCalls {
    pub fn start(tasks: Arc<Mutex<LiTasks>>, tls: NodeTls) -> anyhow::Result<Arc<LiCalls>> {
        let delivery = X3Delivery::start(DeliveryConfig::default())
            .map_err(|e| anyhow::anyhow!("li: starting X3 delivery: {e}"))?;
        let li = Arc::new(LiCalls {
            tasks,
            delivery,
            tls,
            state: Mutex::new(State::default()),
            next_id: AtomicU64::new(1),
        });
        li.sync_destinations();
        Ok(li)
    }

    pub fn delivery(&self) -> &X3Delivery {
        &self.delivery
    }

    /// Number of calls being intercepted.
    pub fn intercepted_calls(&self) -> usize {
        self.state.lock().map_or(0, |s| s.calls.len())
    }

    fn spec(&self, d: &DestinationDetails) -> Option<DestinationSpec> {
        let address = d.delivery_address.socket_addr();
        let transport = match &d.security {
            SecurityMode::Tcp => Transport::Tcp,
            SecurityMode::Tls {
                server_name,
                ca_file,
            } => {
                let ca = std::fs::read(ca_file)
                    .ok()
                    .or_else(|| self.tls.ca.clone())?;
                let (cert, key) = (self.tls.cert.as_ref()?, self.tls.key.as_ref()?);
                Transport::mutual_tls(&ca, cert, key, server_name).ok()?
            }
        };
        Some(DestinationSpec { address, transport })
    }

    /// Brings the delivery's destinations in line with the task store.
    pub fn sync_destinations(&self) {
        let wanted: Vec<DestinationDetails> = {
            let t = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
            t.destinations().cloned().collect()
        };
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let keep: HashSet<DId> = wanted.iter().map(|d| d.d_id).collect();
        let gone: Vec<DId> = st
            .destinations
            .keys()
            .filter(|d| !keep.contains(d))
            .copied()
            .collect();
        for d in gone {
            let _ = self.delivery.remove_destination(d);
            st.destinations.remove(&d);
        }
        for d in wanted {
            if st.destinations.get(&d.d_id) == Some(&d) {
                continue;
            }
            if st.destinations.remove(&d.d_id).is_some() {
                let _ = self.delivery.remove_destination(d.d_id);
            }
            match self.spec(&d) {
                Some(spec) => {
                    if self.delivery.add_destination(d.d_id, spec).is_ok() {
                        st.destinations.insert(d.d_id, d);
                    }
                }
                None => tracing::warn!(
                    target: "srtpgate::li_audit",
                    "an LI destination could not be set up (TLS material missing or invalid)"
                ),
            }
        }
    }

    /// Re-runs matching for one call (after its media was installed or changed).
    pub fn call_changed(&self, reg: &CallRegistry, call_id: &str) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        self.reconcile(&mut st, reg, call_id);
    }

    /// Re-runs matching for every live call, and lets go of calls that are gone.
    pub fn reconcile_all(&self, reg: &CallRegistry) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let ids: Vec<String> = reg.calls().map(|c| c.id.clone()).collect();
        for id in &ids {
            self.reconcile(&mut st, reg, id);
        }
        let live: HashSet<&String> = ids.iter().collect();
        let gone: Vec<String> = st
            .calls
            .keys()
            .filter(|k| !live.contains(k))
            .cloned()
            .collect();
        for id in gone {
            self.stop(&mut st, reg, &id);
        }
    }

    /// The timer round: matches calls not matched since their media was installed (the
    /// SIP edge's), and lets go of calls that are gone. Calls already looked at cost a
    /// hash lookup.
    pub fn tick(&self, reg: &CallRegistry) {
        if self.window_due() {
            self.reconcile_all(reg);
        }
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let fresh: Vec<String> = reg
            .calls()
            .filter(|c| !st.seen.contains(&c.id))
            .map(|c| c.id.clone())
            .collect();
        for id in fresh {
            self.reconcile(&mut st, reg, &id);
        }
        st.seen.retain(|k| reg.call(k).is_some());
        let gone: Vec<String> = st
            .calls
            .keys()
            .filter(|k| reg.call(k).is_none())
            .cloned()
            .collect();
        for id in gone {
            self.stop(&mut st, reg, &id);
        }
    }

    /// Whether a task with a start or end time exists and matching has not re-run over the
    /// live calls for [`WINDOW_CHECK`]. Without timed tasks this costs one lock.
    fn window_due(&self) -> bool {
        let timed = {
            let t = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
            let any = t
                .tasks()
                .any(|k| k.start_time.is_some() || k.end_time.is_some());
            any
        };
        if !timed {
            return false;
        }
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let due = st.window_check.is_none_or(|t| t.elapsed() >= WINDOW_CHECK);
        if due {
            st.window_check = Some(Instant::now());
        }
        due
    }

    fn stop(&self, st: &mut State, reg: &CallRegistry, call_id: &str) {
        if let Some(t) = st.calls.remove(call_id) {
            for (local, id) in &t.taps {
                // The flow may be gone already, and its taps with it.
                let _ = reg.engine().apply(*local, Command::DetachTap(*local, *id));
            }
            let _ = self.delivery.detach(t.delivery_id);
        }
    }

    fn reconcile(&self, st: &mut State, reg: &CallRegistry, call_id: &str) {
        let Some(call) = reg.call(call_id) else {
            st.seen.remove(call_id);
            self.stop(st, reg, call_id);
            return;
        };
        let ports = installed_ports(reg, call);
        if !ports.is_empty() {
            st.seen.insert(call_id.to_string());
        }
        let matches = {
            let ids = identities(call);
            if ids.0.is_empty() {
                Vec::new()
            } else {
                let t = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
                t.matching(&ids)
            }
        };
        let matches: Vec<_> = matches
            .into_iter()
            .filter(|m| m.delivery_type.has_x3())
            .collect();
        if matches.is_empty() {
            self.stop(st, reg, call_id);
            return;
        }
        let interceptions: Vec<Interception> = matches
            .iter()
            .map(|m| Interception {
                xid: m.xid,
                destinations: m.destinations.clone(),
            })
            .collect();
        let xids: Vec<Xid> = matches.iter().map(|m| m.xid).collect();
        // Ports of monologue 0 (the offerer, the caller) receive what the caller sends.
        let callee = matches.iter().all(|m| m.target_side == TargetSide::Callee);
        let known: HashSet<LocalPort> = st
            .calls
            .get(call_id)
            .map(|t| t.taps.iter().map(|(l, _)| *l).collect())
            .unwrap_or_default();
        let mut engine_taps = Vec::new();
        let mut call_taps = Vec::new();
        for (local, from_caller) in ports {
            if known.contains(&local) {
                continue;
            }
            let label = if from_caller != callee {
                LABEL_FROM_TARGET
            } else {
                LABEL_TO_TARGET
            };
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let (t, rx) = tap(id, TapWhat::Plaintext, label, TAP_CAPACITY);
            engine_taps.push((local, t));
            call_taps.push((local, CallTap::from_label(id, rx, label)));
        }
        let added: Vec<(LocalPort, u64)> = call_taps.iter().map(|(l, t)| (*l, t.id)).collect();
        let taps: Vec<CallTap> = call_taps.into_iter().map(|(_, t)| t).collect();
        match st.calls.get_mut(call_id) {
            Some(t) => {
                if t.xids != xids {
                    let _ = self
                        .delivery
                        .set_interceptions(t.delivery_id, interceptions);
                    t.xids = xids;
                }
                if !taps.is_empty() && self.delivery.add_taps(t.delivery_id, taps).is_ok() {
                    t.taps.extend(added);
                } else {
                    engine_taps.clear();
                }
            }
            None => {
                if engine_taps.is_empty() {
                    return;
                }
                let delivery_id = self.next_id.fetch_add(1, Ordering::Relaxed);
                if self
                    .delivery
                    .attach(delivery_id, interceptions, taps)
                    .is_err()
                {
                    return;
                }
                st.calls.insert(
                    call_id.to_string(),
                    Tapped {
                        delivery_id,
                        taps: added,
                        xids,
                    },
                );
            }
        }
        // Receivers are registered with the delivery first, so nothing a worker puts in a
        // tap goes unread.
        for (local, t) in engine_taps {
            let _ = reg.engine().apply(local, Command::AttachTap(local, t));
        }
    }
}

/// The call's local ports, and whether each receives from the caller (monologue 0). Ports
/// without a flow yet are included: the engine keeps a tap attached to such a port for the
/// flow installed there later, and across re-installs (re-INVITE re-keying).
fn installed_ports(_reg: &CallRegistry, call: &Call) -> Vec<(LocalPort, bool)> {
    let mut v = Vec::new();
    for (i, m) in call.monologues.iter().enumerate() {
        for l in &m.legs {
            v.push((l.ports.rtp, i == 0));
            if l.ports.rtcp != l.ports.rtp {
                v.push((l.ports.rtcp, i == 0));
            }
        }
    }
    v
}
