//! The agent orchestrator: for each agent, the order of providers a request tries.

use std::collections::BTreeMap;

use crate::{AgentName, GatewayConfig, ProviderName};
use hotconf::{Component, Publication};

/// The routes of one version: agent → providers to try, in order, enabled ones only.
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: BTreeMap<AgentName, Vec<ProviderName>>,
}

impl RouteTable {
    /// The providers `agent` tries, in order; `None` for an unknown agent.
    pub fn route(&self, agent: &str) -> Option<&[ProviderName]> {
        self.routes.get(agent).map(Vec::as_slice)
    }

    /// The agents.
    pub fn agents(&self) -> impl Iterator<Item = &AgentName> {
        self.routes.keys()
    }
}

/// The orchestrator component.
#[derive(Debug, Default)]
pub struct Orchestrator;

impl Orchestrator {
    /// The component's name (its thread is `hotconf-orchestrator`; its part is found under it).
    pub const NAME: &'static str = "orchestrator";
}

impl Component<GatewayConfig> for Orchestrator {
    type Part = RouteTable;

    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn build(&mut self, publication: &Publication<GatewayConfig>) -> RouteTable {
        let config = publication.config();
        let enabled = |p: &&ProviderName| config.providers().get(*p).is_some_and(|p| p.enabled);
        let routes = config
            .agent_chains()
            .iter()
            .map(|(agent, chain)| (agent.clone(), chain.order().filter(enabled).cloned().collect()))
            .collect();
        RouteTable { routes }
    }
}
