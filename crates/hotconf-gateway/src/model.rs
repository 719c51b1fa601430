//! The gateway's typed config. Only the validator builds these; their fields cannot hold bad
//! values (zero limits, unnamed providers, inline keys).

use std::collections::BTreeMap;
use std::fmt;
use std::num::{NonZeroU32, NonZeroU64};
use std::time::Duration;

use serde::Serialize;

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub(crate) fn new_unchecked(s: &str) -> Self {
                Self(s.to_owned())
            }

            /// The name.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

name_type!(
    /// A provider's name, e.g. `groq`: letters, digits, `_`, `-`, `.`.
    ProviderName
);
name_type!(
    /// An agent's name, e.g. `mary`: letters, digits, `_`, `-`, `.`.
    AgentName
);
name_type!(
    /// The name of an environment variable (`A-Z`, `0-9`, `_`, not starting with a digit).
    EnvVarName
);

/// Whether `s` is a valid provider or agent name.
pub(crate) fn is_valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

/// One provider's rate limits (`rate_limits.yaml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RateLimit {
    /// Requests per minute.
    pub rpm: NonZeroU32,
    /// Requests that may be made at once after a quiet period.
    pub burst: NonZeroU32,
    /// Tokens per minute.
    pub tokens_per_minute: NonZeroU64,
}

/// One agent's provider chain (`agent_chains.yaml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentChain {
    /// Tried first.
    pub primary: ProviderName,
    /// Tried in order when the ones before fail.
    pub fallbacks: Vec<ProviderName>,
}

impl AgentChain {
    /// The primary, then the fallbacks.
    pub fn order(&self) -> impl Iterator<Item = &ProviderName> {
        std::iter::once(&self.primary).chain(&self.fallbacks)
    }
}

/// One provider's settings (`providers.yaml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Provider {
    /// Whether requests may go to it.
    pub enabled: bool,
    /// The environment variable holding its API key; `None` for keyless providers (local servers).
    pub api_key_env: Option<EnvVarName>,
    /// The model requested.
    pub model: String,
    /// The API's base URL, `http(s)://…`, without credentials.
    pub base_url: String,
    /// The whole request's timeout (`timeout_seconds` in the file, and when serialized).
    #[serde(rename = "timeout_seconds", serialize_with = "seconds")]
    pub timeout: Duration,
    /// The connection timeout, at most `timeout` (`connect_timeout_seconds` in the file).
    #[serde(rename = "connect_timeout_seconds", serialize_with = "seconds")]
    pub connect_timeout: Duration,
    /// Retries after a failed request before falling back.
    pub max_retries: u32,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// The whole gateway config: the three files, validated together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GatewayConfig {
    pub(super) rate_limits: BTreeMap<ProviderName, RateLimit>,
    pub(super) agent_chains: BTreeMap<AgentName, AgentChain>,
    pub(super) providers: BTreeMap<ProviderName, Provider>,
}

impl GatewayConfig {
    /// Rate limits by provider. A provider with no entry is not limited.
    pub fn rate_limits(&self) -> &BTreeMap<ProviderName, RateLimit> {
        &self.rate_limits
    }

    /// Chains by agent.
    pub fn agent_chains(&self) -> &BTreeMap<AgentName, AgentChain> {
        &self.agent_chains
    }

    /// Providers by name.
    pub fn providers(&self) -> &BTreeMap<ProviderName, Provider> {
        &self.providers
    }
}
