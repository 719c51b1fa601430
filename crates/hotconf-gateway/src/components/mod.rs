//! The LLM gateway's live components and the view a request reads them through.
//!
//! Each component runs on its own thread and builds its part of a version; the runtime swaps in
//! the assembled [`GatewayView`] in one atomic store once all three acknowledged. A request loads
//! the view once and reads everything from it, so it never mixes two versions.

mod orchestrator;
mod provider_factory;
mod rate_limiter;

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

pub use orchestrator::{Orchestrator, RouteTable};
pub use provider_factory::{ApiKey, ProviderFactory, ProviderSettings, ProviderTable};
pub use rate_limiter::{Bucket, Decision, LimiterTable, RateLimiters};

use crate::GatewayConfig;
use hotconf::publish::{ApplyError, ComponentHandle, Publication, Sink};
use hotconf::EnvLookup;

/// Everything a request needs, for one version.
#[derive(Debug)]
pub struct GatewayView {
    /// The publication this view was built from.
    pub publication: Arc<Publication<GatewayConfig>>,
    /// The rate limiters.
    pub limiters: LimiterTable,
    /// The agent routes.
    pub routes: RouteTable,
    /// The provider settings.
    pub providers: ProviderTable,
}

impl GatewayView {
    /// The version.
    pub fn version(&self) -> u64 {
        self.publication.version()
    }

    /// The limiter's decision for one request of `tokens` tokens to `provider`, now.
    pub fn acquire(&self, provider: &str, tokens: u64) -> Decision {
        self.limiters.acquire(provider, tokens, Instant::now())
    }
}

/// The request side: a cheap, cloneable handle to the live view.
#[derive(Debug, Clone, Default)]
pub struct Gateway {
    live: Arc<ArcSwapOption<GatewayView>>,
}

impl Gateway {
    /// The live view, or `None` before the first version is applied. One atomic load; never blocks.
    pub fn view(&self) -> Option<Arc<GatewayView>> {
        self.live.load_full()
    }
}

/// Default time a component has to acknowledge a version.
pub const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_secs(2);

/// The gateway's components, each on its thread, and the live view they make.
#[derive(Debug)]
pub struct GatewayRuntime {
    limiters: ComponentHandle<GatewayConfig, LimiterTable>,
    orchestrator: ComponentHandle<GatewayConfig, RouteTable>,
    factory: ComponentHandle<GatewayConfig, ProviderTable>,
    gateway: Gateway,
    ack_timeout: Duration,
}

impl GatewayRuntime {
    /// Starts the three components; API keys are read through `env`.
    pub fn spawn(env: Arc<dyn EnvLookup>) -> std::io::Result<Self> {
        Ok(Self {
            limiters: ComponentHandle::spawn(RateLimiters::default())?,
            orchestrator: ComponentHandle::spawn(Orchestrator)?,
            factory: ComponentHandle::spawn(ProviderFactory::new(env))?,
            gateway: Gateway::default(),
            ack_timeout: DEFAULT_ACK_TIMEOUT,
        })
    }

    /// This runtime with another acknowledgement timeout.
    #[must_use]
    pub fn with_ack_timeout(mut self, timeout: Duration) -> Self {
        self.ack_timeout = timeout;
        self
    }

    /// The request-side handle.
    pub fn gateway(&self) -> Gateway {
        self.gateway.clone()
    }
}

impl Sink<GatewayConfig> for GatewayRuntime {
    fn apply(&mut self, publication: Arc<Publication<GatewayConfig>>) -> Result<(), ApplyError> {
        let version = publication.version();
        let deadline = Instant::now() + self.ack_timeout;
        let budget = self.ack_timeout;
        // Send to all three first so they build in parallel, then collect.
        let l = self.limiters.request(Arc::clone(&publication))?;
        let o = self.orchestrator.request(Arc::clone(&publication))?;
        let f = self.factory.request(Arc::clone(&publication))?;
        let limiters = self.limiters.wait(&l, version, deadline, budget);
        let routes = self.orchestrator.wait(&o, version, deadline, budget);
        let providers = self.factory.wait(&f, version, deadline, budget);
        let view = GatewayView { publication, limiters: limiters?, routes: routes?, providers: providers? };
        self.gateway.live.store(Some(Arc::new(view)));
        for c in [&self.limiters.name(), &self.orchestrator.name(), &self.factory.name()] {
            tracing::debug!(event = "component.applied", component = c, version);
        }
        self.limiters.mark_applied(version);
        self.orchestrator.mark_applied(version);
        self.factory.mark_applied(version);
        Ok(())
    }

    fn applied_versions(&self) -> Vec<(&'static str, Option<u64>)> {
        vec![
            (self.limiters.name(), self.limiters.applied()),
            (self.orchestrator.name(), self.orchestrator.applied()),
            (self.factory.name(), self.factory.applied()),
        ]
    }
}
