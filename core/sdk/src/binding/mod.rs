//! What every language binding needs from the core beyond the Rust API, written once here so
//! that a binding only converts types: where blocking is allowed and how sync handlers run
//! ([`blocking`]), turning the refs in a payload into live channel ends ([`ends`]), answers
//! from handlers in another language ([`reply`]), and reading a call request or a trigger given
//! as JSON ([`TriggerRequest::from_value`](crate::TriggerRequest::from_value),
//! [`RegisterTrigger::from_value`](crate::RegisterTrigger::from_value)), and the core's log
//! lines on stderr ([`logs`]), and the bound on text messages on their way to a language's
//! own thread ([`message_budget`]).

pub mod blocking;
pub mod ends;
pub mod logs;
pub mod message_budget;
pub mod reply;

pub use blocking::{allow_blocking, blocking_allowed, on_blocking_thread};
pub use ends::{FoundEnd, LiveEnd, RefLookupError, live_ends, ref_at};
pub use message_budget::{MessageBudget, MessageTicket};
pub use reply::{Answer, Reply, reply};
