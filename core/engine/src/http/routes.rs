//! The HTTP routes workers register with `registertrigger` (`trigger_type: "http"`), and
//! matching a request's method and path against them (docs/PROTOCOL.md §6).
//!
//! Patterns are split into segments once, at registration; a `:name` segment matches any one
//! non-empty segment and is handed to the function, percent-decoded, as a path parameter.
//! Routes die with the connection that registered them. Replicas of a worker register the same
//! routes: each registration is kept (keyed by trigger id and connection), the newest of equally
//! specific routes serves, and a route goes away only with its last registration.

use std::collections::HashMap;
use std::sync::Mutex;

use hyper::Method;
use iii_protocol::http::{CONFIG_API_PATH, CONFIG_HTTP_METHOD};
use percent_encoding::percent_decode_str;
use serde_json::Value;

use crate::access::Domain;
use crate::util::{lock, shrink_map};
use crate::worker::registry::ConnId;

/// The methods a route may name.
const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

/// One registered route.
#[derive(Debug, Clone)]
struct Route {
    owner: ConnId,
    /// Which workers may register the same method and pattern (see [`Domain`]).
    domain: Domain,
    function_id: String,
    method: Method,
    /// The pattern as registered, with a leading `/`.
    pattern: String,
    segments: Vec<Segment>,
    /// Registration order, so the newest of two equally specific routes wins.
    order: u64,
}

/// A request's route: which function serves it, and the parameters taken from its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RouteMatch {
    /// The trigger that registered the route (its metadata goes with each call).
    pub(crate) trigger_id: String,
    /// The connection that registered that trigger.
    pub(crate) owner: ConnId,
    /// The function to invoke.
    pub(crate) function_id: String,
    /// The registered pattern, e.g. `/files/:filename`.
    pub(crate) pattern: String,
    /// The route's method (GET for a HEAD request served by a GET route).
    pub(crate) method: Method,
    /// `:name` segments and their percent-decoded values.
    pub(crate) params: Vec<(String, String)>,
}

/// Why a route cannot be registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InvalidRoute(pub(crate) String);

#[derive(Default)]
struct Inner {
    routes: HashMap<(String, ConnId), Route>,
    next_order: u64,
}

/// All HTTP routes, keyed by trigger id and registering connection.
#[derive(Default)]
pub(crate) struct RouteTable {
    inner: Mutex<Inner>,
    /// Counts the changes (a cluster node publishes its routes when it moves).
    generation: std::sync::atomic::AtomicU64,
}

/// One registered route, as [`RouteTable::snapshot`] lists it.
pub(crate) struct RouteListing {
    pub(crate) trigger_id: String,
    pub(crate) owner: ConnId,
    pub(crate) function_id: String,
    pub(crate) method: Method,
    pub(crate) pattern: String,
}

impl RouteTable {
    /// Adds (or replaces) `owner`'s trigger `id`'s route from its `config`
    /// (`{"api_path": "/files/:name", "http_method": "GET"}`). A route for the same method and
    /// pattern registered before stays, behind this one, until it is withdrawn.
    pub(crate) fn register(
        &self,
        id: String,
        owner: ConnId,
        domain: Domain,
        function_id: String,
        config: &Value,
    ) -> Result<(), InvalidRoute> {
        let api_path = match config.get(CONFIG_API_PATH) {
            Some(Value::String(path)) if !path.trim().is_empty() => path.trim(),
            Some(Value::String(_)) => return Err(InvalidRoute("api_path is empty".into())),
            Some(Value::Null) | None => {
                return Err(InvalidRoute("http trigger config needs an api_path".into()));
            }
            Some(_) => return Err(InvalidRoute("api_path must be a string".into())),
        };
        let method = match config.get(CONFIG_HTTP_METHOD) {
            None | Some(Value::Null) => Method::GET,
            Some(Value::String(name)) => parse_method(name)?,
            Some(_) => return Err(InvalidRoute("http_method must be a string".into())),
        };
        let segments = parse_pattern(api_path)?;
        let pattern = format!("/{}", api_path.trim_start_matches('/'));
        let mut inner = lock(&self.inner);
        let taken = (inner.routes.values()).any(|other| {
            other.domain != domain && other.method == method && other.segments == segments
        });
        if taken {
            return Err(InvalidRoute(format!(
                "{method} {pattern} is served by workers of another listener or tenant"
            )));
        }
        inner.next_order += 1;
        let route = Route {
            owner,
            domain,
            function_id,
            method,
            pattern,
            segments,
            order: inner.next_order,
        };
        tracing::debug!(trigger_id = %id, method = %route.method, pattern = %route.pattern, function_id = %route.function_id, "http route added");
        inner.routes.insert((id, owner), route);
        drop(inner);
        self.changed();
        Ok(())
    }

    /// Removes trigger `id`'s route if `conn` registered it.
    pub(crate) fn unregister(&self, id: &str, conn: ConnId) {
        let removed = lock(&self.inner).routes.remove(&(id.to_string(), conn));
        if removed.is_some() {
            self.changed();
        }
    }

