//! hotconf's reference service: an LLM gateway's `rate_limits.yaml`, `agent_chains.yaml` and
//! `providers.yaml`, validated together into one [`GatewayConfig`] ([`GatewaySchema`]), and the
//! live [`components`] a version is applied to (rate limiters, agent orchestrator, provider
//! factory).
//!
//! Written on the `hotconf` library's public API only, as any user's service is: this crate
//! depends on `hotconf` like any other, so the compiler proves it needs nothing private. Plain
//! serde types for the three files (`files.rs`), read with [`SerdeSchema::dir`] (so unknown,
//! missing and conflicting files come from the generic path), and the cross-file rules in
//! `rule.rs`, reported through [`Problems`] with [`Problem`]s.
#![deny(missing_docs)]

pub mod components;

mod files;
#[cfg(feature = "schema")]
mod json_schema;
mod model;
mod rule;

use std::collections::{BTreeMap, BTreeSet};
use std::num::{NonZeroU32, NonZeroU64};
use std::time::Duration;

pub use model::{AgentChain, AgentName, EnvVarName, GatewayConfig, Provider, ProviderName, RateLimit};

use files::Files;
use hotconf::secret::{classify_key, holds_secret, KeyClass};
use hotconf::EnvLookup;
use hotconf::Sources;
use hotconf::Validated;
use hotconf::YamlPath;
use hotconf::{DiagnosticKind, Diagnostics, Problem, Problems, Schema, Segment, SerdeSchema};
use rule::Rule;

/// The rate limits file's stem.
pub const RATE_LIMITS: &str = "rate_limits";
/// The agent chains file's stem.
pub const AGENT_CHAINS: &str = "agent_chains";
/// The providers file's stem.
pub const PROVIDERS: &str = "providers";
const STEMS: [&str; 3] = [AGENT_CHAINS, PROVIDERS, RATE_LIMITS];

/// Default request timeout when `timeout_seconds` is absent.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default connect timeout when `connect_timeout_seconds` is absent (capped at the timeout).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default `max_retries`.
pub const DEFAULT_MAX_RETRIES: u32 = 2;

/// The gateway schema.
#[derive(Debug, Clone)]
pub struct GatewaySchema {
    /// The library's serde path over the three files, with the gateway's rules: built once, so
    /// the files a reload did not change are not parsed again (the schema keeps their documents).
    serde: SerdeSchema<Files>,
}

impl Default for GatewaySchema {
    fn default() -> Self {
        Self::with_cap(Sources::DEFAULT_MAX_FILE_BYTES)
    }
}

impl GatewaySchema {
    /// This schema with another per-file size cap.
    #[must_use]
    pub fn with_max_file_bytes(self, max: u64) -> Self {
        Self::with_cap(max)
    }

    fn with_cap(max_file_bytes: u64) -> Self {
        Self { serde: SerdeSchema::dir().with_max_file_bytes(max_file_bytes).with_partial_check(rules) }
    }

    /// The file names this schema reads.
    pub fn file_names() -> Vec<String> {
        STEMS.iter().map(|s| format!("{s}.yaml")).collect()
    }

    /// Each file's JSON Schema (draft 2020-12), keyed by file name (`rate_limits.yaml`, …),
    /// generated from the types that validate it: for editors, which check and complete as one
    /// types (`hotconf schema` prints them). A schema checks one file on its own: the cross-file
    /// rules (a chain naming an unknown provider) and the checks needing
    /// the environment are validation's alone.
    #[cfg(feature = "schema")]
    pub fn json_schemas() -> BTreeMap<String, serde_json::Value> {
        json_schema::documents()
    }
}

impl Schema for GatewaySchema {
    type Config = GatewayConfig;

    fn validate(&self, sources: &Sources, env: &dyn EnvLookup) -> Result<GatewayConfig, Diagnostics> {
        let files = self.serde.validate(sources, env).map_err(refuse_inline_secrets)?;
        Ok(config(files))
    }

    fn summary(&self, config: &GatewayConfig) -> String {
        let enabled = config.providers.values().filter(|p| p.enabled).count();
        format!(
            "{} providers ({enabled} enabled), {} agents, {} rate limits",
            config.providers.len(),
            config.agent_chains.len(),
            config.rate_limits.len()
        )
    }
}

