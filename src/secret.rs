//! Secrets: the one place that knows which keys and values are secret-looking, and what is shown
//! in their place. Shared below the pipeline's stages: validation refuses what the snapshot's diff
//! and audit log would redact (one list, not two). Pure string functions; never touches a file.

use crate::distance::edit_distance;

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

/// One line of a YAML file as it may be shown to a person (a diagnostic's snippet), with
/// everything the diff would redact masked as `***`, and more, since a snippet may show a line
/// the diff never reads:
///
/// - the value after `key:` when the diff would redact it under that key (a secret key, a
///   variable name that is not one, a key in a well-known format, a URL with a credential);
/// - the value under a key a typo away from a secret word (`api_kye`, `pasword`), which an
///   unknown-key diagnostic points at;
/// - a flow mapping or list on the line (`headers: {x-api-key: …}`) when any item in it would be;
/// - a comment (`# …`) holding any of these.
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
/// assert_eq!(mask_line("  api_kye: hunter22"), "  api_kye: ***");
/// assert_eq!(mask_line("  pasword: hunter22"), "  pasword: ***");
/// assert_eq!(mask_line("  headers: {x-api-key: abc123, accept: json}"), "  headers: ***");
/// assert_eq!(mask_line("  rpm: 30  # token: abc123"), "  rpm: 30  # ***");
/// assert_eq!(mask_line("# gsk_live_abc"), "# ***");
/// assert_eq!(mask_line("  rpm: 30"), "  rpm: 30");
/// assert_eq!(mask_line("  max_tokens: 300  # per request"), "  max_tokens: 300  # per request");
/// ```
pub fn mask_line(line: &str) -> String {
    // A comment: `#` at the start or after a space (not inside a URL's fragment).
    let comment_at = line.char_indices().find(|&(i, c)| c == '#' && (i == 0 || line[..i].ends_with([' ', '\t'])));
    let (content, comment) = match comment_at {
        Some((i, _)) => (&line[..i], Some(&line[i + 1..])),
        None => (line, None),
    };
    let mut out = mask_content(content);
    if let Some(comment) = comment {
        out.push('#');
        if comment_holds_secret(comment) {
            out.push_str(" ***");
        } else {
            out.push_str(comment);
        }
    }
    out
}

/// The part of a line before any comment, masked (see [`mask_line`]).
fn mask_content(content: &str) -> String {
    let (head, key, value) = match content.split_once(':') {
        Some((k, v)) if !k.contains(['{', '[', '"', '\'']) => (format!("{k}:"), k.trim().trim_start_matches("- "), v),
        _ => match content.trim_start().strip_prefix("- ") {
            Some(item) => (content[..content.len() - item.len()].trim_end().to_owned(), "", item),
            None => return content.to_owned(),
        },
    };
    let trimmed = value.trim();
    if trimmed.is_empty() || !pair_holds_secret(key, trimmed) {
        return content.to_owned();
    }
    // Keep the spaces that separated the value from a comment.
    let trailing = &value[value.trim_end().len()..];
    format!("{head} ***{trailing}")
}

/// Whether `value` written under `key` shows something secret: by the diff's rule, a key a typo
/// from a secret word, or any item of a flow collection that would.
fn pair_holds_secret(key: &str, value: &str) -> bool {
    if near_secret_word(key) {
        return true;
    }
    if value.starts_with(['{', '[']) {
        return value.split([',', '{', '}', '[', ']']).map(str::trim).filter(|item| !item.is_empty()).any(|item| {
            match item.split_once(':') {
                Some((k, v)) => {
                    pair_holds_secret(k.trim().trim_matches(['"', '\'']), v.trim()) || item_secret(key, item)
                }
                None => item_secret(key, item),
            }
        });
    }
    item_secret(key, value)
}

/// Whether one scalar under `key` would be redacted (or is in a key format).
fn item_secret(key: &str, value: &str) -> bool {
    let unquoted = value.trim_matches(|c| c == '"' || c == '\'');
    shown(classify_key(key), unquoted) != unquoted || looks_like_key(unquoted)
}

/// Whether a comment holds a secret: a `key: value` or `key=value` pair that would be masked,
/// or any word in a key format or holding a credentialed URL.
fn comment_holds_secret(comment: &str) -> bool {
    let text = comment.trim();
    if let Some((k, v)) = text.split_once([':', '=']) {
        if !v.trim().is_empty() && pair_holds_secret(k.trim(), v.trim()) {
            return true;
        }
    }
    text.split_whitespace().any(|word| looks_like_key(word) || holds_secret(word))
}

/// Whether a word of `key` is one edit from a secret word without being that word or a word it
/// starts (`api_kye`, `pasword`, `secrte`; not `tokens`, `keys`, `monkey`): a misspelt secret
/// key, whose value an unknown-key diagnostic would otherwise print.
fn near_secret_word(key: &str) -> bool {
    words(key).iter().any(|w| {
        SECRET_WORDS.iter().any(|s| {
            w != s
                && !w.starts_with(s)
                && !s.starts_with(w.as_str())
                && edit_distance(w, s, 1) == 1
                && (s.len() >= 5 || same_characters(w, s))
        })
    })
}

