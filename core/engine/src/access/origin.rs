//! Browser checks on every upgrade (worker, telemetry and channel sockets). A web page can
//! open a WebSocket to any address, including the engine on a developer's machine; browsers
//! say which page asks in `Origin`, which no SDK sends. So an upgrade carrying an `Origin`
//! the listener does not allow is refused (403). And while the listener is on a loopback
//! address, a `Host` that is not a loopback name is refused (403) too: that is a page on some
//! domain that re-pointed its DNS at 127.0.0.1 (DNS rebinding).

use std::net::IpAddr;

use hyper::StatusCode;
use iii_protocol::codes::FORBIDDEN;

use super::ListenerPolicy;
use super::auth::{Refusal, UpgradeHead};

/// Refuses `head` when a browser page sent it from an origin `policy` does not allow, or,
/// on a loopback listener, when its `Host` names anything but this machine.
pub(crate) fn check(
    policy: &ListenerPolicy,
    loopback: bool,
    head: &UpgradeHead,
) -> Result<(), Refusal> {
    check_headers(policy, loopback, |name| head.header(name))
}

/// [`check`] for a request whose headers `header` finds by lower-case name (the plain HTTP
/// requests of `/metrics` and `/status`).
pub(crate) fn check_headers<'h>(
    policy: &ListenerPolicy,
    loopback: bool,
    header: impl Fn(&str) -> Option<&'h str>,
) -> Result<(), Refusal> {
    if let Some(origin) = header("origin")
        && !origin_allowed(&policy.allowed_origins, origin)
    {
        let why = format!(
            "origin {origin} may not open sockets here (allow it with allowed_origins / --allow-origin)"
        );
        return Err(Refusal::new(StatusCode::FORBIDDEN, FORBIDDEN, why));
    }
    if loopback
        && let Some(host) = header("host")
        && !is_loopback_host(host)
    {
        let why = format!(
            "host {host} is not this machine's loopback name: the engine listens on loopback only"
        );
        return Err(Refusal::new(StatusCode::FORBIDDEN, FORBIDDEN, why));
    }
    Ok(())
}

/// Refuses a `/metrics` or `/status` request on a listener bound to a non-loopback address
/// whose `Host` is neither an IP address, a loopback name, nor one of the listener's allowed
/// hosts: a browser page that re-pointed its DNS name at the engine sends a same-origin
/// request (no `Origin`), which only its `Host` gives away. (On a loopback listener
/// [`check_headers`] holds every request to loopback names.)
pub(crate) fn check_observer_host(
    policy: &ListenerPolicy,
    host: Option<&str>,
) -> Result<(), Refusal> {
    let Some(host) = host else { return Ok(()) };
    let name = host_name(host);
    let allowed = is_loopback_host(host)
        || name.parse::<IpAddr>().is_ok()
        || (policy.allowed_hosts.iter()).any(|known| known == "*" || host_name(known) == name);
    if allowed {
        return Ok(());
    }
    let why = format!(
        "host {host} is not an address of this engine: allow it with allowed_hosts / --allow-host"
    );
    Err(Refusal::new(StatusCode::FORBIDDEN, FORBIDDEN, why))
}

/// The name of a `Host` header (`name[:port]`, `[v6][:port]`), lower case, without a final dot.
fn host_name(host: &str) -> String {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether `origin` is in `allowed` (exactly, ignoring case and a trailing `/`), or `allowed`
/// holds `*`.
fn origin_allowed(allowed: &[String], origin: &str) -> bool {
    let origin = origin.trim_end_matches('/');
    allowed
        .iter()
        .any(|one| one == "*" || one.trim_end_matches('/').eq_ignore_ascii_case(origin))
}

/// Whether a `Host` header (`name[:port]`, `[v6][:port]`) names this machine.
fn is_loopback_host(host: &str) -> bool {
    let name = host_name(host);
    name == "localhost"
        || name.ends_with(".localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observers_must_name_the_engine_by_address_or_an_allowed_name() {
        let open = ListenerPolicy::default();
        for fine in [
            None,
            Some("10.0.0.5:49134"),
            Some("[::1]:1"),
            Some("localhost"),
        ] {
            assert!(check_observer_host(&open, fine).is_ok(), "{fine:?}");
        }
        assert!(check_observer_host(&open, Some("evil.example:49134")).is_err());
        let named = ListenerPolicy {
            allowed_hosts: vec!["engine.internal".into()],
            ..ListenerPolicy::default()
        };
        assert!(check_observer_host(&named, Some("Engine.Internal.:49134")).is_ok());
        let with_port = ListenerPolicy {
            allowed_hosts: vec!["iii:49134".into()],
            ..ListenerPolicy::default()
        };
        assert!(check_observer_host(&with_port, Some("iii:49134")).is_ok());
        let any = ListenerPolicy {
            allowed_hosts: vec!["*".into()],
            ..ListenerPolicy::default()
        };
        assert!(check_observer_host(&any, Some("evil.example")).is_ok());
    }

    fn head(lines: &str) -> UpgradeHead {
        let raw = format!("GET / HTTP/1.1\r\n{lines}\r\n");
        UpgradeHead::parse(raw.as_bytes()).expect("a head")
    }

    #[test]
    fn origins_are_refused_unless_allowed() {
        let open = ListenerPolicy::default();
        assert!(check(&open, true, &head("Host: 127.0.0.1:1\r\n")).is_ok());
        let evil = head("Host: 127.0.0.1:1\r\nOrigin: https://evil.example\r\n");
        let refused = check(&open, true, &evil).err();
        assert_eq!(refused.map(|r| r.status), Some(StatusCode::FORBIDDEN));
        let allowing = ListenerPolicy {
            allowed_origins: vec!["https://EVIL.example/".into()],
            ..ListenerPolicy::default()
        };
        assert!(check(&allowing, true, &evil).is_ok());
    }

    #[test]
    fn a_loopback_listener_takes_only_loopback_hosts() {
        let policy = ListenerPolicy::default();
        for host in [
            "localhost:1",
            "127.0.0.1:1",
            "[::1]:1",
            "127.1.2.3",
            "a.localhost",
            "LOCALHOST.",
        ] {
            assert!(
                check(&policy, true, &head(&format!("Host: {host}\r\n"))).is_ok(),
                "{host}"
            );
        }
        for host in [
            "evil.example",
            "evil.example:49134",
            "10.0.0.1",
            "[::2]:1",
            "localhost.evil.example",
        ] {
            let line = format!("Host: {host}\r\n");
            assert!(check(&policy, true, &head(&line)).is_err(), "{host}");
            assert!(
                check(&policy, false, &head(&line)).is_ok(),
                "{host} on a public listener"
            );
        }
    }
}
