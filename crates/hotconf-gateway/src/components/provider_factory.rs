//! The provider factory: the settings a new request to a provider uses, with its API key read
//! from the named environment variable when the version is applied.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::{EnvVarName, GatewayConfig, ProviderName};
use hotconf::EnvLookup;
use hotconf::{Component, Publication};

/// An API key. Its `Debug` and `Display` never show it; it is not `Serialize`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// The key, for the one place that needs it: the request's authorization header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// What a new request to one provider uses.
#[derive(Debug, Clone, Serialize)]
pub struct ProviderSettings {
    /// Whether requests may go to it.
    pub enabled: bool,
    /// The model.
    pub model: String,
    /// The base URL.
    pub base_url: String,
    /// The request timeout.
    #[serde(serialize_with = "secs")]
    pub timeout: Duration,
    /// The connect timeout.
    #[serde(serialize_with = "secs")]
    pub connect_timeout: Duration,
    /// Retries before falling back.
    pub max_retries: u32,
    /// The variable the key was read from.
    pub api_key_env: Option<EnvVarName>,
    /// The key; `None` for keyless providers.
    #[serde(skip)]
    pub api_key: Option<ApiKey>,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// The provider settings of one version.
#[derive(Debug, Default)]
pub struct ProviderTable {
    providers: BTreeMap<ProviderName, ProviderSettings>,
}

impl ProviderTable {
    /// The settings of `provider`.
    pub fn get(&self, provider: &str) -> Option<&ProviderSettings> {
        self.providers.get(provider)
    }

    /// All providers' settings.
    pub fn iter(&self) -> impl Iterator<Item = (&ProviderName, &ProviderSettings)> {
        self.providers.iter()
    }
}

/// The provider factory component.
pub struct ProviderFactory {
    env: Arc<dyn EnvLookup>,
}

impl ProviderFactory {
    /// A factory reading API keys through `env`.
    pub fn new(env: Arc<dyn EnvLookup>) -> Self {
        Self { env }
    }
}

impl fmt::Debug for ProviderFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderFactory").finish_non_exhaustive()
    }
}

impl ProviderFactory {
    /// The component's name (its thread is `hotconf-provider_factory`; its part is found under it).
    pub const NAME: &'static str = "provider_factory";
}

impl Component<GatewayConfig> for ProviderFactory {
    type Part = ProviderTable;

    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn build(&mut self, publication: &Publication<GatewayConfig>) -> ProviderTable {
        let providers = publication
            .config()
            .providers()
            .iter()
            .map(|(name, p)| {
                let api_key = p.api_key_env.as_ref().and_then(|var| self.env.var(var.as_str())).map(ApiKey);
                let settings = ProviderSettings {
                    enabled: p.enabled,
                    model: p.model.clone(),
                    base_url: p.base_url.clone(),
                    timeout: p.timeout,
                    connect_timeout: p.connect_timeout,
                    max_retries: p.max_retries,
                    api_key_env: p.api_key_env.clone(),
                    api_key,
                };
                (name.clone(), settings)
            })
            .collect();
        ProviderTable { providers }
    }
}