/// Turns each unknown key of a provider that names a secret (the keys whose values the diff and
/// audit log redact, in any case and spelling: `api_key`, `API_KEY`, `apiKey`, `token`,
/// `client_secret`; never a field of a provider, so never offered as a known key) into an inline secret (at the same place: the value was never read,
/// and is not repeated).
fn refuse_inline_secrets(diagnostics: Diagnostics) -> Diagnostics {
    let mut list = diagnostics.into_vec();
    for d in &mut list {
        if d.file != format!("{PROVIDERS}.yaml") || d.kind.code() != "unknown-key" {
            continue;
        }
        let Some(path) = d.path.as_deref().map(YamlPath::parse) else { continue };
        if let [Segment::Key(_), Segment::Key(key)] = path.segments() {
            if classify_key(key) == KeyClass::Secret {
                d.kind = DiagnosticKind::Custom(Box::new(Rule::InlineSecret { key: key.clone() }.into()));
            }
        }
    }
    Diagnostics::new(list)
}

/// The connect timeout a provider gets: as written, or the default capped at its timeout.
fn timeouts(p: &files::ProviderDoc) -> (Duration, Duration) {
    let timeout = p.timeout_seconds.map_or(DEFAULT_TIMEOUT, |s| Duration::from_secs_f64(s.0));
    let connect =
        p.connect_timeout_seconds.map_or(timeout.min(DEFAULT_CONNECT_TIMEOUT), |s| Duration::from_secs_f64(s.0));
    (timeout, connect)
}

/// The rules serde cannot express, across the three files: written as any user writes theirs.
/// They also run when some values failed (listed beside those problems, as a person fixing the
/// files wants), and then judge nothing that depends on a value that failed.
fn rules(files: &Files, cx: &mut Problems<'_>) {
    let at = |file: &str, name: &str| YamlPath::root().key(file).key(name);
    // Every provider's entry and whether it is enabled are as written: a name missing from the
    // map is really undefined.
    let providers_clean = cx.is_clean(&YamlPath::root().key(PROVIDERS));
    for (name, p) in &files.providers {
        let path = at(PROVIDERS, &name.0);
        if let Some(var) = &p.api_key_env {
            if p.enabled.0 && cx.is_clean(&path.key("enabled")) && !cx.env().is_set(&var.0) {
                cx.report_at(path.key("api_key_env"), Rule::MissingEnvVar { var: var.0.clone() }.into());
            }
        }
        let (timeout, connect) = timeouts(p);
        let timeout_clean = cx.is_clean(&path.key("timeout_seconds"));
        if let (Some(written), true) = (p.connect_timeout_seconds, connect > timeout && timeout_clean) {
            let kind = Rule::OutOfRange { value: written.0.to_string(), range: "at most timeout_seconds" };
            cx.report_at(path.key("connect_timeout_seconds"), kind.into());
        }
    }
    for name in files.rate_limits.keys() {
        if providers_clean && !files.providers.contains_key(name) {
            let kind = Rule::LimitsForUnknownProvider { name: name.0.clone() };
            cx.report_at(at(RATE_LIMITS, &name.0), kind.into());
        }
    }
    // Suggestions for unknown providers through an index built once, whose work is bounded
    // (`Suggestions::MAX_COMPARED` names a lookup, `MAX_LOOKUPS` lookups): linear in the bundle.
    let suggestions = hotconf::Suggestions::new(files.providers.keys().map(|n| n.0.as_str()));
    // Named in every unknown-provider problem: built once, and short whatever the file holds.
    let mut known: Vec<String> = files.providers.keys().take(10).map(|n| n.0.clone()).collect();
    if files.providers.len() > known.len() {
        known.push("…".to_owned());
    }
    for (agent, chain) in &files.agent_chains {
        let path = at(AGENT_CHAINS, &agent.0);
        let fallbacks = chain.fallbacks.iter().enumerate().map(|(i, f)| (path.key("fallbacks").index(i), f));
        let mut seen = BTreeSet::new();
        for (p, provider) in std::iter::once((path.key("primary"), &chain.primary)).chain(fallbacks) {
            let name = provider.0.as_str();
            if !seen.insert(name) {
                cx.report_at(p.clone(), Rule::RepeatedInChain { name: name.to_owned() }.into());
            }
            let kind = match files.providers.get(&files::Name(name.to_owned())) {
                None if providers_clean => match suggestions.closest(name) {
                    Some(s) => Rule::UnknownProvider {
                        name: name.to_owned(),
                        suggestion: Some(s.to_owned()),
                        known: Vec::new(),
                    },
                    None => Rule::UnknownProvider { name: name.to_owned(), suggestion: None, known: known.clone() },
                },
                Some(defined) if !defined.enabled.0 && cx.is_clean(&at(PROVIDERS, name).key("enabled")) => {
                    Rule::DisabledProvider { name: name.to_owned() }
                }
                _ => continue,
            };
            cx.report_at(p, Problem::from(kind));
        }
    }
}

