//! The LLM gateway's live components and the view a request reads them through.
//!
//! Each component is an ordinary [`hotconf::Component`]: it runs on its own thread and builds
//! its part of a version; the library's one sink swaps the version in, parts attached, once all
//! three acknowledged. A request takes one [`GatewayView`] and reads everything from it, so it
//! never mixes two versions.

mod orchestrator;
mod provider_factory;
mod rate_limiter;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use hotconf::{EnvLookup, Hotconf, Live, Publication};

pub use orchestrator::{Orchestrator, RouteTable};
pub use provider_factory::{ApiKey, ProviderFactory, ProviderSettings, ProviderTable};
pub use rate_limiter::{Bucket, Decision, LimiterTable, RateLimiters};

use crate::{GatewayConfig, GatewaySchema};

/// The gateway's pipeline builder: its schema over the files in `dir` and its three components
/// (API keys read through `env`). The caller adds options and observers, then starts it:
///
/// ```no_run
/// use std::sync::Arc;
/// let live = hotconf_gateway::components::pipeline("config", Arc::new(hotconf::ProcessEnv)).start()?;
/// let view = hotconf_gateway::components::GatewayView::of(&live).expect("the components' parts");
/// println!("version {} routes mary to {:?}", view.version(), view.routes().route("mary"));
/// # Ok::<(), hotconf::StartError>(())
/// ```
pub fn pipeline(dir: impl Into<PathBuf>, env: Arc<dyn EnvLookup>) -> Hotconf<GatewayConfig, GatewaySchema> {
    Hotconf::with_schema(dir, GatewaySchema::default())
        .with_env(Arc::clone(&env))
        .with_component(RateLimiters::default())
        .with_component(Orchestrator)
        .with_component(ProviderFactory::new(env))
}

/// Everything a request needs, for one version: the publication and the three components'
/// parts built for it. A request takes one view and reads everything from it, so it never
/// mixes two versions.
#[derive(Debug, Clone)]
pub struct GatewayView {
    publication: Arc<Publication<GatewayConfig>>,
}

impl GatewayView {
    /// The live version's view, or `None` if `live` was not built with [`pipeline`]'s
    /// components. One atomic load; never blocks.
    pub fn of(live: &Live<GatewayConfig>) -> Option<Self> {
        Self::from_publication(live.publication())
    }

    /// The view of `publication`, once its components' parts are attached (it is live).
    pub fn from_publication(publication: Arc<Publication<GatewayConfig>>) -> Option<Self> {
        let whole = publication.part::<LimiterTable>(RateLimiters::NAME).is_some()
            && publication.part::<RouteTable>(Orchestrator::NAME).is_some()
            && publication.part::<ProviderTable>(ProviderFactory::NAME).is_some();
        whole.then_some(Self { publication })
    }

    /// The version.
    pub fn version(&self) -> u64 {
        self.publication.version()
    }

    /// The publication this view was built from (its config, hash and version).
    pub fn publication(&self) -> &Publication<GatewayConfig> {
        &self.publication
    }

    /// The rate limiters.
    pub fn limiters(&self) -> &LimiterTable {
        self.publication.part(RateLimiters::NAME).expect("checked when the view was made")
    }

    /// The agent routes.
    pub fn routes(&self) -> &RouteTable {
        self.publication.part(Orchestrator::NAME).expect("checked when the view was made")
    }

    /// The provider settings.
    pub fn providers(&self) -> &ProviderTable {
        self.publication.part(ProviderFactory::NAME).expect("checked when the view was made")
    }

    /// The limiter's decision for one request of `tokens` tokens to `provider`, now.
    pub fn acquire(&self, provider: &str, tokens: u64) -> Decision {
        self.limiters().acquire(provider, tokens, Instant::now())
    }
}
