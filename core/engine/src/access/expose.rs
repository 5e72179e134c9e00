//! `expose_functions` filters, as the published engine's configuration writes them: a string
//! `match("glob")` on the function id, or `{metadata: {key: value | match("glob")}}` on what
//! the function was registered with. A list of them is a union: a function any filter matches
//! is exposed.

use serde::Deserialize;
use serde_json::Value;

/// One `expose_functions` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExposeFilter {
    /// `match("api::*")`: the function id matches the glob.
    Id(Glob),
    /// `metadata: {public: true}`: every key is present in the function's metadata with that
    /// exact value (or a string matching `match("…")`).
    Metadata(Vec<(String, ValueMatch)>),
}

/// What one metadata key must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueMatch {
    /// Exactly this JSON value (`true` is not `"true"`).
    Exact(Value),
    /// A string matching the glob.
    Glob(Glob),
}

/// A glob where `*` stands for any run of characters (none too); anchored at both ends and
/// case-sensitive, as the published engine matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob(String);

impl Glob {
    /// The glob `pattern`.
    pub fn new(pattern: impl Into<String>) -> Self {
        Self(pattern.into())
    }

    /// Whether `text` matches as a whole.
    pub fn matches(&self, text: &str) -> bool {
        let mut parts = self.0.split('*');
        let first = parts.next().unwrap_or_default();
        let Some(mut rest) = text.strip_prefix(first) else {
            return false;
        };
        let middle: Vec<&str> = parts.collect();
        let Some((last, middle)) = middle.split_last() else {
            return rest.is_empty();
        };
        for part in middle {
            match rest.find(part) {
                Some(at) => rest = rest.get(at + part.len()..).unwrap_or_default(),
                None => return false,
            }
        }
        rest.len() >= last.len() && rest.ends_with(last)
    }
}

/// Reads `match("glob")` (or with single quotes), or None.
fn parse_match(text: &str) -> Option<Glob> {
    let inner = text
        .trim()
        .strip_prefix("match(")?
        .strip_suffix(')')?
        .trim();
    let unquoted = (inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
        .or_else(|| inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))?;
    Some(Glob::new(unquoted))
}

impl ExposeFilter {
    /// Whether the function `id`, registered with `metadata`, passes this filter.
    pub fn matches(&self, id: &str, metadata: Option<&Value>) -> bool {
        match self {
            Self::Id(glob) => glob.matches(id),
            Self::Metadata(wanted) => {
                let Some(Value::Object(have)) = metadata else {
                    return false;
                };
                wanted
                    .iter()
                    .all(|(key, want)| match (have.get(key), want) {
                        (Some(value), ValueMatch::Exact(exact)) => value == exact,
                        (Some(Value::String(value)), ValueMatch::Glob(glob)) => glob.matches(value),
                        _ => false,
                    })
            }
        }
    }
}

/// The written forms, before they are checked.
#[derive(Deserialize)]
#[serde(untagged)]
enum Written {
    Text(String),
    Object(WrittenObject),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WrittenObject {
    #[serde(rename = "match")]
    glob: Option<String>,
    metadata: Option<serde_json::Map<String, Value>>,
}

impl<'de> Deserialize<'de> for ExposeFilter {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match Written::deserialize(deserializer)? {
            Written::Text(text) => parse_match(&text).map(Self::Id).ok_or_else(|| {
                D::Error::custom(format!("expected match(\"pattern\"), got: {text}"))
            }),
            Written::Object(WrittenObject {
                glob: Some(glob),
                metadata: None,
            }) => Ok(Self::Id(Glob::new(glob))),
            Written::Object(WrittenObject {
                glob: None,
                metadata: Some(map),
            }) => Ok(Self::Metadata(
                map.into_iter()
                    .map(|(key, value)| {
                        let matcher = match value.as_str().and_then(parse_match) {
                            Some(glob) => ValueMatch::Glob(glob),
                            None => ValueMatch::Exact(value),
                        };
                        (key, matcher)
                    })
                    .collect(),
            )),
            Written::Object(_) => Err(D::Error::custom(
                "an expose_functions entry is match(\"pattern\") or has exactly one of `match` and `metadata`",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn globs_are_anchored_and_star_spans_anything() {
        let cases = [
            ("api::*", "api::users", true),
            ("api::*", "api::", true),
            ("api::*", "xapi::users", false),
            ("*::public", "a::b::public", true),
            ("*::public", "a::public::x", false),
            ("*", "", true),
            ("a*b*c", "abc", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "acb", false),
            ("ab*ba", "aba", false),
            ("exact", "exact", true),
            ("exact", "Exact", false),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(
                Glob::new(pattern).matches(text),
                expected,
                "{pattern} ~ {text}"
            );
        }
    }

    #[test]
    fn filters_read_the_published_forms() {
        let filters: Vec<ExposeFilter> = serde_json::from_value(json!([
            "match(\"api::*\")",
            "match('*::public')",
            {"metadata": {"public": true, "tier": "match(\"gold*\")"}},
            {"match": "raw::*"},
        ]))
        .expect("valid filters");
        let exposed =
            |id: &str, metadata: Value| filters.iter().any(|f| f.matches(id, Some(&metadata)));
        assert!(exposed("api::list", Value::Null));
        assert!(exposed("x::public", Value::Null));
        assert!(exposed("raw::y", Value::Null));
        assert!(exposed("other", json!({"public": true, "tier": "golden"})));
        assert!(!exposed(
            "other",
            json!({"public": "true", "tier": "golden"})
        ));
        assert!(!exposed("other", json!({"public": true})));
        assert!(!exposed("other", Value::Null));
        for bad in [
            json!("api::*"),
            json!({"match": "a", "metadata": {}}),
            json!({"nope": 1}),
        ] {
            assert!(
                serde_json::from_value::<ExposeFilter>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }
}
