//! The engine's Prometheus metrics (`GET /metrics` on the worker port), built on
//! `prometheus-client`. Events the engine cannot count later (an invocation's outcome and
//! duration, an HTTP request, a refusal) are counted where they happen; everything the engine
//! already knows (workers, functions, channels and their bytes, queues) is read from its
//! registries when scraped, so the hot paths pay nothing for it. Each engine has its own
//! metrics (many engines may run in one process), and `--no-metrics` leaves them out.
//!
//! Label values are bounded (see [`labels`]): worker-chosen values keep their first few
//! distinct values, each metric keeps at most [`MAX_SERIES`] label sets, and channel ids are
//! never labels.

mod labels;
mod scrape;

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use iii_protocol::ErrorBody;
use iii_protocol::builtins::engine_function;
use iii_protocol::codes::CALL_ERRORS;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

use labels::{LabelBudget, OTHER};
pub(crate) use scrape::{render, status};

/// Most distinct function ids and HTTP route patterns kept as label values.
pub(crate) const MAX_LABEL_VALUES: usize = 1000;

/// Most distinct error codes kept as outcome label values.
const MAX_CODES: usize = 100;

/// Most label sets one metric keeps; later ones are counted under `_other` labels.
pub(crate) const MAX_SERIES: usize = 10_000;

/// The function label of a call that never reached a function (not found, refused, malformed):
/// a worker calling made-up ids does not use up the function budget.
const UNRESOLVED: &str = "_unresolved";

/// A label value: a fixed word, or a value a worker chose (bounded).
type Value = Cow<'static, str>;

/// A label set of `N` labels.
type Labels<const N: usize> = [(&'static str, Value); N];

/// Buckets from 0.5 ms to about 16 s, doubling.
fn seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// A family of metrics and how many label sets it holds (counted here: the library keeps
/// that to its tests).
struct Bounded<M, C = fn() -> M, const N: usize = 1> {
    family: Family<Labels<N>, M, C>,
    series: AtomicUsize,
}

impl<M, C: MetricConstructor<M>, const N: usize> Bounded<M, C, N> {
    fn new(family: Family<Labels<N>, M, C>) -> Self {
        Self {
            family,
            series: AtomicUsize::new(0),
        }
    }

    /// Runs `update` on the metric of `labels`, unless the family already holds about
    /// [`MAX_SERIES`] label sets: then on the one whose worker-chosen label (`function`,
    /// `route`) is `_other`, the others (outcome, method, status: few values each) kept, so
    /// a success still counts as one. The count is approximate (two threads adding the same
    /// new set may both count it), never below the sets there are.
    fn with(&self, labels: Labels<N>, update: impl FnOnce(&M)) {
        // The usual case: a label set seen before, found with one lookup.
        if let Some(metric) = self.family.get(&labels) {
            update(&metric);
            return;
        }
        let labels = if self.series.fetch_add(1, Ordering::Relaxed) < MAX_SERIES {
            labels
        } else {
            self.series.fetch_sub(1, Ordering::Relaxed);
            labels.map(|(name, value)| match name {
                "function" | "route" => (name, Cow::Borrowed(OTHER)),
                _ => (name, value),
            })
        };
        update(&self.family.get_or_create(&labels));
    }
}

/// The counters and histograms of one engine.
pub(crate) struct Metrics {
    invocations: Bounded<Counter, fn() -> Counter, 2>,
    invocation_seconds: Bounded<Histogram>,
    in_flight: Gauge,
    http_requests: Bounded<Counter, fn() -> Counter, 3>,
    http_seconds: Bounded<Histogram>,
    refusals: Family<Labels<2>, Counter>,
    functions: LabelBudget,
    outcomes: LabelBudget,
    routes: LabelBudget,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            invocations: Bounded::new(Family::default()),
            invocation_seconds: Bounded::new(Family::new_with_constructor(seconds)),
            in_flight: Gauge::default(),
            http_requests: Bounded::new(Family::default()),
            http_seconds: Bounded::new(Family::new_with_constructor(seconds)),
            refusals: Family::default(),
            functions: LabelBudget::new(MAX_LABEL_VALUES),
            outcomes: LabelBudget::new(MAX_CODES),
            routes: LabelBudget::new(MAX_LABEL_VALUES),
        }
    }
}

/// One call being served: counted in flight until dropped, and by outcome and duration
/// once [`finish`](Self::finish)ed.
pub(crate) struct CallTimer {
    metrics: Arc<Metrics>,
    started: Instant,
    /// The call reached a function (or a built-in): its id is a label of its own.
    resolved: bool,
}

impl CallTimer {
    /// Starts timing a call, if the engine keeps metrics.
    pub(crate) fn start(metrics: Option<&Arc<Metrics>>) -> Option<Self> {
        let metrics = metrics?.clone();
        metrics.in_flight.inc();
        Some(Self {
            metrics,
            started: Instant::now(),
            resolved: false,
        })
    }

    /// The call reached its function (or a built-in answered it).
    pub(crate) fn resolve(&mut self) {
        self.resolved = true;
    }

