//! Components: the live parts of a service that a publication reconfigures. The shipped ones are
//! the LLM gateway's rate limiters, agent orchestrator and provider factory. Components never read
//! files and never see an unvalidated config: they only receive publications.

pub mod gateway;
