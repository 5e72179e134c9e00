//! Text messages on their way from the core's threads to a language's own thread (a Node
//! callback, a Python event loop), counted so that a thread that falls behind cannot make them
//! pile up without limit: the same bounds as the messages a reader keeps for a first callback
//! ([`MAX_KEPT_MESSAGES`], [`MAX_KEPT_MESSAGE_BYTES`]). Every binding that hands messages over
//! uses this one count.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::channel::{MAX_KEPT_MESSAGE_BYTES, MAX_KEPT_MESSAGES};

/// Messages (and their bytes) handed over and not yet taken by the language's thread.
#[derive(Debug, Default)]
pub struct MessageBudget {
    count: AtomicUsize,
    bytes: AtomicUsize,
}

/// One message's share of a [`MessageBudget`]; given back when dropped (after the message was
/// delivered, or when it could not be).
#[derive(Debug)]
pub struct MessageTicket {
    budget: Arc<MessageBudget>,
    bytes: usize,
}

impl MessageBudget {
    /// An empty budget.
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// A ticket for a message of `bytes` bytes, or `None` when as many messages or bytes as a
    /// reader keeps are already on their way (the message should then be dropped with a
    /// warning, as the core drops messages nobody takes).
    pub fn take(self: &Arc<Self>, bytes: usize) -> Option<MessageTicket> {
        let count = self.count.fetch_add(1, Ordering::AcqRel);
        let held = self.bytes.fetch_add(bytes, Ordering::AcqRel);
        let ticket = MessageTicket {
            budget: self.clone(),
            bytes,
        };
        (count < MAX_KEPT_MESSAGES && held + bytes <= MAX_KEPT_MESSAGE_BYTES).then_some(ticket)
    }
}

impl Drop for MessageTicket {
    fn drop(&mut self) {
        self.budget.count.fetch_sub(1, Ordering::AcqRel);
        self.budget.bytes.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_are_bounded_in_count_and_bytes_and_given_back() {
        let budget = MessageBudget::new();
        let held: Vec<_> = (0..MAX_KEPT_MESSAGES)
            .map(|_| budget.take(1).expect("within the bound"))
            .collect();
        assert!(
            budget.take(1).is_none(),
            "one more than the bound is refused"
        );
        drop(held);
        assert!(
            budget.take(MAX_KEPT_MESSAGE_BYTES).is_some(),
            "all given back"
        );
        assert!(
            budget.take(MAX_KEPT_MESSAGE_BYTES + 1).is_none(),
            "too many bytes"
        );
    }
}
