//! Lawful interception: the delivery half.
//!
//! - [`x3`]: ETSI TS 103 221-2 X2/X3 PDUs, encoder and validating decoder;
//! - [`delivery`]: [`X3Delivery`], which drains plaintext taps off the media workers and
//!   sends X3 PDUs over TCP or mutual TLS, buffering, dropping and counting per task;
//! - [`tasks`]: the X1 (TS 103 221-1) model of tasks and destinations, matching of a call's
//!   identities against active tasks, and its on-disk store.
//!
//! Task ids, targets and destinations never go into ordinary logs or metric labels: nothing
//! in this module logs them, and its errors do not carry them.

pub mod delivery;
pub mod tasks;
pub mod uuid;
pub mod x3;

pub use delivery::{
    CallId, CallTap, DeliveryConfig, DeliveryCounts, DeliveryError, DestinationSpec,
    DestinationStats, Interception, Transport, X3Delivery, LABEL_FROM_TARGET, LABEL_TO_TARGET,
};
pub use tasks::{CallIdentities, IdentityRole, LiTasks, TaskMatch};
pub use uuid::{DId, Uuid, Xid};
