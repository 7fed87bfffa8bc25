//! Lattice learning: closing the loop between decisions and what customers did next.
//!
//! * [`posterior`]: a Beta posterior of each action's response rate per [`segment`] (tier ×
//!   churn band), its prior centred on the static propensity;
//! * [`thompson`]: greedy or Thompson-sampled choices, deterministic per decision id, with the
//!   probability of the choice logged for off-policy evaluation;
//! * [`control`]: control groups by hash of the customer id;
//! * [`attribution`]: which decision an event answers (first touch, one response per decision);
//! * [`ope`]: IPS, SNIPS and doubly robust estimates of another policy from logged decisions;
//! * [`sim`]: a world with planted true response rates, to measure all of the above.
//!
//! No I/O, no columnar stack: the server and the command line call these functions. The model
//! and what each figure means are in `docs/learning.md`.

pub mod argmax;
pub mod attribution;
pub mod control;
pub mod hash;
pub mod ope;
pub mod posterior;
pub mod segment;
pub mod sim;
pub mod stats;
pub mod thompson;

pub use attribution::{Attributor, Contacted, Event, EventKind, Outcome, attribute};
pub use control::Holdouts;
pub use posterior::{Beta, Cell, PRIOR_STRENGTH, Posteriors};
pub use segment::{Segment, Segments};
pub use thompson::{Arm, Choice, DRAWS, choose, win_probability};
