//! The engine's Prometheus metrics (`GET /metrics` on the worker port), built on
//! `prometheus-client`. Events the engine cannot count later (an invocation's outcome and
//! duration, an HTTP request, a refusal) are counted where they happen; everything the engine
//! already knows (workers, functions, channels and their bytes, queues) is read from its
//! registries when scraped, so the hot paths pay nothing for it. Each engine has its own
//! metrics (many engines may run in one process), and `--no-metrics` leaves them out.
//!
//! Label values are bounded: function ids, HTTP routes and error codes each keep their first
//! [`MAX_LABEL_VALUES`] distinct values; later ones are counted under `_other`. Channel ids
//! are never labels.

mod labels;
mod scrape;

use std::sync::Arc;
use std::time::Instant;

use iii_protocol::ErrorBody;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

use labels::LabelBudget;
pub(crate) use scrape::{render, status};

/// Most distinct values one label keeps before the rest count as `_other`.
pub(crate) const MAX_LABEL_VALUES: usize = 1000;

/// A label set of `N` labels.
type Labels<const N: usize> = [(&'static str, String); N];

/// A histogram family of durations in seconds.
type Durations<const N: usize> = Family<Labels<N>, Histogram, fn() -> Histogram>;

/// Buckets from 0.5 ms to about 16 s, doubling.
fn seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// The counters and histograms of one engine.
pub(crate) struct Metrics {
    invocations: Family<Labels<2>, Counter>,
    invocation_seconds: Durations<1>,
    in_flight: Gauge,
    http_requests: Family<Labels<3>, Counter>,
    http_seconds: Durations<1>,
    refusals: Family<Labels<2>, Counter>,
    functions: LabelBudget,
    codes: LabelBudget,
    routes: LabelBudget,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            invocations: Family::default(),
            invocation_seconds: Family::new_with_constructor(seconds),
            in_flight: Gauge::default(),
            http_requests: Family::default(),
            http_seconds: Family::new_with_constructor(seconds),
            refusals: Family::default(),
            functions: LabelBudget::new(MAX_LABEL_VALUES),
            codes: LabelBudget::new(MAX_LABEL_VALUES),
            routes: LabelBudget::new(MAX_LABEL_VALUES),
        }
    }
}

/// One call being served: counted in flight until dropped, and by outcome and duration
/// once [`finish`](Self::finish)ed.
pub(crate) struct CallTimer {
    metrics: Arc<Metrics>,
    started: Instant,
}

impl CallTimer {
    /// Starts timing a call, if the engine keeps metrics.
    pub(crate) fn start(metrics: Option<&Arc<Metrics>>) -> Option<Self> {
        let metrics = metrics?.clone();
        metrics.in_flight.inc();
        Some(Self {
            metrics,
            started: Instant::now(),
        })
    }

    /// The call of `function_id` was answered: with a result, or with `error`.
    pub(crate) fn finish(self, function_id: &str, error: Option<&ErrorBody>) {
        let metrics = &self.metrics;
        let function = metrics.functions.label(function_id);
        let outcome = match error {
            None => "ok".to_string(),
            Some(error) => metrics.codes.label(&error.code),
        };
        let seconds = self.started.elapsed().as_secs_f64();
        metrics
            .invocation_seconds
            .get_or_create(&[("function", function.clone())])
            .observe(seconds);
        metrics
            .invocations
            .get_or_create(&[("function", function), ("outcome", outcome)])
            .inc();
    }
}

impl Drop for CallTimer {
    fn drop(&mut self) {
        self.metrics.in_flight.dec();
    }
}

impl Metrics {
    /// A fire-and-forget call of `function_id` was sent (nobody learns its outcome).
    pub(crate) fn void_call(&self, function_id: &str) {
        let function = self.functions.label(function_id);
        self.invocations
            .get_or_create(&[("function", function), ("outcome", "void".to_string())])
            .inc();
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
            None => "_unmatched".to_string(),
        };
        let method = labels::method(method);
        self.http_seconds
            .get_or_create(&[("route", route.clone())])
            .observe(started.elapsed().as_secs_f64());
        self.http_requests
            .get_or_create(&[
                ("route", route),
                ("method", method.to_string()),
                ("status", status.to_string()),
            ])
            .inc();
    }

    /// The access rules refused something at `stage` (`upgrade`: a socket before its upgrade;
    /// `call`: a worker's call; `observe`: a `/metrics` or `/status` request) with `code`.
    pub(crate) fn refused(&self, stage: &'static str, code: &str) {
        let code = self.codes.label(code);
        self.refusals
            .get_or_create(&[("stage", stage.to_string()), ("code", code)])
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_counted_by_outcome_and_in_flight_until_dropped() {
        let metrics = Arc::new(Metrics::default());
        let ok = CallTimer::start(Some(&metrics)).expect("on");
        let failed = CallTimer::start(Some(&metrics)).expect("on");
        assert_eq!(metrics.in_flight.get(), 2);
        ok.finish("f", None);
        failed.finish("f", Some(&ErrorBody::new("boom", "x")));
        assert_eq!(metrics.in_flight.get(), 0);
        let count = |outcome: &str| {
            let labels = [
                ("function", "f".to_string()),
                ("outcome", outcome.to_string()),
            ];
            metrics.invocations.get_or_create(&labels).get()
        };
        assert_eq!((count("ok"), count("boom")), (1, 1));
        assert!(CallTimer::start(None).is_none());
    }
}
