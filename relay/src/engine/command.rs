//! What the control plane asks of a worker, and what comes back.

use std::net::{SocketAddr, UdpSocket};

use crate::packet::PacketKind;

use super::flow::{FlowCounters, FlowSpec, Peer, Transform};
use super::tap::Tap;
use super::LocalPort;

/// A change to a worker's state. A worker applies commands between batches, one at a time,
/// so a flow never sees half an update.
pub enum Command {
    /// Serve `LocalPort` with this bound socket.
    Attach(LocalPort, UdpSocket),
    /// Close the port's socket and forget everything about it.
    Detach(LocalPort),
    /// Install (or wholly replace) the flow for packets arriving on the port.
    Install(LocalPort, Box<FlowSpec>),
    /// Replace the ingress and/or egress transform of an installed flow (re-keying).
    UpdateKeys {
        local: LocalPort,
        ingress: Option<Transform>,
        egress: Option<Transform>,
    },
    /// Set the address the port sends to (from SDP), or clear it. A later authenticated
    /// packet may still re-latch it when the flow latches.
    SetPeer(LocalPort, Option<SocketAddr>),
    AttachTap(LocalPort, Tap),
    DetachTap(LocalPort, u64),
    /// Remove the flow on the port (the port stays attached).
    Remove(LocalPort),
    /// Read a flow's counters, its ingress stream position and the port's peer.
    Query(LocalPort),
    /// Send a datagram from the port (slow-path replies: STUN, DTLS).
    SendRaw {
        local: LocalPort,
        to: SocketAddr,
        data: Vec<u8>,
    },
    /// Stop the worker.
    Shutdown,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never prints keys: transforms print only their suite.
        match self {
            Command::Attach(l, _) => write!(f, "Attach({l})"),
            Command::Detach(l) => write!(f, "Detach({l})"),
            Command::Install(l, s) => write!(f, "Install({l}, {:?} -> {:?})", s.ingress, s.egress),
            Command::UpdateKeys { local, .. } => write!(f, "UpdateKeys({local})"),
            Command::SetPeer(l, p) => write!(f, "SetPeer({l}, {p:?})"),
            Command::AttachTap(l, t) => write!(f, "AttachTap({l}, {})", t.id),
            Command::DetachTap(l, id) => write!(f, "DetachTap({l}, {id})"),
            Command::Remove(l) => write!(f, "Remove({l})"),
            Command::Query(l) => write!(f, "Query({l})"),
            Command::SendRaw { local, to, data } => {
                write!(f, "SendRaw({local} -> {to}, {} bytes)", data.len())
            }
            Command::Shutdown => f.write_str("Shutdown"),
        }
    }
}

/// A worker's answer to a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Done,
    Flow {
        counters: Box<FlowCounters>,
        peer: Option<Peer>,
    },
    /// The port is not attached to this worker.
    NoSuchPort,
    /// The port has no flow installed.
    NoSuchFlow,
    Failed(String),
}

/// A command with the channel its reply goes back on.
pub(crate) struct Request {
    pub(crate) command: Command,
    pub(crate) reply: Option<crossbeam_channel::Sender<Reply>>,
}

/// Something a worker reports to the control plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineEvent {
    /// No packet arrived on the flow for the configured idle timeout. Reported once per
    /// idle period; the flow stays installed until the control plane removes it.
    Idle { local: LocalPort },
    /// A STUN or DTLS datagram for the control plane.
    SlowPath {
        local: LocalPort,
        from: SocketAddr,
        kind: PacketKind,
        data: Vec<u8>,
    },
}
