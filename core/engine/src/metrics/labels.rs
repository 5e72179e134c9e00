//! Keeping label values bounded and well-formed: a worker chooses function ids, error codes
//! and HTTP route patterns, so each label keeps only its first values (and only short ones
//! without quotes, backslashes or control characters, which the exposition format would not
//! carry intact); the rest are counted together under `_other`.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::RwLock;

/// Longest label value kept as it is.
const MAX_VALUE_BYTES: usize = 128;

/// The value later (or unfit) values are counted under.
pub(crate) const OTHER: &str = "_other";

/// The distinct values one label has taken.
pub(crate) struct LabelBudget {
    seen: RwLock<HashSet<String>>,
    max: usize,
}

/// Whether `value` can be a label value as it is.
fn fit(value: &str) -> bool {
    !matches!(value, OTHER | "_unresolved" | "_unmatched")
        && !value.is_empty()
        && value.len() <= MAX_VALUE_BYTES
        && value
            .chars()
            .all(|c| !c.is_control() && c != '"' && c != '\\')
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
    pub(crate) fn label(&self, value: &str) -> Cow<'static, str> {
        if !fit(value) {
            return Cow::Borrowed(OTHER);
        }
        let seen = self
            .seen
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if seen.contains(value) {
            return Cow::Owned(value.to_string());
        }
        let full = seen.len() >= self.max;
        drop(seen);
        if full {
            return Cow::Borrowed(OTHER);
        }
        let mut seen = (self.seen.write()).unwrap_or_else(|poisoned| poisoned.into_inner());
        if seen.len() >= self.max && !seen.contains(value) {
            return Cow::Borrowed(OTHER);
        }
        seen.insert(value.to_string());
        Cow::Owned(value.to_string())
    }
}

/// An HTTP method as a label: the standard ones, anything else as `_other`.
pub(crate) fn method(method: &str) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
    ];
    KNOWN
        .iter()
        .find(|known| **known == method)
        .copied()
        .unwrap_or(OTHER)
}

/// An HTTP status as a label: the registered ones (a function may answer any number from 100
/// to 999), anything else as `_other`.
pub(crate) fn status(status: u16) -> Cow<'static, str> {
    let registered = hyper::StatusCode::from_u16(status)
        .ok()
        .and_then(|status| status.canonical_reason())
        .is_some();
    if registered {
        Cow::Owned(status.to_string())
    } else {
        Cow::Borrowed(OTHER)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_past_the_budget_and_unfit_ones_are_other() {
        let budget = LabelBudget::new(2);
        assert_eq!(budget.label("a"), "a");
        assert_eq!(budget.label("b"), "b");
        assert_eq!(budget.label("c"), OTHER);
        assert_eq!(budget.label("a"), "a", "a value seen keeps its label");
        let fresh = LabelBudget::new(9);
        for unfit in [
            "x\ny",
            "x\",evil=\"y",
            "a\\",
            "",
            &"z".repeat(200),
            "_unresolved",
        ] {
            assert_eq!(fresh.label(unfit), OTHER, "{unfit:?}");
        }
        assert_eq!(fresh.label("stream::get(name)"), "stream::get(name)");
        assert_eq!(method("GET"), "GET");
        assert_eq!(method("BREW"), OTHER);
        assert_eq!(status(404), "404");
        assert_eq!(status(799), OTHER);
    }
}
