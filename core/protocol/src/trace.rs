//! W3C trace context as it travels with a call (`traceparent`, `tracestate`, `baggage` on
//! `invokefunction`): the engine passes it through unchanged, and SDKs hand it to handlers and
//! carry it on to the calls a handler makes.

/// The trace fields of one call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceContext {
    /// `version-traceid-parentid-flags`.
    pub traceparent: Option<String>,
    /// Vendor entries.
    pub tracestate: Option<String>,
    /// Key-value pairs carried across the calls of one request.
    pub baggage: Option<String>,
}

impl TraceContext {
    /// True when no field is set.
    pub fn is_empty(&self) -> bool {
        self.traceparent.is_none() && self.tracestate.is_none() && self.baggage.is_none()
    }

    /// The trace id inside `traceparent` (32 hex digits), if it holds one.
    pub fn trace_id(&self) -> Option<&str> {
        let id = self.traceparent.as_deref()?.split('-').nth(1)?;
        (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trace_id_is_the_second_field() {
        let trace = TraceContext {
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            ..Default::default()
        };
        assert_eq!(trace.trace_id(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert!(!trace.is_empty());
        let broken = TraceContext {
            traceparent: Some("00-xyz-1".into()),
            ..Default::default()
        };
        assert_eq!(broken.trace_id(), None);
        assert!(TraceContext::default().is_empty());
    }
}