    /// The call of `function_id` was answered: with a result, or with `error`.
    pub(crate) fn finish(self, function_id: &str, error: Option<&ErrorBody>) {
        let metrics = &self.metrics;
        let function = if self.resolved {
            metrics.function_label(function_id)
        } else {
            Cow::Borrowed(UNRESOLVED)
        };
        let outcome = match error {
            None => Cow::Borrowed("ok"),
            // The engine's and the SDKs' own codes always keep their label; codes a worker
            // chose take the budget (and are never mistaken for a success).
            Some(error) => match CALL_ERRORS.iter().find(|code| **code == error.code) {
                Some(code) => Cow::Borrowed(*code),
                None if matches!(error.code.as_str(), "ok" | "void") => Cow::Borrowed(OTHER),
                None => metrics.outcomes.label(&error.code),
            },
        };
        let seconds = self.started.elapsed().as_secs_f64();
        (metrics.invocation_seconds).with([("function", function.clone())], |histogram| {
            histogram.observe(seconds);
        });
        let labels = [("function", function), ("outcome", outcome)];
        metrics.invocations.with(labels, |counter| {
            counter.inc();
        });
    }
}

impl Drop for CallTimer {
    fn drop(&mut self) {
        self.metrics.in_flight.dec();
    }
}

impl Metrics {
    /// The label of a function that was reached: the engine's own keep theirs, others take
    /// the budget.
    fn function_label(&self, function_id: &str) -> Value {
        match engine_function(function_id) {
            Some(id) => Cow::Borrowed(id),
            None => self.functions.label(function_id),
        }
    }

    /// A fire-and-forget call of `function_id` was sent to its function (nobody learns its
    /// outcome).
    pub(crate) fn void_call(&self, function_id: &str) {
        let function = self.function_label(function_id);
        let labels = [("function", function), ("outcome", Cow::Borrowed("void"))];
        self.invocations.with(labels, |counter| {
            counter.inc();
        });
    }

    /// An HTTP request for `route` (its pattern, or `None` when no route matched) was answered
    /// with `status` after `started`.
    pub(crate) fn http_request(
        &self,
        route: Option<&str>,
        method: &str,
        status: u16,
        started: Instant,
    ) {
        let route = match route {
            Some(route) => self.routes.label(route),
            None => Cow::Borrowed("_unmatched"),
        };
        let seconds = started.elapsed().as_secs_f64();
        (self.http_seconds).with([("route", route.clone())], |histogram| {
            histogram.observe(seconds);
        });
        let labels = [
            ("route", route),
            ("method", Cow::Borrowed(labels::method(method))),
            ("status", labels::status(status)),
        ];
        self.http_requests.with(labels, |counter| {
            counter.inc();
        });
    }

    /// The access rules refused something at `stage` (`upgrade`: a socket before its upgrade;
    /// `call`: a worker's call; `observe`: a `/metrics` or `/status` request) with `code`.
    pub(crate) fn refused(&self, stage: &'static str, code: &str) {
        use iii_protocol::codes::{AUTH_ERROR, BAD_REQUEST, FORBIDDEN};
        let code = [AUTH_ERROR, BAD_REQUEST, FORBIDDEN]
            .into_iter()
            .find(|known| *known == code)
            .unwrap_or(OTHER);
        let labels = [
            ("stage", Cow::Borrowed(stage)),
            ("code", Cow::Borrowed(code)),
        ];
        self.refusals.get_or_create(&labels).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(metrics: &Metrics, function: &str, outcome: &str) -> u64 {
        let labels = [
            ("function", Cow::Owned(function.to_string())),
            ("outcome", Cow::Owned(outcome.to_string())),
        ];
        metrics.invocations.family.get_or_create(&labels).get()
    }

    #[test]
    fn calls_are_counted_by_outcome_and_in_flight_until_dropped() {
        let metrics = Arc::new(Metrics::default());
        let mut ok = CallTimer::start(Some(&metrics)).expect("on");
        let mut failed = CallTimer::start(Some(&metrics)).expect("on");
        let lost = CallTimer::start(Some(&metrics)).expect("on");
        let refused = CallTimer::start(Some(&metrics)).expect("on");
        assert_eq!(metrics.in_flight.get(), 4);
        ok.resolve();
        failed.resolve();
        ok.finish("f", None);
        failed.finish("f", Some(&ErrorBody::new("boom", "x")));
        drop(lost);
        refused.finish("made::up", Some(&ErrorBody::new("function_not_found", "x")));
        assert_eq!(metrics.in_flight.get(), 0);
        assert_eq!(
            (count(&metrics, "f", "ok"), count(&metrics, "f", "boom")),
            (1, 1)
        );
        assert_eq!(count(&metrics, UNRESOLVED, "function_not_found"), 1);
        assert!(CallTimer::start(None).is_none());
        // A worker's error named "ok" is not a success.
        let mut sly = CallTimer::start(Some(&metrics)).expect("on");
        sly.resolve();
        sly.finish("f", Some(&ErrorBody::new("ok", "x")));
        assert_eq!(
            (count(&metrics, "f", "ok"), count(&metrics, "f", OTHER)),
            (1, 1)
        );
    }

    #[test]
    fn a_metric_keeps_at_most_its_series() {
        let metrics = Metrics::default();
        for n in 0..MAX_SERIES + 5 {
            let labels = [
                ("route", Cow::Owned(format!("/r{}", n % 900))),
                ("method", Cow::Borrowed("GET")),
                ("status", Cow::Owned((200 + n / 900).to_string())),
            ];
            metrics.http_requests.with(labels, |counter| {
                counter.inc();
            });
        }
        assert_eq!(
            metrics.http_requests.series.load(Ordering::Relaxed),
            MAX_SERIES
        );
        // The last five (status 211) share the route `_other`, and keep method and status.
        let other = [("route", OTHER), ("method", "GET"), ("status", "211")]
            .map(|(k, v)| (k, Cow::Borrowed(v)));
        let shared = metrics
            .http_requests
            .family
            .get(&other)
            .map(|counter| counter.get());
        assert_eq!(shared, Some(5), "the rest share one label set");
    }
}
