//! Secrets: the one place that knows which keys and values are secret-looking, and what is shown
//! in their place. Shared below the pipeline's stages: validation refuses what the snapshot's diff
//! and audit log would redact (one list, not two). Pure string functions; never touches a file.

/// What is shown instead of a secret.
pub(crate) const REDACTED: &str = "<redacted>";

/// Words of a key name that mark its value (and everything under it) as secret.
const SECRET_WORDS: &[&str] = &[
    "key",
    "apikey",
    "token",
    "secret",
    "secrets",
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "authorization",
    "auth",
    "credential",
    "credentials",
    "webhook",
    "cookie",
    "bearer",
    "private",
    "signature",
    "dsn",
];

/// Endings of a run-together key word that mark it secret (`accesstoken`, `clientsecret`).
const SECRET_ENDINGS: &[&str] = &["token", "secret", "password", "passwd", "apikey", "credential", "credentials"];

/// Value prefixes of well-known key formats, redacted wherever they appear.
const KEY_PREFIXES: &[&str] =
    &["sk-", "sk_", "gsk_", "xoxb-", "xoxp-", "xoxa-", "xoxs-", "ghp_", "gho_", "github_pat_", "glpat-", "AIza"];

/// Well-known key formats made only of capitals and digits, which would pass for environment
/// variable names: (prefix, exact length). AWS access key ids: `AKIA…`, `ASIA…`, 20 characters.
const UPPERCASE_KEY_FORMATS: &[(&str, usize)] = &[("AKIA", 20), ("ASIA", 20)];

/// Hosts (and path starts) of webhook URLs, whose whole URL is the secret.
const WEBHOOK_MARKERS: &[&str] = &[
    "hooks.slack.com",
    "discord.com/api/webhooks",
    "discordapp.com/api/webhooks",
    "webhook.office.com",
    "outlook.office.com/webhook",
    "hooks.zapier.com",
    "api.telegram.org/bot",
    "chat.googleapis.com",
];

/// How a key's value is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyClass {
    /// An ordinary key: its value is shown (after the value checks).
    Plain,
    /// A key naming an environment variable (`api_key_env`): the name is shown if it looks like one.
    EnvName,
    /// A secret-looking key: its value and everything under it is redacted.
    Secret,
}