    /// Removes every route `conn` registered.
    pub(crate) fn remove_connection(&self, conn: ConnId) {
        let mut inner = lock(&self.inner);
        let before = inner.routes.len();
        inner.routes.retain(|_, route| route.owner != conn);
        let removed = inner.routes.len() != before;
        shrink_map(&mut inner.routes);
        drop(inner);
        if removed {
            self.changed();
        }
    }

    fn changed(&self) {
        (self.generation).fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// How many changes there have been.
    pub(crate) fn generation(&self) -> u64 {
        (self.generation).load(std::sync::atomic::Ordering::Acquire)
    }

    /// Every registered route.
    pub(crate) fn snapshot(&self) -> Vec<RouteListing> {
        let inner = lock(&self.inner);
        (inner.routes.iter())
            .map(|((trigger_id, owner), route)| RouteListing {
                trigger_id: trigger_id.clone(),
                owner: *owner,
                function_id: route.function_id.clone(),
                method: route.method.clone(),
                pattern: route.pattern.clone(),
            })
            .collect()
    }

    /// Registered routes.
    pub(crate) fn len(&self) -> usize {
        lock(&self.inner).routes.len()
    }

    /// The route serving `method` on `path` (a raw, percent-encoded request path). Literal
    /// segments beat parameters; a HEAD request falls back to a GET route.
    pub(crate) fn find(&self, method: &Method, path: &str) -> Option<RouteMatch> {
        let segments: Vec<&str> = split(path).collect();
        let inner = lock(&self.inner);
        let best = |wanted: &Method| {
            inner
                .routes
                .iter()
                .filter(|(_, route)| route.method == *wanted)
                .filter_map(|((id, _), route)| {
                    Some(((id, route), match_segments(&route.segments, &segments)?))
                })
                .max_by_key(|((_, route), params)| {
                    (route.segments.len() - params.len(), route.order)
                })
        };
        let ((trigger_id, route), params) = match best(method) {
            Some(found) => found,
            None if *method == Method::HEAD => best(&Method::GET)?,
            None => return None,
        };
        Some(RouteMatch {
            trigger_id: trigger_id.clone(),
            owner: route.owner,
            function_id: route.function_id.clone(),
            pattern: route.pattern.clone(),
            method: route.method.clone(),
            params,
        })
    }
}

fn parse_method(name: &str) -> Result<Method, InvalidRoute> {
    let upper = name.trim().to_ascii_uppercase();
    if !METHODS.contains(&upper.as_str()) {
        return Err(InvalidRoute(format!(
            "unsupported http_method {name:?} (one of {})",
            METHODS.join(", ")
        )));
    }
    Method::from_bytes(upper.as_bytes()).map_err(|_| InvalidRoute(format!("bad method {name:?}")))
}

fn parse_pattern(api_path: &str) -> Result<Vec<Segment>, InvalidRoute> {
    let pattern = api_path.split(['?', '#']).next().unwrap_or_default();
    split(pattern)
        .map(|segment| match segment.strip_prefix(':') {
            Some("") => Err(InvalidRoute(format!(
                "empty parameter name in {api_path:?}"
            ))),
            Some(name) => Ok(Segment::Param(name.to_string())),
            None => Ok(Segment::Literal(decode(segment))),
        })
        .collect()
}

impl RouteMatch {
    /// The name of a path parameter whose value could name another path than the one segment
    /// it came from: `.`, `..`, or one holding `/` (encoded as `%2F`), `\\` or NUL. A
    /// single-segment parameter never holds a slash, so handlers may join it to a directory.
    pub(crate) fn unsafe_param(&self) -> Option<&str> {
        (self.params.iter())
            .find(|(_, value)| !iii_protocol::http::is_plain_segment(value))
            .map(|(name, _)| name.as_str())
    }
}

/// The non-empty segments of a path.
fn split(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|segment| !segment.is_empty())
}

fn decode(segment: &str) -> String {
    percent_decode_str(segment).decode_utf8_lossy().into_owned()
}