/// Whether `a` and `b` hold the same characters (so one edit between them is a swap).
fn same_characters(a: &str, b: &str) -> bool {
    let sorted = |s: &str| {
        let mut chars: Vec<char> = s.chars().collect();
        chars.sort_unstable();
        chars
    };
    sorted(a) == sorted(b)
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

/// A URL with every part that may carry a credential redacted. The rule is deny by default,
/// never a list of parameter names to hide:
///
/// - userinfo (`user:password@`) is always a credential;
/// - a fragment (`#…`) is always redacted: it is never sent to a server, so an API's base URL has
///   no use for one, and it is where implicit-flow tokens travel (`#access_token=…`);
/// - each query parameter (split at `&` and `;`, name and value percent-decoded, `+` as a space)
///   is shown only when its name is not secret-looking ([`classify_key`]) and its value is plainly
///   not a credential: shorter than 16 characters and not in a key format, or made only of digits
///   and `.-_:` (versions and dates, e.g. Azure OpenAI's `api-version=2024-02-01`). A parameter
///   without `=` is judged as a value. Anything else, under any name, is redacted.
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
    let (before_fragment, fragment) = match tail.find('#') {
        Some(h) => (&tail[..h], Some(&tail[h + 1..])),
        None => (tail, None),
    };
    match before_fragment.find('?') {
        Some(q) => {
            out.push_str(&before_fragment[..=q]);
            out.push_str(&redact_query(&before_fragment[q + 1..]));
        }
        None => out.push_str(before_fragment),
    }
    if let Some(fragment) = fragment {
        out.push('#');
        if !fragment.is_empty() {
            out.push_str(REDACTED);
        }
    }
    out
}

/// A query string with each parameter that may be a credential redacted (see [`redact_url`]),
/// its separators (`&`, `;`) kept.
fn redact_query(query: &str) -> String {
    let mut out = String::with_capacity(query.len());
    let mut start = 0;
    for (i, c) in query.char_indices().chain(std::iter::once((query.len(), '&'))) {
        if c != '&' && c != ';' {
            continue;
        }
        let param = &query[start..i];
        match param.split_once('=') {
            Some((name, value)) if plain_param(name, value) => out.push_str(param),
            Some((name, _)) if name_shown(name) => {
                out.push_str(name);
                out.push('=');
                out.push_str(REDACTED);
            }
            Some(_) => out.push_str(REDACTED),
            None if plain_param("", param) => out.push_str(param),
            None => out.push_str(REDACTED),
        }
        if i < query.len() {
            out.push(c);
        }
        start = i + c.len_utf8();
    }
    out
}

/// Whether a parameter's name may be shown beside its redacted value: not itself in a key format,
/// short, printable.
fn name_shown(name: &str) -> bool {
    let name = percent_decode(name);
    !looks_like_key(&name) && name.chars().count() < 32 && !name.chars().any(char::is_control)
}

/// Whether a query parameter, as written, is plainly not a credential (see [`redact_url`]).
fn plain_param(name: &str, value: &str) -> bool {
    let name = percent_decode(name);
    let value = percent_decode(value);
    let name = name.trim_end_matches("[]");
    let plain_name = name.is_empty() || classify_key(name) == KeyClass::Plain;
    let plain_value = value.is_empty()
        || value.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '_' | ':'))
        || (value.chars().count() < 16 && !looks_like_key(&value) && !value.chars().any(char::is_control));
    plain_name && plain_value
}

/// `s` with `%XX` escapes decoded and `+` read as a space (an invalid escape is kept as written).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (escaped, bytes[i]) {
            (Some(b), _) => {
                out.push(b);
                i += 3;
                continue;
            }
            (None, b'+') => out.push(b' '),
            (None, b) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
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
            // Deny by default: every separator form, percent-encoded names, any fragment, and a
            // long value under any name; versions and dates pass.
            ("https://h/v1?api%5Fkey=abc", "https://h/v1?api%5Fkey=<redacted>"),
            ("https://h/v1?key[]=abc", "https://h/v1?key[]=<redacted>"),
            ("https://h/v1?a=1;key=abc", "https://h/v1?a=1;key=<redacted>"),
            ("https://h/v1#access_token=abc", "https://h/v1#<redacted>"),
            ("https://h/v1?x=AbCdEf0123456789XyZ", "https://h/v1?x=<redacted>"),
            ("https://h/v1?sk-abcdef", "https://h/v1?<redacted>"),
            ("https://h/v1?%74oken=abc", "https://h/v1?%74oken=<redacted>"),
            ("https://h/v1?model=gpt-4o&n=2", "https://h/v1?model=gpt-4o&n=2"),
            (
                "https://x.openai.azure.com/openai?api-version=2024-02-01",
                "https://x.openai.azure.com/openai?api-version=2024-02-01",
            ),
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
