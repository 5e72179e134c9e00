//! The credentials of an HTTP-invoked function: named by environment variables of the engine
//! (a worker never sends a secret), read once at registration, and added to each call.

use hmac::{KeyInit, Mac};
use hyper::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use iii_protocol::ErrorBody;
use iii_protocol::codes::CREDENTIALS_NOT_FOUND;
use iii_protocol::remote::{HEADER_SIGNATURE, HttpAuth};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// What authenticates each call.
pub(crate) enum Credentials {
    /// Nothing.
    None,
    /// Signs `<timestamp>:<base64 body>` with HMAC-SHA256 under this secret.
    Hmac(Vec<u8>),
    /// A header set to a fixed value (`Authorization: Bearer …`, or an API key).
    Header(HeaderName, HeaderValue),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret itself.
        f.write_str(match self {
            Self::None => "Credentials::None",
            Self::Hmac(_) => "Credentials::Hmac(..)",
            Self::Header(..) => "Credentials::Header(..)",
        })
    }
}

/// The value of `name`, if the operator allows it and it is set. A name the operator did not
/// allow gets the same code whether or not it is set, and nothing about its value, so a
/// worker learns nothing about the engine's environment.
fn variable(name: &str, allowed: &[String]) -> Result<String, ErrorBody> {
    if !allowed.iter().any(|allowed| allowed == name) {
        return Err(ErrorBody::new(
            CREDENTIALS_NOT_FOUND,
            format!(
                "{name} is not a credentials variable this engine offers (the operator names them with --http-functions-secret)"
            ),
        ));
    }
    std::env::var(name)
        .ok()
        .filter(|value| !value.is_empty())
        .ok_or_else(|| {
            ErrorBody::new(
                CREDENTIALS_NOT_FOUND,
                format!(
                    "the engine has no environment variable {name} for this function's credentials"
                ),
            )
        })
}

fn header_value(text: String, what: &str) -> Result<HeaderValue, ErrorBody> {
    HeaderValue::try_from(text).map_err(|_| {
        ErrorBody::new(
            CREDENTIALS_NOT_FOUND,
            format!("{what} is not a valid header value"),
        )
    })
}

impl Credentials {
    /// The credentials `auth` names, read from the engine's environment (only variables in
    /// `allowed`).
    pub(crate) fn from_env(auth: Option<&HttpAuth>, allowed: &[String]) -> Result<Self, ErrorBody> {
        Ok(match auth {
            None => Self::None,
            Some(HttpAuth::Hmac { secret_key }) => {
                Self::Hmac(variable(secret_key, allowed)?.into_bytes())
            }
            Some(HttpAuth::Bearer { token_key }) => {
                let token = variable(token_key, allowed)?;
                Self::Header(
                    AUTHORIZATION,
                    header_value(format!("Bearer {token}"), token_key)?,
                )
            }
            Some(HttpAuth::ApiKey { header, value_key }) => {
                let name = HeaderName::try_from(header.as_str()).map_err(|_| {
                    ErrorBody::new(
                        CREDENTIALS_NOT_FOUND,
                        format!("{header:?} is not a header name"),
                    )
                })?;
                Self::Header(
                    name,
                    header_value(variable(value_key, allowed)?, value_key)?,
                )
            }
        })
    }

    /// Adds the credentials of one call with `body`, made at `timestamp`, to `headers`.
    pub(crate) fn apply(&self, headers: &mut HeaderMap, timestamp: u64, body: &[u8]) {
        match self {
            Self::None => {}
            Self::Header(name, value) => {
                headers.insert(name.clone(), value.clone());
            }
            Self::Hmac(secret) => {
                let signature = sign(secret, timestamp, body);
                if let Ok(value) = HeaderValue::try_from(format!("sha256={signature}")) {
                    headers.insert(HEADER_SIGNATURE, value);
                }
            }
        }
    }
}

/// The hex HMAC-SHA256 of `<timestamp>:<base64 of body>` under `secret`.
pub(crate) fn sign(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    let mut mac = match HmacSha256::new_from_slice(secret) {
        Ok(mac) => mac,
        // HMAC takes keys of any length; this arm is unreachable in practice.
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b":");
    mac.update(data_encoding::BASE64.encode(body).as_bytes());
    data_encoding::HEXLOWER.encode(&mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_timestamp_and_base64_body() {
        // HMAC-SHA256("key", "1700000000:eyJhIjoxfQ==") computed independently (openssl dgst).
        let signature = sign(b"key", 1_700_000_000, br#"{"a":1}"#);
        let expected = "12c21de6971f809b9f830f96f7506d00fa091d9f69b21d1136ec1da4285ac199";
        assert_eq!(signature, expected);
        assert_ne!(signature, sign(b"key", 1_700_000_001, br#"{"a":1}"#));
        assert_ne!(signature, sign(b"other", 1_700_000_000, br#"{"a":1}"#));
    }

    #[test]
    fn only_allowed_variables_are_read_and_a_missing_one_is_a_clear_error() {
        let name = "III_TEST_SURELY_UNSET_VARIABLE".to_string();
        let auth = HttpAuth::Bearer {
            token_key: name.clone(),
        };
        let error =
            Credentials::from_env(Some(&auth), std::slice::from_ref(&name)).expect_err("unset");
        assert_eq!(error.code, CREDENTIALS_NOT_FOUND);
        assert!(
            error.message.contains("no environment variable"),
            "{}",
            error.message
        );
        // PATH is set, but not allowed: the same code, and nothing about whether it is set.
        let path = HttpAuth::Bearer {
            token_key: "PATH".into(),
        };
        let error = Credentials::from_env(Some(&path), &[name]).expect_err("not allowed");
        assert_eq!(error.code, CREDENTIALS_NOT_FOUND);
        assert!(
            error.message.contains("--http-functions-secret"),
            "{}",
            error.message
        );
    }
}