fn match_segments(pattern: &[Segment], path: &[&str]) -> Option<Vec<(String, String)>> {
    if pattern.len() != path.len() {
        return None;
    }
    let mut params = Vec::new();
    for (segment, actual) in pattern.iter().zip(path) {
        match segment {
            Segment::Literal(literal) => {
                if *literal != decode(actual) {
                    return None;
                }
            }
            Segment::Param(name) => params.push((name.clone(), decode(actual))),
        }
    }
    Some(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn table(routes: &[(&str, &str, Value)]) -> RouteTable {
        let table = RouteTable::default();
        for (id, function, config) in routes {
            table
                .register(
                    id.to_string(),
                    ConnId(1),
                    Domain::default(),
                    function.to_string(),
                    config,
                )
                .expect("valid route");
        }
        table
    }

    #[test]
    fn params_that_could_leave_their_segment_are_flagged() {
        let table = table(&[("a", "files::get", json!({"api_path": "/files/:filename"}))]);
        let flagged = |path: &str| {
            let found = table.find(&Method::GET, path).expect("route");
            found.unsafe_param().map(str::to_string)
        };
        for path in [
            "/files/..",
            "/files/.",
            "/files/%2E%2E",
            "/files/..%2F..%2Fetc%2Fhostname",
            "/files/a%2fb",
            "/files/a%5Cb",
            "/files/a%00b",
        ] {
            assert_eq!(flagged(path).as_deref(), Some("filename"), "{path}");
        }
        for path in [
            "/files/report.pdf",
            "/files/...",
            "/files/.hidden",
            "/files/a%20b",
        ] {
            assert_eq!(flagged(path), None, "{path}");
        }
    }

    #[test]
    fn params_are_percent_decoded_and_literals_win() {
        let table = table(&[
            ("a", "files::get", json!({"api_path": "files/:filename"})),
            (
                "b",
                "files::latest",
                json!({"api_path": "/files/latest", "http_method": "get"}),
            ),
        ]);
        let found = table
            .find(&Method::GET, "/files/q%203%20report.pdf")
            .expect("route");
        assert_eq!(found.function_id, "files::get");
        assert_eq!(found.pattern, "/files/:filename");
        assert_eq!(
            found.params,
            vec![("filename".to_string(), "q 3 report.pdf".to_string())]
        );
        let latest = table.find(&Method::GET, "/files/latest/").expect("route");
        assert_eq!(latest.function_id, "files::latest");
        assert!(table.find(&Method::POST, "/files/x").is_none());
        assert!(table.find(&Method::GET, "/files").is_none());
        assert!(table.find(&Method::GET, "/files/a/b").is_none());
        let head = table
            .find(&Method::HEAD, "/files/x")
            .expect("GET serves HEAD");
        assert_eq!(head.method, Method::GET);
    }

    #[test]
    fn re_registration_replaces_and_routes_die_with_their_last_registration() {
        let table = table(&[("a", "one", json!({"api_path": "/x", "http_method": "POST"}))]);
        let serving = |method: Method, path: &str| table.find(&method, path).map(|m| m.owner);
        table
            .register(
                "a".into(),
                ConnId(1),
                Domain::default(),
                "two".into(),
                &json!({"api_path": "/y"}),
            )
            .expect("valid");
        assert!(table.find(&Method::POST, "/x").is_none());
        assert_eq!(
            table.find(&Method::GET, "/y").map(|m| m.function_id),
            Some("two".into())
        );
        // A replica registers the same trigger id; another connection the same route under
        // another id. Each is kept; the newest serves.
        for (id, conn) in [("a", 2), ("b", 3)] {
            table
                .register(
                    id.into(),
                    ConnId(conn),
                    Domain::default(),
                    "two".into(),
                    &json!({"api_path": "/y"}),
                )
                .expect("valid");
        }
        assert_eq!(table.len(), 3);
        assert_eq!(serving(Method::GET, "/y"), Some(ConnId(3)));
        table.unregister("b", ConnId(1));
        assert_eq!(table.len(), 3, "only the owner unregisters");
        table.remove_connection(ConnId(3));
        assert_eq!(serving(Method::GET, "/y"), Some(ConnId(2)));
        table.unregister("a", ConnId(2));
        assert_eq!(
            serving(Method::GET, "/y"),
            Some(ConnId(1)),
            "the route outlives a replica"
        );
        table.remove_connection(ConnId(1));
        assert_eq!(table.len(), 0);
        assert!(serving(Method::GET, "/y").is_none());
    }

    #[test]
    fn a_route_is_shared_only_within_its_domain() {
        let table = table(&[("a", "one", json!({"api_path": "/login"}))]);
        let other = Domain::for_tests(7);
        let config = json!({"api_path": "/login"});
        let refused = table.register("b".into(), ConnId(2), other.clone(), "evil".into(), &config);
        assert!(
            refused.is_err(),
            "another listener's worker cannot take the route over"
        );
        assert_eq!(
            table.find(&Method::GET, "/login").map(|m| m.function_id),
            Some("one".into())
        );
        let elsewhere = json!({"api_path": "/other"});
        assert!(
            table
                .register("c".into(), ConnId(2), other, "mine".into(), &elsewhere)
                .is_ok()
        );
    }

    #[test]
    fn bad_configs_are_refused() {
        let table = RouteTable::default();
        for config in [
            json!({}),
            json!({"api_path": null}),
            json!({"api_path": ""}),
            json!({"api_path": 7}),
            json!({"api_path": "/x", "http_method": "TRACE"}),
            json!({"api_path": "/x/:"}),
            Value::Null,
        ] {
            assert!(
                table
                    .register(
                        "t".into(),
                        ConnId(1),
                        Domain::default(),
                        "f".into(),
                        &config
                    )
                    .is_err(),
                "{config} must be refused"
            );
        }
        assert_eq!(table.len(), 0);
    }
}
