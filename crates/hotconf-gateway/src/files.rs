//! The gateway's three files as plain serde types, read by the library's public serde path
//! ([`SerdeSchema::dir`](crate::SerdeSchema::dir)): the directory is one mapping from file stem
//! to document. Values with rules of their own are newtypes whose `Deserialize` reports a
//! [`Problem`] with [`Problem::into_de_error`]; no secret value is ever copied into one.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, Visitor};

use super::check_url;
use super::model::is_valid_name;
use super::rule::Rule;
use hotconf::secret::is_env_var_name;
use hotconf::secret::looks_like_key;
use hotconf::Problem;

/// The directory: each field is a file.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Files {
    pub agent_chains: BTreeMap<Name, Chain>,
    pub providers: BTreeMap<Name, ProviderDoc>,
    pub rate_limits: BTreeMap<Name, Limits>,
}

/// One provider's rate limits.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a mapping")]
pub(super) struct Limits {
    /// Requests per minute.
    pub rpm: Positive<u32>,
    /// Requests allowed at once after a quiet period.
    pub burst: Positive<u32>,
    /// Tokens per minute.
    pub tokens_per_minute: Positive<u64>,
}

/// One agent's chain: the provider tried first, then the fallbacks in order. Every provider named
/// must be defined and enabled in providers.yaml, and appear once per chain.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a mapping")]
pub(super) struct Chain {
    /// The provider tried first.
    pub primary: Text,
    /// The providers tried next, in order (default: none).
    #[serde(default)]
    pub fallbacks: Vec<Text>,
}

/// One provider the gateway can call. A provider without `api_key_env` is keyless (a local
/// server); never write a key in the file.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a mapping")]
pub(super) struct ProviderDoc {
    /// Whether the gateway may call this provider (default: true). An enabled provider whose
    /// `api_key_env` variable is unset is rejected.
    #[serde(default)]
    pub enabled: Flag,
    /// The NAME of the environment variable that holds the API key (never the key itself).
    pub api_key_env: Option<EnvName>,
    /// The model to request.
    pub model: Text,
    /// The API's base URL, `http://` or `https://`, without credentials.
    pub base_url: Url,
    /// Seconds a request may take (default: 30).
    pub timeout_seconds: Option<Seconds>,
    /// Seconds connecting may take (default: 10, at most `timeout_seconds`).
    pub connect_timeout_seconds: Option<Seconds>,
    /// Retries after a failed request (default: 2).
    pub max_retries: Option<Retries>,
}

fn problem<E: de::Error>(kind: Rule) -> E {
    Problem::from(kind).into_de_error()
}

/// A provider or agent name: letters, digits, `_`, `-`, `.`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Name(pub String);

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        if looks_like_key(&name) {
            return Err(problem(Rule::KeyShapedValue));
        }
        if !is_valid_name(&name) {
            return Err(problem(Rule::InvalidName));
        }
        Ok(Name(name))
    }
}

/// A non-empty string.
#[derive(Debug, Clone)]
pub(super) struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Text, E> {
                if s.is_empty() {
                    return Err(problem(Rule::EmptyString));
                }
                if looks_like_key(s) {
                    return Err(problem(Rule::KeyShapedValue));
                }
                Ok(Text(s.to_owned()))
            }
        }
        d.deserialize_string(V)
    }
}

/// `true` or `false` (default `true`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Flag(pub bool);

impl Default for Flag {
    fn default() -> Self {
        Flag(true)
    }
}

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Flag;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true or false")
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<Flag, E> {
                Ok(Flag(b))
            }
        }
        d.deserialize_bool(V)
    }
}

/// A positive integer that fits in `T`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Positive<T>(pub T);

impl<'de, T: TryFrom<u64> + 'static> Deserialize<'de> for Positive<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<T: TryFrom<u64>> Visitor<'_> for V<T> {
            type Value = Positive<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a positive integer")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Positive<T>, E> {
                if n == 0 {
                    return Err(problem(Rule::NotPositive { value: n.to_string() }));
                }
                T::try_from(n)
                    .map(Positive)
                    .map_err(|_| problem(Rule::OutOfRange { value: n.to_string(), range: "1 to 4294967295" }))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Positive<T>, E> {
                match u64::try_from(n) {
                    Ok(n) => self.visit_u64(n),
                    Err(_) => Err(problem(Rule::NotPositive { value: n.to_string() })),
                }
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A number of seconds, more than 0 and at most an hour.
#[derive(Debug, Clone, Copy)]
pub(super) struct Seconds(pub f64);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Seconds;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Seconds, E> {
                self.check(v, v.to_string())
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Seconds, E> {
                self.check(v as f64, v.to_string())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Seconds, E> {
                self.check(v as f64, v.to_string())
            }
        }
        impl V {
            fn check<E: de::Error>(self, v: f64, written: String) -> Result<Seconds, E> {
                if v > 0.0 && v <= 3600.0 {
                    return Ok(Seconds(v));
                }
                Err(problem(Rule::OutOfRange { value: written, range: "more than 0, at most 3600" }))
            }
        }
        d.deserialize_any(V)
    }
}

/// Retries: a whole number from 0 to 10.
#[derive(Debug, Clone, Copy)]
pub(super) struct Retries(pub u32);

impl<'de> Deserialize<'de> for Retries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Retries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Retries, E> {
                match v {
                    0..=10 => Ok(Retries(v as u32)),
                    _ => Err(problem(Rule::OutOfRange { value: v.to_string(), range: "0 to 10" })),
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Retries, E> {
                Err(problem(Rule::OutOfRange { value: v.to_string(), range: "0 to 10" }))
            }
        }
        d.deserialize_any(V)
    }
}

/// `api_key_env`: the name of an environment variable, never a key (neither is repeated).
#[derive(Debug, Clone)]
pub(super) struct EnvName(pub String);

impl<'de> Deserialize<'de> for EnvName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = EnvName;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("the name of an environment variable")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<EnvName, E> {
                if looks_like_key(s) {
                    Err(problem(Rule::KeyInEnvName))
                } else if is_env_var_name(s) {
                    Ok(EnvName(s.to_owned()))
                } else {
                    Err(problem(Rule::NotAnEnvVarName))
                }
            }
        }
        d.deserialize_str(V)
    }
}

/// A `base_url`: `http(s)://host…`, without credentials (never repeated).
#[derive(Debug, Clone)]
pub(super) struct Url(pub String);

impl<'de> Deserialize<'de> for Url {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Url;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Url, E> {
                if s.is_empty() {
                    return Err(problem(Rule::EmptyString));
                }
                check_url(s).map_err(problem)?;
                Ok(Url(s.to_owned()))
            }
        }
        d.deserialize_str(V)
    }
}
