//! Environment lookups, injectable so validation never reads the process environment in tests.

use std::collections::BTreeMap;

/// Where validation looks up the environment variables a config names (API keys).
///
/// Validation only asks whether a variable is set and non-empty; it never copies the value
/// into a diagnostic, a log line or a snapshot.
pub trait EnvLookup: Send + Sync {
    /// The value of `name`, or `None` when it is unset or not valid Unicode.
    fn var(&self, name: &str) -> Option<String>;

    /// Whether `name` is set to a non-empty value.
    fn is_set(&self, name: &str) -> bool {
        self.var(name).is_some_and(|v| !v.is_empty())
    }

    /// Every variable whose name starts with `prefix`, with its value (for environment
    /// overrides, [`Hotconf::with_env_prefix`](crate::Hotconf::with_env_prefix)); none unless
    /// the lookup can list its variables.
    fn vars_with_prefix(&self, prefix: &str) -> Vec<(String, String)> {
        let _ = prefix;
        Vec::new()
    }
}

/// The real process environment.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessEnv;

impl EnvLookup for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn vars_with_prefix(&self, prefix: &str) -> Vec<(String, String)> {
        // Names or values that are not Unicode are skipped, as `var` skips them.
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .filter(|(k, _)| k.starts_with(prefix))
            .collect()
    }
}

/// A fixed environment, for tests and for validating against a described deployment.
///
/// ```
/// use hotconf::{EnvLookup, MapEnv};
/// let env = MapEnv::new().with("GROQ_API_KEY", "x");
/// assert!(env.is_set("GROQ_API_KEY"));
/// assert!(!env.is_set("GEMINI_API_KEY"));
/// ```
#[derive(Debug, Default, Clone)]
pub struct MapEnv {
    vars: BTreeMap<String, String>,
}

impl MapEnv {
    /// An empty environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// This environment with `name` set to `value`.
    #[must_use]
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.vars.insert(name.into(), value.into());
        self
    }
}

impl EnvLookup for MapEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }

    fn vars_with_prefix(&self, prefix: &str) -> Vec<(String, String)> {
        self.vars.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

/// A shared lookup, so one environment can serve several owners (rules and components).
impl<E: EnvLookup + ?Sized> EnvLookup for std::sync::Arc<E> {
    fn var(&self, name: &str) -> Option<String> {
        (**self).var(name)
    }

    fn is_set(&self, name: &str) -> bool {
        (**self).is_set(name)
    }

    fn vars_with_prefix(&self, prefix: &str) -> Vec<(String, String)> {
        (**self).vars_with_prefix(prefix)
    }
}