/// The typed config of files that passed every rule.
fn config(files: Files) -> GatewayConfig {
    let rate_limits = files
        .rate_limits
        .into_iter()
        .filter_map(|(name, l)| {
            let limit = RateLimit {
                rpm: NonZeroU32::new(l.rpm.0)?,
                burst: NonZeroU32::new(l.burst.0)?,
                tokens_per_minute: NonZeroU64::new(l.tokens_per_minute.0)?,
            };
            Some((ProviderName::new_unchecked(&name.0), limit))
        })
        .collect();
    let agent_chains = files
        .agent_chains
        .into_iter()
        .map(|(name, c)| {
            let chain = AgentChain {
                primary: ProviderName::new_unchecked(&c.primary.0),
                fallbacks: c.fallbacks.iter().map(|f| ProviderName::new_unchecked(&f.0)).collect(),
            };
            (AgentName::new_unchecked(&name.0), chain)
        })
        .collect();
    let providers: BTreeMap<ProviderName, Provider> = files
        .providers
        .into_iter()
        .map(|(name, p)| {
            let (timeout, connect_timeout) = timeouts(&p);
            let provider = Provider {
                enabled: p.enabled.0,
                api_key_env: p.api_key_env.map(|v| EnvVarName::new_unchecked(&v.0)),
                model: p.model.0,
                base_url: p.base_url.0,
                timeout,
                connect_timeout,
                max_retries: p.max_retries.map_or(DEFAULT_MAX_RETRIES, |r| r.0),
            };
            (ProviderName::new_unchecked(&name.0), provider)
        })
        .collect();
    GatewayConfig { rate_limits, agent_chains, providers }
}

/// Checks that `url` is `http(s)://host…` with no credentials (userinfo, or anything the
/// redaction rules would hide, such as `?api_key=…`) and no whitespace.
///
/// Refused rather than redacted: a key in a plain config file defeats the `api_key_env`
/// indirection (it lands in the store's files, in `GET /config`, in every copy of the directory),
/// and redacting a URL everywhere it may travel is a long tail that one miss undoes.
fn check_url(url: &str) -> Result<(), Rule> {
    let invalid = |reason| Rule::InvalidUrl { reason };
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or(invalid("must start with http:// or https://"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') || holds_secret(url) {
        return Err(Rule::CredentialInUrl);
    }
    if url.chars().any(char::is_whitespace) {
        return Err(invalid("must not contain spaces"));
    }
    if authority.is_empty() || authority.starts_with(':') {
        return Err(invalid("has no host"));
    }
    Ok(())
}

/// Validates the LLM gateway's files (`rate_limits.yaml`, `agent_chains.yaml`, `providers.yaml`)
/// together, with the default limits.
///
/// ```
/// use hotconf::{MapEnv, SourceFile, Sources};
/// use hotconf_gateway::validate_config;
/// let sources = Sources::from_files([
///     SourceFile::new("providers.yaml", "local:\n  model: llama3\n  base_url: http://127.0.0.1:11434\n"),
///     SourceFile::new("rate_limits.yaml", "local:\n  rpm: 0\n  burst: 5\n  tokens_per_minute: 1000\n"),
///     SourceFile::new("agent_chains.yaml", "mary:\n  primary: local\n"),
/// ]);
/// let errors = validate_config(sources, &MapEnv::new()).unwrap_err();
/// assert_eq!(errors.to_string(), "rate_limits.yaml:2:8: local.rpm: must be a positive integer, got 0\n  help: use a whole number of 1 or more");
/// ```
pub fn validate_config(sources: Sources, env: &dyn EnvLookup) -> Result<Validated<GatewayConfig>, Diagnostics> {
    hotconf::validate_with(&GatewaySchema::default(), sources, env)
}
