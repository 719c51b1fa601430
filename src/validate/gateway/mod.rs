//! The shipped schema: an LLM gateway's `rate_limits.yaml`, `agent_chains.yaml` and
//! `providers.yaml`, validated together into one [`GatewayConfig`].

mod model;

use std::collections::{BTreeMap, BTreeSet};
use std::num::{NonZeroU32, NonZeroU64};
use std::time::Duration;

use model::{is_env_var_name, is_valid_name};
pub use model::{AgentChain, AgentName, EnvVarName, GatewayConfig, Provider, ProviderName, RateLimit};

use super::diagnostic::{Diagnostic, DiagnosticKind, Diagnostics};
use super::fields::{optional, Checker, Entries};
use super::yaml::{parse_file, ParsedFile, YamlPath};
use super::Schema;
use crate::snapshot::redact::{holds_secret, looks_like_key};
use crate::source::env::EnvLookup;
use crate::source::{Sources, DEFAULT_MAX_FILE_BYTES};

/// The rate limits file's stem.
pub const RATE_LIMITS: &str = "rate_limits";
/// The agent chains file's stem.
pub const AGENT_CHAINS: &str = "agent_chains";
/// The providers file's stem.
pub const PROVIDERS: &str = "providers";
const STEMS: [&str; 3] = [AGENT_CHAINS, PROVIDERS, RATE_LIMITS];

const PROVIDER_KEYS: &[&str] =
    &["enabled", "api_key_env", "model", "base_url", "timeout_seconds", "connect_timeout_seconds", "max_retries"];
const LIMIT_KEYS: &[&str] = &["rpm", "burst", "tokens_per_minute"];
const CHAIN_KEYS: &[&str] = &["primary", "fallbacks"];
/// Keys under which people paste secrets; reported as inline secrets, never echoed.
const SECRET_KEYS: &[&str] =
    &["api_key", "apikey", "key", "token", "access_token", "secret", "password", "authorization", "bearer"];

/// Default request timeout when `timeout_seconds` is absent.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default connect timeout when `connect_timeout_seconds` is absent (capped at the timeout).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default `max_retries`.
pub const DEFAULT_MAX_RETRIES: u32 = 2;

/// The gateway schema.
#[derive(Debug, Clone)]
pub struct GatewaySchema {
    max_file_bytes: u64,
}

impl Default for GatewaySchema {
    fn default() -> Self {
        Self { max_file_bytes: DEFAULT_MAX_FILE_BYTES }
    }
}

impl GatewaySchema {
    /// This schema with another per-file size cap.
    #[must_use]
    pub fn with_max_file_bytes(mut self, max: u64) -> Self {
        self.max_file_bytes = max;
        self
    }

    /// The file names this schema reads.
    pub fn file_names() -> Vec<String> {
        STEMS.iter().map(|s| format!("{s}.yaml")).collect()
    }
}

impl Schema for GatewaySchema {
    type Config = GatewayConfig;

