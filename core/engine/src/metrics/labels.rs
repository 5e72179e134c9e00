//! Keeping label values bounded: a worker chooses function ids, error codes and HTTP route
//! patterns, so each label keeps only its first values (and only short, printable ones); the
//! rest are counted together under `_other`.

use std::collections::HashSet;
use std::sync::RwLock;

/// Longest label value kept as it is.
const MAX_VALUE_CHARS: usize = 128;

/// The value later (or unreadable) values are counted under.
pub(crate) const OTHER: &str = "_other";

/// The distinct values one label has taken.
pub(crate) struct LabelBudget {
    seen: RwLock<HashSet<String>>,
    max: usize,
}

impl LabelBudget {
    /// A budget of `max` distinct values.
    pub(crate) fn new(max: usize) -> Self {
        Self {
            seen: RwLock::default(),
            max,
        }
    }

    /// The label value `value` is counted under: itself while there is room (or once it
    /// has been seen), otherwise [`OTHER`].
    pub(crate) fn label(&self, value: &str) -> String {
        let readable = value.len() <= MAX_VALUE_CHARS
            && !value.is_empty()
            && value.chars().all(|c| !c.is_control());
        if !readable {
            return OTHER.to_string();
        }
        let seen = match self.seen.read() {
            Ok(seen) => seen,
            Err(poisoned) => poisoned.into_inner(),
        };
        if seen.contains(value) {
            return value.to_string();
        }
        let full = seen.len() >= self.max;
        drop(seen);
        if full {
            return OTHER.to_string();
        }
        let mut seen = match self.seen.write() {
            Ok(seen) => seen,
            Err(poisoned) => poisoned.into_inner(),
        };
        if seen.len() >= self.max && !seen.contains(value) {
            return OTHER.to_string();
        }
        seen.insert(value.to_string());
        value.to_string()
    }
}

/// An HTTP method as a label: the standard ones, anything else as `_other`.
pub(crate) fn method(method: &str) -> &str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
    ];
    KNOWN
        .iter()
        .find(|known| **known == method)
        .copied()
        .unwrap_or(OTHER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_past_the_budget_and_unreadable_ones_are_other() {
        let budget = LabelBudget::new(2);
        assert_eq!(budget.label("a"), "a");
        assert_eq!(budget.label("b"), "b");
        assert_eq!(budget.label("c"), OTHER);
        assert_eq!(budget.label("a"), "a", "a value seen keeps its label");
        assert_eq!(LabelBudget::new(9).label("x\ny"), OTHER);
        assert_eq!(LabelBudget::new(9).label(&"z".repeat(200)), OTHER);
        assert_eq!(method("GET"), "GET");
        assert_eq!(method("BREW"), OTHER);
    }
}
