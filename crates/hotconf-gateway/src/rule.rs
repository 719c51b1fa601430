//! The gateway's own problems, each with its code, message and help: written exactly as a user
//! writes theirs ([`Problem`]s), so the library's diagnostics know nothing gateway-specific.
//! A problem never carries a secret value: only key and variable *names*.

use std::fmt;

use hotconf::Problem;

/// What the gateway's types and cross-file rules refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Rule {
    /// A number that must be positive is zero or negative.
    NotPositive { value: String },
    /// A number outside its allowed range.
    OutOfRange { value: String, range: &'static str },
    /// A name (provider, agent) with characters outside `A-Za-z0-9_.-`, or empty.
    InvalidName,
    /// A string that must not be empty is empty.
    EmptyString,
    /// A URL that is not `http(s)://host…`. The URL itself is not repeated: it may hold credentials.
    InvalidUrl { reason: &'static str },
    /// A secret written inline in YAML (e.g. `api_key:`). Its value is never repeated.
    InlineSecret { key: String },
    /// A URL carrying a credential (userinfo, or a secret query parameter such as `api_key=`).
    CredentialInUrl,
    /// A value in a well-known key format (`sk-…`, `AKIA…`) in any other field: refused, so it is
    /// shown nowhere (not in `/config` either).
    KeyShapedValue,
    /// `api_key_env` holds a value in a well-known key format (`AKIA…`, `sk-…`).
    KeyInEnvName,
    /// `api_key_env` does not look like an environment variable name (it may be a key).
    NotAnEnvVarName,
    /// An enabled provider's API key variable is unset or empty.
    MissingEnvVar { var: String },
    /// A chain names a provider that `providers.yaml` does not define; `suggestion`: the defined
    /// provider closest to it, when one is close enough to be a typo; otherwise `known`: the first
    /// ten providers by name, then `…` when there are more.
    UnknownProvider { name: String, suggestion: Option<String>, known: Vec<String> },
    /// A chain names a provider that is disabled.
    DisabledProvider { name: String },
    /// A provider appears twice in one chain.
    RepeatedInChain { name: String },
    /// Rate limits for a provider that `providers.yaml` does not define.
    LimitsForUnknownProvider { name: String },
}

impl Rule {
    fn code(&self) -> &'static str {
        use Rule::*;
        match self {
            NotPositive { .. } => "not-positive",
            OutOfRange { .. } => "out-of-range",
            InvalidName => "invalid-name",
            EmptyString => "empty-string",
            InvalidUrl { .. } => "invalid-url",
            InlineSecret { .. } => "inline-secret",
            CredentialInUrl => "credential-in-url",
            KeyShapedValue => "key-shaped-value",
            KeyInEnvName => "key-in-env-name",
            NotAnEnvVarName => "not-an-env-var-name",
            MissingEnvVar { .. } => "missing-env-var",
            UnknownProvider { .. } => "unknown-provider",
            DisabledProvider { .. } => "disabled-provider",
            RepeatedInChain { .. } => "repeated-in-chain",
            LimitsForUnknownProvider { .. } => "limits-for-unknown-provider",
        }
    }

    fn help(&self) -> String {
        use Rule::*;
        match self {
            NotPositive { .. } => "use a whole number of 1 or more".into(),
            OutOfRange { range, .. } if range.starts_with(|c: char| c.is_ascii_digit()) => {
                format!("use a value from {range}")
            }
            OutOfRange { range, .. } => format!("use a value {range}"),
            InvalidName => "use letters, digits, `_`, `-` or `.`".into(),
            EmptyString => "give a value, or remove the key to use its default".into(),
            InvalidUrl { .. } => "write it as http://host[:port][/path] or https://…".into(),
            InlineSecret { .. } => {
                "never write a key in YAML: put it in an environment variable and name that variable with `api_key_env`".into()
            }
            CredentialInUrl => "never put a key in a URL: put it in an environment variable, name that variable with \
                `api_key_env`, and keep only scheme, host, port, path and non-secret parameters in the URL"
                .into(),
            KeyShapedValue => "never write a key in YAML: put it in an environment variable, name that variable with \
                `api_key_env`, and rotate it, since it was written into a config file"
                .into(),
            KeyInEnvName => "`api_key_env` holds the NAME of an environment variable (e.g. GROQ_API_KEY): put the key \
                in that variable, and rotate it, since it was written into a config file"
                .into(),
            NotAnEnvVarName => {
                "`api_key_env` holds the NAME of an environment variable (capitals, digits, `_`, e.g. GROQ_API_KEY), never the key itself".into()
            }
            MissingEnvVar { var } => format!("set {var} in the service's environment, or set `enabled: false`"),
            UnknownProvider { suggestion: Some(s), .. } => format!("did you mean `{s}`?"),
            UnknownProvider { known, .. } if known.is_empty() => "define it in providers.yaml first".into(),
            UnknownProvider { known, .. } => {
                format!("use a provider defined in providers.yaml ({}), or define this one there", known.join(", "))
            }
            DisabledProvider { .. } => "set `enabled: true` for it in providers.yaml, or remove it from the chain".into(),
            RepeatedInChain { .. } => "remove this entry; the chain already tries it earlier".into(),
            LimitsForUnknownProvider { .. } => "define the provider in providers.yaml, or remove its limits".into(),
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Rule::*;
        match self {
            NotPositive { value } => write!(f, "must be a positive integer, got {value}"),
            OutOfRange { value, .. } => write!(f, "{value} is out of range"),
            InvalidName => f.write_str("invalid name"),
            EmptyString => f.write_str("must not be empty"),
            InvalidUrl { reason } => write!(f, "invalid URL: {reason}"),
            InlineSecret { key } => write!(f, "inline secret under `{key}` is not allowed (value not shown)"),
            CredentialInUrl => f.write_str("credentials in a URL are not allowed (value not shown)"),
            KeyShapedValue => {
                f.write_str("this looks like an API key, which never belongs in a config file (value not shown)")
            }
            KeyInEnvName => f.write_str("this looks like a key, not a variable name (value not shown)"),
            NotAnEnvVarName => f.write_str("not an environment variable name (value not shown)"),
            MissingEnvVar { var } => write!(f, "environment variable {var} is not set or empty"),
            UnknownProvider { name, .. } => write!(f, "unknown provider `{name}`"),
            DisabledProvider { name } => write!(f, "provider `{name}` is disabled"),
            RepeatedInChain { name } => write!(f, "provider `{name}` appears more than once in the chain"),
            LimitsForUnknownProvider { name } => write!(f, "rate limits for unknown provider `{name}`"),
        }
    }
}

impl From<Rule> for Problem {
    fn from(rule: Rule) -> Self {
        use Rule::*;
        let problem = Problem::new(rule.code(), rule.to_string()).with_help(rule.help());
        // Where its column points and whether its line may be shown, as data the renderer reads.
        let problem = match rule {
            InlineSecret { .. } | LimitsForUnknownProvider { .. } => problem.at_key(),
            _ => problem,
        };
        match rule {
            InlineSecret { .. } | CredentialInUrl | KeyShapedValue | KeyInEnvName | NotAnEnvVarName => {
                problem.hiding_source_line()
            }
            _ => problem,
        }
    }
}
