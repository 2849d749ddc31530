//! The worker's table of local ports: a direct index over its share of the port range.

use super::flow::{Flow, Peer};
use super::LocalPort;

/// Everything a worker knows about one local port.
pub(crate) struct PortState {
    /// Where packets leaving from this port go.
    pub(crate) peer: Option<Peer>,
    /// What to do with packets arriving on it.
    pub(crate) flow: Option<Flow>,
    /// Taps attached before the port had a flow: the next install takes them, so a flow
    /// can be tapped from its first packet.
    pub(crate) pending_taps: Vec<super::tap::Tap>,
}

pub(crate) struct PortTable {
    slots: Vec<Option<Box<PortState>>>,
    port_min: u16,
    range: usize,
}

impl PortTable {
    pub(crate) fn new(interfaces: usize, port_min: u16, port_max: u16) -> Self {
        let range = (port_max - port_min) as usize + 1;
        PortTable {
            slots: (0..interfaces * range).map(|_| None).collect(),
            port_min,
            range,
        }
    }

    fn index(&self, l: LocalPort) -> Option<usize> {
        let off = l.port.checked_sub(self.port_min)? as usize;
        (off < self.range)
            .then_some(l.iface as usize * self.range + off)
            .filter(|i| *i < self.slots.len())
    }

    pub(crate) fn get(&self, l: LocalPort) -> Option<&PortState> {
        self.slots.get(self.index(l)?)?.as_deref()
    }

    pub(crate) fn get_mut(&mut self, l: LocalPort) -> Option<&mut PortState> {
        let i = self.index(l)?;
        self.slots.get_mut(i)?.as_deref_mut()
    }

    /// Adds an empty entry for `l`; false when `l` is outside the table.
    pub(crate) fn attach(&mut self, l: LocalPort) -> bool {
        match self.index(l) {
            Some(i) => {
                self.slots[i] = Some(Box::new(PortState {
                    peer: None,
                    flow: None,
                    pending_taps: Vec::new(),
                }));
                true
            }
            None => false,
        }
    }

    pub(crate) fn detach(&mut self, l: LocalPort) {
        if let Some(i) = self.index(l) {
            self.slots[i] = None;
        }
    }

    /// Every attached port with a flow.
    pub(crate) fn flows_mut(&mut self) -> impl Iterator<Item = (LocalPort, &mut Flow)> {
        let (min, range) = (self.port_min, self.range);
        self.slots.iter_mut().enumerate().filter_map(move |(i, s)| {
            let flow = s.as_deref_mut()?.flow.as_mut()?;
            Some((
                LocalPort {
                    iface: (i / range) as u8,
                    port: min + (i % range) as u16,
                },
                flow,
            ))
        })
    }
}