/// Splits a key into lowercase words at `_`, `-`, `.`, spaces and lower→upper case changes.
fn words(key: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut prev_lower = false;
    for c in key.chars() {
        if matches!(c, '_' | '-' | '.' | ' ') {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// Classifies a mapping key.
pub fn classify_key(key: &str) -> KeyClass {
    let words = words(key);
    let is_secret_word =
        |w: &String| SECRET_WORDS.contains(&w.as_str()) || SECRET_ENDINGS.iter().any(|end| w.ends_with(end));
    if !words.iter().any(is_secret_word) {
        return KeyClass::Plain;
    }
    match words.last().map(String::as_str) {
        Some("env" | "var" | "variable") => KeyClass::EnvName,
        _ => KeyClass::Secret,
    }
}

/// Whether `s` looks like an environment variable name (`GROQ_API_KEY`): capitals, digits and
/// `_`, not starting with a digit, at most 128 bytes.
pub fn is_env_var_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_uppercase() || c == '_')
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        && s.len() <= 128
}

/// Whether `value` is in a well-known key format (`sk-…`, `gsk_…`, `AKIA…`, `ghp_…`, …). The one
/// place that decides it: the diff and the audit log redact such values, and validation refuses
/// one written where a variable *name* belongs.
pub fn looks_like_key(value: &str) -> bool {
    let value = value.trim();
    KEY_PREFIXES.iter().any(|p| value.starts_with(p))
        || UPPERCASE_KEY_FORMATS.iter().any(|(prefix, len)| {
            value.starts_with(prefix)
                && value.len() == *len
                && value.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        })
}

/// Whether `value` holds anything a diff or log would hide: a webhook URL, a key, URL
/// credentials or a secret query parameter. Validation refuses such a URL.
pub fn holds_secret(value: &str) -> bool {
    redact_value(value) != value
}

/// One line of a YAML file as it may be shown to a person (a diagnostic's snippet): the value
/// after `key:` replaced by `***` when the diff would redact it under that key — a secret key,
/// a variable name that is not one, a key in a well-known format, a URL with a credential —
/// so a snippet never shows what a diff, a log or an audit record hides.
///
/// ```
/// use hotconf::secret::mask_line;
/// assert_eq!(mask_line("  api_key: sk-live-123"), "  api_key: ***");
/// assert_eq!(mask_line("  api_key_env: GROQ_API_KEY"), "  api_key_env: GROQ_API_KEY");
/// assert_eq!(mask_line("  api_key_env: [sk-live-123]"), "  api_key_env: ***");
/// assert_eq!(mask_line("  token_env: 12345"), "  token_env: ***");
/// assert_eq!(mask_line("  base_url: https://u:p@host/v1"), "  base_url: ***");
/// assert_eq!(mask_line("  base_url: https://host/v1?key=abc"), "  base_url: ***");
/// assert_eq!(mask_line("  model: sk-live-123"), "  model: ***");
/// assert_eq!(mask_line("  - sk-live-123"), "  - ***");
/// assert_eq!(mask_line("  rpm: 30"), "  rpm: 30");
/// ```
pub fn mask_line(line: &str) -> String {
    let (head, key, value) = match line.split_once(':') {
        Some((k, v)) if !k.contains(['{', '[', '"', '\'']) => (format!("{k}:"), k.trim().trim_start_matches("- "), v),
        _ => match line.trim_start().strip_prefix("- ") {
            Some(item) => (line[..line.len() - item.len()].trim_end().to_owned(), "", item),
            None => return line.to_owned(),
        },
    };
    let value = value.trim();
    if value.is_empty() {
        return line.to_owned();
    }
    let unquoted = value.trim_matches(|c| c == '"' || c == '\'');
    if shown(classify_key(key), unquoted) == unquoted && !looks_like_key(unquoted) {
        return line.to_owned();
    }
    format!("{head} ***")
}

/// The text shown for a string value under a key of class `class`.
pub(crate) fn shown(class: KeyClass, value: &str) -> String {
    match class {
        KeyClass::Secret => REDACTED.to_owned(),
        KeyClass::EnvName if is_env_var_name(value) && !looks_like_key(value) => value.to_owned(),
        KeyClass::EnvName => REDACTED.to_owned(),
        KeyClass::Plain => redact_value(value),
    }
}

/// A string value under an ordinary key, with anything secret-looking inside it redacted:
/// webhook URLs whole, URL credentials (`https://<redacted>@host/…`), secret query parameters
/// (`?key=<redacted>`), and values in well-known key formats.
pub(crate) fn redact_value(value: &str) -> String {
    let lower = value.to_ascii_lowercase();
    if WEBHOOK_MARKERS.iter().any(|m| lower.contains(m)) {
        return REDACTED.to_owned();
    }
    if looks_like_key(value) {
        return REDACTED.to_owned();
    }
    if let Some(scheme_end) = value.find("://") {
        return redact_url(value, scheme_end);
    }
    value.to_owned()
}

fn redact_url(url: &str, scheme_end: usize) -> String {
    let authority_start = scheme_end + 3;
    let rest = &url[authority_start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let mut out = String::with_capacity(url.len());
    out.push_str(&url[..authority_start]);
    match authority.rfind('@') {
        Some(at) => {
            out.push_str(REDACTED);
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    let tail = &rest[authority_end..];
    match tail.find('?') {
        Some(q) => {
            out.push_str(&tail[..=q]);
            let (query, fragment) = match tail[q + 1..].find('#') {
                Some(h) => (&tail[q + 1..q + 1 + h], &tail[q + 1 + h..]),
                None => (&tail[q + 1..], ""),
            };
            let params: Vec<String> = query
                .split('&')
                .map(|param| match param.split_once('=') {
                    Some((name, _)) if classify_key(name) != KeyClass::Plain || name.eq_ignore_ascii_case("sig") => {
                        format!("{name}={REDACTED}")
                    }
                    _ => param.to_owned(),
                })
                .collect();
            out.push_str(&params.join("&"));
            out.push_str(fragment);
        }
        None => out.push_str(tail),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_classes() {
        for key in ["api_key", "apiKey", "key", "token", "accessToken", "client_secret", "password", "Authorization"] {
            assert_eq!(classify_key(key), KeyClass::Secret, "{key}");
        }
        for key in ["slack_webhook", "webhook_url", "credentials", "private_key", "auth"] {
            assert_eq!(classify_key(key), KeyClass::Secret, "{key}");
        }
        for key in ["api_key_env", "token_env", "secret_var"] {
            assert_eq!(classify_key(key), KeyClass::EnvName, "{key}");
        }
        for key in ["rpm", "tokens_per_minute", "max_tokens", "keyless", "monkey", "primary", "base_url", "model"] {
            assert_eq!(classify_key(key), KeyClass::Plain, "{key}");
        }
    }

    #[test]
    fn values() {
        let cases = [
            ("https://user:pw@api.example.com/v1", "https://<redacted>@api.example.com/v1"),
            ("https://api.example.com/v1?key=abc&x=1", "https://api.example.com/v1?key=<redacted>&x=1"),
            ("https://hooks.slack.com/services/T0/B0/xyz", "<redacted>"),
            ("sk-abcdef", "<redacted>"),
            ("http://127.0.0.1:11434/v1", "http://127.0.0.1:11434/v1"),
            ("llama3", "llama3"),
        ];
        for (value, expected) in cases {
            assert_eq!(redact_value(value), expected);
        }
        assert_eq!(shown(KeyClass::EnvName, "GROQ_API_KEY"), "GROQ_API_KEY");
        assert_eq!(shown(KeyClass::EnvName, "gsk-pasted-key"), "<redacted>");
        assert_eq!(shown(KeyClass::EnvName, "AKIAIOSFODNN7EXAMPLE"), "<redacted>");
        assert_eq!(shown(KeyClass::EnvName, "AKIA_STYLE_NAME"), "AKIA_STYLE_NAME");
        assert_eq!(shown(KeyClass::EnvName, "ASIA_REGION"), "ASIA_REGION");
        assert_eq!(shown(KeyClass::Secret, "anything"), "<redacted>");
    }
}
