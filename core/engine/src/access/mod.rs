//! Who may do what on a worker listener: the access rules a listener is configured with (in
//! the published engine's `rbac` shape, see docs/ACCESS.md), and the per-connection session
//! its auth function grants. Every invocation, registration and upgrade a worker makes passes
//! through here; a listener without rules costs one branch.

pub(crate) mod auth;
pub mod expose;
pub(crate) mod hooks;
pub(crate) mod origin;

use std::sync::Arc;

use iii_protocol::ErrorBody;
use iii_protocol::builtins::INFRASTRUCTURE_FUNCTIONS;
use iii_protocol::codes::FORBIDDEN;
use serde::Deserialize;
use serde_json::{Map, Value};

pub use expose::{ExposeFilter, Glob, ValueMatch};

/// How one worker listener admits its connections and what they may do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListenerPolicy {
    /// A function every call from this listener's connections goes through instead of its
    /// target (engine functions excepted): it gets `{function_id, payload, action, context}`
    /// and its answer is the caller's.
    pub middleware_function_id: Option<String>,
    /// Access control; `None` lets every connection call and register anything.
    pub rbac: Option<Rbac>,
    /// Browser origins whose pages may open worker and channel sockets here (`*` for any).
    /// Upgrades carrying any other `Origin` are refused with 403.
    pub allowed_origins: Vec<String>,
    /// Host names (beside IP addresses and `localhost`) under which `/metrics` and `/status`
    /// are served on a listener bound to a non-loopback address: any other `Host` is refused
    /// with 403, so a web page whose DNS name re-points at the engine cannot read them.
    pub allowed_hosts: Vec<String>,
}

impl ListenerPolicy {
    /// The function ids the engine itself calls under these rules (auth, middleware, hooks):
    /// no connection under access rules may register them.
    pub(crate) fn engine_called(&self) -> impl Iterator<Item = &String> {
        let rbac = self.rbac.as_ref();
        let hooks = rbac.into_iter().flat_map(|rbac| {
            [
                &rbac.auth_function_id,
                &rbac.on_function_registration_function_id,
                &rbac.on_trigger_registration_function_id,
                &rbac.on_trigger_type_registration_function_id,
            ]
        });
        hooks
            .chain(std::iter::once(&self.middleware_function_id))
            .flatten()
    }
}

/// A listener's `rbac` block (the published engine's field names).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rbac {
    /// Called once per upgrade with `{headers, query_params, ip_address}`; its result grants
    /// the connection's rights, its error refuses the upgrade (401).
    pub auth_function_id: Option<String>,
    /// Functions any connection here may call, beyond what its auth grants by name.
    #[serde(default)]
    pub expose_functions: Vec<ExposeFilter>,
    /// Called on each function registration; may rename it, or deny it.
    pub on_function_registration_function_id: Option<String>,
    /// Called on each trigger registration; may change it, or deny it.
    pub on_trigger_registration_function_id: Option<String>,
    /// Called on each trigger-type registration; may change it, or deny it.
    pub on_trigger_type_registration_function_id: Option<String>,
}

/// What an auth function grants one connection (the published field names and defaults).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct Grant {
    /// Functions this connection may call, by exact id.
    #[serde(default)]
    pub(crate) allowed_functions: Vec<String>,
    /// Functions this connection may never call, by exact id (beats everything).
    #[serde(default)]
    pub(crate) forbidden_functions: Vec<String>,
    /// Trigger types it may register triggers of (`None`: any).
    #[serde(default)]
    pub(crate) allowed_trigger_types: Option<Vec<String>>,
    /// Whether it may provide trigger types.
    #[serde(default)]
    pub(crate) allow_trigger_type_registration: bool,
    /// Whether it may register functions.
    #[serde(default = "yes")]
    pub(crate) allow_function_registration: bool,
    /// Put before every function id it registers (`prefix::id`), and taken off again on the
    /// calls it is sent.
    #[serde(default)]
    pub(crate) function_registration_prefix: Option<String>,
    /// Handed to the middleware and the registration hooks.
    #[serde(default = "empty_object")]
    pub(crate) context: Value,
}

fn yes() -> bool {
    true
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

impl Grant {
    /// What a connection gets when its listener has no auth function: everything.
    pub(crate) fn open() -> Self {
        Self {
            allowed_functions: Vec::new(),
            forbidden_functions: Vec::new(),
            allowed_trigger_types: None,
            allow_trigger_type_registration: true,
            allow_function_registration: true,
            function_registration_prefix: None,
            context: empty_object(),
        }
    }
}

/// One connection's rights: its listener's rules and what its auth granted.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) policy: Arc<ListenerPolicy>,
    pub(crate) grant: Grant,
}

/// Which workers may share a function id or an HTTP route: those of one listener's rules and
/// one registration prefix. A worker of another listener (or another tenant's prefix) that
/// registers the same id is refused, so it can never join, and receive calls of, a function
/// trusted workers serve.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Domain {
    /// The listener's rules, by identity.
    listener: usize,
    /// The grant's registration prefix.
    prefix: Option<Arc<str>>,
}