    fn validate(&self, sources: &Sources, env: &dyn EnvLookup) -> Result<GatewayConfig, Diagnostics> {
        let mut diags = Vec::new();
        // Each stem's files: exactly one is read; two (`x.yaml` and `x.yml`) are a conflict and
        // neither is read, so the other files are not judged against a guess.
        let mut by_stem: BTreeMap<&str, Vec<&crate::source::SourceFile>> = BTreeMap::new();
        for file in sources.files() {
            let stem = file.name().rsplit_once('.').map_or(file.name(), |(s, _)| s);
            match STEMS.iter().find(|s| **s == stem) {
                None => diags.push(Diagnostic::file(
                    file.name(),
                    DiagnosticKind::UnexpectedFile { expected: Self::file_names() },
                )),
                Some(stem) => by_stem.entry(stem).or_default().push(file),
            }
        }
        let mut parsed: BTreeMap<&str, ParsedFile<'_>> = BTreeMap::new();
        for stem in STEMS {
            match by_stem.get(stem).map(Vec::as_slice).unwrap_or_default() {
                [] => diags.push(Diagnostic::file(format!("{stem}.yaml"), DiagnosticKind::MissingFile)),
                [first, rest @ ..] if !rest.is_empty() => {
                    for file in rest {
                        let kind = DiagnosticKind::ConflictingFiles { other: first.name().to_owned() };
                        diags.push(Diagnostic::file(file.name(), kind));
                    }
                }
                [file, ..] => match parse_file(file, self.max_file_bytes) {
                    Ok(p) => {
                        parsed.insert(stem, p);
                    }
                    Err(d) => diags.push(d),
                },
            }
        }

        let providers = parsed.get(PROVIDERS).map(|f| read_providers(f, env, &mut diags));
        let rate_limits = parsed.get(RATE_LIMITS).map(|f| read_rate_limits(f, providers.as_ref(), &mut diags));
        let agent_chains = parsed.get(AGENT_CHAINS).map(|f| read_chains(f, providers.as_ref(), &mut diags));

        match (providers, rate_limits, agent_chains) {
            (Some(p), Some(r), Some(a)) if diags.is_empty() => {
                Ok(GatewayConfig { providers: p.valid, rate_limits: r, agent_chains: a })
            }
            _ => Err(Diagnostics::new(diags)),
        }
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

/// The providers read: the fully valid ones, and every defined name with whether it is enabled
/// (kept even for providers with errors, so chains are not also reported as unknown; `None`
/// when `enabled` itself is wrong).
struct ProvidersRead {
    valid: BTreeMap<ProviderName, Provider>,
    defined: BTreeMap<String, Option<bool>>,
}

fn top_level<'v>(checker: &mut Checker<'_, '_>, file: &'v ParsedFile<'_>) -> Entries<'v> {
    let root = YamlPath::root();
    let entries = checker.mapping(&file.value, &root).unwrap_or_default();
    for (name, _) in &entries {
        if !is_valid_name(name) {
            checker.report(&root.key(name), DiagnosticKind::InvalidName);
        }
    }
    entries
}

fn read_providers(file: &ParsedFile<'_>, env: &dyn EnvLookup, diags: &mut Vec<Diagnostic>) -> ProvidersRead {
    let mut c = Checker::new(file);
    let mut read = ProvidersRead { valid: BTreeMap::new(), defined: BTreeMap::new() };
    for (name, value) in top_level(&mut c, file) {
        let path = YamlPath::root().key(name);
        let Some(entries) = c.mapping(value, &path) else {
            read.defined.insert(name.to_owned(), None);
            continue;
        };
        c.known_keys(&entries, &path, PROVIDER_KEYS, |key| {
            SECRET_KEYS
                .contains(&key.to_ascii_lowercase().as_str())
                .then(|| DiagnosticKind::InlineSecret { key: key.to_owned() })
        });
        let enabled = match optional(&entries, "enabled") {
            Some(v) => c.boolean(v, &path.key("enabled")),
            None => Some(true),
        };
        read.defined.insert(name.to_owned(), enabled);
        let api_key_env = match optional(&entries, "api_key_env") {
            None => Some(None),
            Some(v) => {
                let p = path.key("api_key_env");
                match v.as_str() {
                    Some(s) if looks_like_key(s) => {
                        c.report(&p, DiagnosticKind::KeyInEnvName);
                        None
                    }
                    Some(s) if is_env_var_name(s) => {
                        if enabled == Some(true) && !env.is_set(s) {
                            c.report(&p, DiagnosticKind::MissingEnvVar { var: s.to_owned() });
                        }
                        Some(Some(EnvVarName::new_unchecked(s)))
                    }
                    Some(_) => {
                        c.report(&p, DiagnosticKind::NotAnEnvVarName);
                        None
                    }
                    None => {
                        c.wrong_type(v, &p, "the name of an environment variable");
                        None
                    }
                }
            }
        };
        let model = c.required(&entries, &path, "model").and_then(|v| c.string(v, &path.key("model")));
        let base_url = c.required(&entries, &path, "base_url").and_then(|v| {
            let p = path.key("base_url");
            let url = c.string(v, &p)?;
            match check_url(url) {
                Ok(()) => Some(url),
                Err(kind) => {
                    c.report(&p, kind);
                    None
                }
            }
        });
        let timeout = match optional(&entries, "timeout_seconds") {
            None => Some(DEFAULT_TIMEOUT),
            Some(v) => c
                .positive_number(v, &path.key("timeout_seconds"), 3600.0, "more than 0, at most 3600")
                .map(Duration::from_secs_f64),
        };
        let connect_timeout = match optional(&entries, "connect_timeout_seconds") {
            None => timeout.map(|t| t.min(DEFAULT_CONNECT_TIMEOUT)),
            Some(v) => {
                let p = path.key("connect_timeout_seconds");
                let ct = c.positive_number(v, &p, 3600.0, "more than 0, at most 3600").map(Duration::from_secs_f64);
                match (ct, timeout) {
                    (Some(ct), Some(t)) if ct > t => {
                        let value = format!("{}", ct.as_secs_f64());
                        c.report(&p, DiagnosticKind::OutOfRange { value, range: "at most timeout_seconds" });
                        None
                    }
                    _ => ct,
                }
            }
        };
        let max_retries = match optional(&entries, "max_retries") {
            None => Some(DEFAULT_MAX_RETRIES),
            Some(v) => c.integer_in(v, &path.key("max_retries"), 0, 10, "0 to 10").map(|n| n as u32),
        };
        if let (
            Some(enabled),
            Some(api_key_env),
            Some(model),
            Some(base_url),
            Some(timeout),
            Some(connect_timeout),
            Some(max_retries),
        ) = (enabled, api_key_env, model, base_url, timeout, connect_timeout, max_retries)
        {
            let provider = Provider {
                enabled,
                api_key_env,
                model: model.to_owned(),
                base_url: base_url.to_owned(),
                timeout,
                connect_timeout,
                max_retries,
            };
            read.valid.insert(ProviderName::new_unchecked(name), provider);
        }
    }
    diags.extend(c.finish());
    read
}

/// Checks that `url` is `http(s)://host…` with no credentials (userinfo, or anything the
/// redaction rules would hide, such as `?api_key=…`) and no whitespace.
///
/// Refused rather than redacted: a key in a plain config file defeats the `api_key_env`
/// indirection (it lands in the store's files, in `GET /config`, in every copy of the directory),
/// and redacting a URL everywhere it may travel is a long tail that one miss undoes.
fn check_url(url: &str) -> Result<(), DiagnosticKind> {
    let invalid = |reason| DiagnosticKind::InvalidUrl { reason };
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or(invalid("must start with http:// or https://"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') || holds_secret(url) {
        return Err(DiagnosticKind::CredentialInUrl);
    }
    if url.chars().any(char::is_whitespace) {
        return Err(invalid("must not contain spaces"));
    }
    if authority.is_empty() || authority.starts_with(':') {
        return Err(invalid("has no host"));
    }
    Ok(())
}

fn read_rate_limits(
    file: &ParsedFile<'_>,
    providers: Option<&ProvidersRead>,
    diags: &mut Vec<Diagnostic>,
) -> BTreeMap<ProviderName, RateLimit> {
    let mut c = Checker::new(file);
    let mut limits = BTreeMap::new();
    for (name, value) in top_level(&mut c, file) {
        let path = YamlPath::root().key(name);
        if let Some(p) = providers {
            if !p.defined.contains_key(name) {
                c.report(&path, DiagnosticKind::LimitsForUnknownProvider { name: name.to_owned() });
            }
        }
        let Some(entries) = c.mapping(value, &path) else { continue };
        c.known_keys(&entries, &path, LIMIT_KEYS, |_| None);
        let mut field =
            |key: &'static str| c.required(&entries, &path, key).and_then(|v| c.positive_integer(v, &path.key(key)));
        let (rpm, burst, tpm) = (field("rpm"), field("burst"), field("tokens_per_minute"));
        let rpm = rpm.and_then(|v| u32_in(&mut c, &path.key("rpm"), v));
        let burst = burst.and_then(|v| u32_in(&mut c, &path.key("burst"), v));
        if let (Some(rpm), Some(burst), Some(tpm)) = (rpm, burst, tpm.and_then(NonZeroU64::new)) {
            limits.insert(ProviderName::new_unchecked(name), RateLimit { rpm, burst, tokens_per_minute: tpm });
        }
    }
    diags.extend(c.finish());
    limits
}

fn u32_in(c: &mut Checker<'_, '_>, path: &YamlPath, v: u64) -> Option<NonZeroU32> {
    let n = u32::try_from(v).ok().and_then(NonZeroU32::new);
    if n.is_none() {
        c.report(path, DiagnosticKind::OutOfRange { value: v.to_string(), range: "1 to 4294967295" });
    }
    n
}

fn read_chains(
    file: &ParsedFile<'_>,
    providers: Option<&ProvidersRead>,
    diags: &mut Vec<Diagnostic>,
) -> BTreeMap<AgentName, AgentChain> {
    let mut c = Checker::new(file);
    let mut chains = BTreeMap::new();
    // Named in every unknown-provider diagnostic: built once, and short whatever the file holds.
    let known: Vec<String> = providers.map_or_else(Vec::new, |read| {
        let mut known: Vec<String> = read.defined.keys().take(10).cloned().collect();
        if read.defined.len() > known.len() {
            known.push("…".to_owned());
        }
        known
    });
    for (name, value) in top_level(&mut c, file) {
        let path = YamlPath::root().key(name);
        let Some(entries) = c.mapping(value, &path) else { continue };
        c.known_keys(&entries, &path, CHAIN_KEYS, |_| None);
        let mut ok = true;
        let mut order: Vec<(YamlPath, &str)> = Vec::new();
        match c.required(&entries, &path, "primary").map(|v| (v, c.string(v, &path.key("primary")))) {
            Some((_, Some(p))) => order.push((path.key("primary"), p)),
            _ => ok = false,
        }
        if let Some(v) = optional(&entries, "fallbacks") {
            let fpath = path.key("fallbacks");
            match c.sequence(v, &fpath) {
                Some(items) => {
                    for (i, item) in items.iter().enumerate() {
                        match c.string(item, &fpath.index(i)) {
                            Some(s) => order.push((fpath.index(i), s)),
                            None => ok = false,
                        }
                    }
                }
                None => ok = false,
            }
        }
        let mut seen = BTreeSet::new();
        for (p, provider) in &order {
            if !seen.insert(*provider) {
                c.report(p, DiagnosticKind::RepeatedInChain { name: (*provider).to_owned() });
                ok = false;
            }
            let Some(read) = providers else { continue };
            match read.defined.get(*provider) {
                None => {
                    let kind = DiagnosticKind::UnknownProvider { name: (*provider).to_owned(), known: known.clone() };
                    c.report(p, kind);
                    ok = false;
                }
                Some(Some(false)) => {
                    c.report(p, DiagnosticKind::DisabledProvider { name: (*provider).to_owned() });
                    ok = false;
                }
                Some(Some(true)) => {}
                Some(None) => ok = false,
            }
        }
        if ok && !order.is_empty() {
            let mut names = order.iter().map(|(_, n)| ProviderName::new_unchecked(n));
            let primary = names.next().expect("order is not empty");
            chains.insert(AgentName::new_unchecked(name), AgentChain { primary, fallbacks: names.collect() });
        }
    }
    diags.extend(c.finish());
    chains
}