impl Domain {
    /// A domain of listener `listener` without a prefix, for unit tests.
    #[cfg(test)]
    pub(crate) fn for_tests(listener: usize) -> Self {
        Self {
            listener,
            prefix: None,
        }
    }
}

/// The error of a refused call, naming what would allow it.
pub(crate) fn forbidden(function_id: &str, remedy: &str) -> ErrorBody {
    ErrorBody::new(
        FORBIDDEN,
        format!("function '{function_id}' not allowed ({remedy})"),
    )
}

impl Session {
    /// A session on a listener without an auth function.
    pub(crate) fn open(policy: Arc<ListenerPolicy>) -> Self {
        Self {
            policy,
            grant: Grant::open(),
        }
    }

    /// Whether this connection may call `function_id`: forbidden by name, else allowed by
    /// name, else an infrastructure function, else any function on a listener without `rbac`,
    /// else one an `expose_functions` filter matches (`metadata` gives what the function was
    /// registered with, asked only when a filter needs it).
    pub(crate) fn may_call(
        &self,
        function_id: &str,
        metadata: impl FnOnce() -> Option<Value>,
    ) -> Result<(), ErrorBody> {
        let Some(rbac) = &self.policy.rbac else {
            return Ok(());
        };
        let grant = &self.grant;
        if grant.forbidden_functions.iter().any(|f| f == function_id) {
            return Err(forbidden(
                function_id,
                "remove from rbac.forbidden_functions",
            ));
        }
        if grant.allowed_functions.iter().any(|f| f == function_id)
            || INFRASTRUCTURE_FUNCTIONS.contains(&function_id)
        {
            return Ok(());
        }
        let needs_metadata = (rbac.expose_functions.iter())
            .any(|filter| matches!(filter, ExposeFilter::Metadata(_)));
        let metadata = if needs_metadata { metadata() } else { None };
        if (rbac.expose_functions.iter())
            .any(|filter| filter.matches(function_id, metadata.as_ref()))
        {
            return Ok(());
        }
        Err(forbidden(function_id, "add to rbac.expose_functions"))
    }

    /// The workers this connection may share function ids and routes with.
    pub(crate) fn domain(&self) -> Domain {
        Domain {
            listener: Arc::as_ptr(&self.policy) as usize,
            prefix: (self.grant.function_registration_prefix.as_deref()).map(Arc::from),
        }
    }

    /// Whether this connection is under access rules (its listener has `rbac`).
    pub(crate) fn is_restricted(&self) -> bool {
        self.policy.rbac.is_some()
    }

    /// The id a function registered as `id` by this connection is known by.
    pub(crate) fn registered_id(&self, id: &str) -> String {
        match &self.grant.function_registration_prefix {
            Some(prefix) if !prefix.is_empty() => format!("{prefix}::{id}"),
            _ => id.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn session(rbac: Option<Rbac>, grant: Value) -> Session {
        let policy = Arc::new(ListenerPolicy {
            rbac,
            ..ListenerPolicy::default()
        });
        let grant = serde_json::from_value(grant).expect("valid grant");
        Session { policy, grant }
    }

    #[test]
    fn calls_resolve_in_the_documented_order() {
        let rbac = Rbac {
            expose_functions: serde_json::from_value(json!([
                "match(\"api::*\")",
                {"metadata": {"public": true}}
            ]))
            .expect("filters"),
            ..Rbac::default()
        };
        let s = session(
            Some(rbac),
            json!({"allowed_functions": ["secret::one"],
                   "forbidden_functions": ["api::admin", "engine::log::info"]}),
        );
        let none = || None;
        assert!(s.may_call("secret::one", none).is_ok(), "allowed by name");
        assert!(s.may_call("api::users", none).is_ok(), "exposed by id");
        let public = || Some(json!({"public": true}));
        assert!(
            s.may_call("other::fn", public).is_ok(),
            "exposed by metadata"
        );
        assert!(s.may_call("engine::channels::create", none).is_ok());
        let refused = s.may_call("api::admin", none).err();
        assert_eq!(refused.map(|e| e.code), Some(FORBIDDEN.to_string()));
        assert!(
            s.may_call("engine::log::info", none).is_err(),
            "forbidden beats infrastructure"
        );
        let hidden = s.may_call("other::fn", none).err().map(|e| e.message);
        assert_eq!(
            hidden.as_deref(),
            Some("function 'other::fn' not allowed (add to rbac.expose_functions)")
        );
        let open = Session::open(Arc::default());
        assert!(open.may_call("anything", none).is_ok());
    }

    #[test]
    fn a_prefix_is_joined_with_two_colons() {
        let s = session(None, json!({"function_registration_prefix": "tenant-a"}));
        assert_eq!(s.registered_id("echo"), "tenant-a::echo");
        let grant: Grant = serde_json::from_value(json!({})).expect("defaults");
        assert!(grant.allow_function_registration);
        assert!(!grant.allow_trigger_type_registration);
        assert_eq!(grant.context, json!({}));
    }
}
