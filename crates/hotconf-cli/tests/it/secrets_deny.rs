//! Secrets denied by default (issue 17): a credential in any form of a URL, a key-shaped value in
//! an ordinary field, a flow-mapped header and a misspelt secret key, each planted with a canary
//! that is not in a key format, never reach any output of `validate` (text, JSON, GitHub) or a
//! refused start.

use crate::support::{config_copy, hotconf};

/// Not in a key format: a long token only the deny-by-default rule catches.
const PLAIN: &str = "canary0f3a9c1e7d2b4a6c";
/// In a key format (`sk-…`).
const KEYISH: &str = "sk-canary-7f3a9c1e";

fn assert_clean(what: &str, text: &str) {
    for secret in [PLAIN, KEYISH, "canary"] {
        assert!(!text.contains(secret), "{secret} leaked into {what}:\n{text}");
    }
}

/// `validate` on a copy of the shipped config with `from` replaced by `to` in providers.yaml, in
/// every format: every output is clean, and each run refuses with `code` somewhere in it.
fn refused_everywhere(from: &str, to: &str, code: &str) {
    let config = config_copy();
    let path = config.path().join("providers.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{from}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    let dir = config.path().to_str().unwrap();
    for format in ["text", "json", "github"] {
        let out = hotconf(&["validate", "--config", dir, "--format", format], &[]);
        let all = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{to} ({format}):\n{all}");
        assert!(all.contains(code), "{to} ({format}): no {code} in\n{all}");
        assert_clean(&format!("validate --format {format} of `{to}`"), &all);
    }
    // A refused start says why, in the text log format's rustc-style snippets too.
    let store = tempfile::tempdir().unwrap();
    let out = hotconf(
        &[
            "run",
            "--config",
            dir,
            "--snapshots",
            store.path().to_str().unwrap(),
            "--admin-addr",
            "off",
            "--log-format",
            "text",
        ],
        &[],
    );
    let all = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert_clean(&format!("a refused start on `{to}`"), &all);
}

#[test]
fn a_credential_in_any_part_of_a_url_is_refused_by_default() {
    let good = "base_url: https://api.groq.com/openai/v1";
    for bad in [
        format!("base_url: https://api.groq.com/openai/v1?api%5Fkey={PLAIN}"),
        format!("base_url: https://api.groq.com/openai/v1?key[]={PLAIN}"),
        format!("base_url: https://api.groq.com/openai/v1?a=1;key={PLAIN}"),
        format!("base_url: https://api.groq.com/openai/v1?%74oken={PLAIN}"),
        format!("base_url: https://api.groq.com/openai/v1#access_token={PLAIN}"),
        format!("base_url: https://api.groq.com/openai/v1#{PLAIN}"),
        // Under an innocent name, a long random value is still a credential.
        format!("base_url: https://api.groq.com/openai/v1?x={PLAIN}"),
        format!("base_url: https://api.groq.com/openai/v1?{PLAIN}"),
    ] {
        refused_everywhere(good, &bad, "credential-in-url");
    }
}

#[test]
fn a_legitimate_query_parameter_still_passes() {
    let config = config_copy();
    let path = config.path().join("providers.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let azure = "base_url: https://example.openai.azure.com/openai/deployments/gpt?api-version=2024-02-01";
    std::fs::write(&path, text.replacen("base_url: https://api.groq.com/openai/v1", azure, 1)).unwrap();
    let out = hotconf(&["validate", "--config", config.path().to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_key_shaped_value_in_an_ordinary_field_is_refused_never_shown() {
    refused_everywhere("model: llama-3.3-70b-versatile", &format!("model: {KEYISH}"), "key-shaped-value");
}

#[test]
fn snippets_mask_flow_mapped_headers_misspelt_secret_keys_and_comments() {
    let model = "model: llama-3.3-70b-versatile";
    // Each is an unknown key (or on its line): the diagnostic points at the line, and the
    // snippet shows it masked, never the canary.
    for bad in [
        format!("{model}\n  headers: {{x-api-key: {PLAIN}, accept: json}}"),
        format!("{model}\n  api_kye: {PLAIN}"),
        format!("{model}\n  pasword: {PLAIN}"),
        format!("{model}\n  modle: x  # token: {PLAIN}"),
    ] {
        refused_everywhere(model, &bad, "unknown-key");
    }
}

/// The same forms written live into a running service: each is rejected, and no output of the
/// service (its log, every admin answer, the store's audit log and state files, `history`,
/// `show`) ever holds the canary.
#[test]
fn a_running_service_rejects_every_form_and_shows_the_canary_nowhere() {
    use crate::service::{write_atomic, Service};
    let config = config_copy();
    let store = tempfile::tempdir().unwrap();
    let s = Service::start(config.path(), store.path(), &[]);
    let path = config.path().join("providers.yaml");
    let shipped = std::fs::read_to_string(&path).unwrap();
    let url = "base_url: https://api.groq.com/openai/v1";
    let model = "model: llama-3.3-70b-versatile";
    let forms = [
        (url, format!("{url}?api%5Fkey={PLAIN}"), "credential-in-url"),
        (url, format!("{url}?a=1;key={PLAIN}"), "credential-in-url"),
        (url, format!("{url}#access_token={PLAIN}"), "credential-in-url"),
        (url, format!("{url}?x={PLAIN}"), "credential-in-url"),
        (model, format!("model: {KEYISH}"), "key-shaped-value"),
        (model, format!("{model}\n  headers: {{x-api-key: {PLAIN}}}"), "unknown-key"),
        (model, format!("{model}\n  api_kye: {PLAIN}"), "unknown-key"),
    ];
    for (from, to, code) in &forms {
        write_atomic(&path, &shipped.replacen(from, to, 1));
        let rejected = s.wait_until(|v| v["event"] == "reload.diagnostic" && v["code"] == *code);
        assert_eq!(rejected["file"], "providers.yaml", "{to}");
    }
    for answer in ["/status", "/config", "/metrics", "/route/mary"] {
        let (_, body) = s.http("GET", answer);
        assert_clean(answer, &body);
    }
    assert_eq!(s.get_json("/status")["running_version"], 1);
    let (code, stdout, stderr) = s.stop_with_stderr();
    assert_eq!(code, Some(0));
    assert_clean("the service's log", &stdout);
    assert_clean("the service's stderr", &stderr);
    // The store's own files (the audit log holds a `rejected` record a form); `files/` keeps the
    // operator's bytes of the versions stored, and none of these forms was stored.
    for file in crate::support::files_under(store.path(), None) {
        assert_clean(&file.display().to_string(), &String::from_utf8_lossy(&std::fs::read(&file).unwrap()));
    }
    let snaps = store.path().to_str().unwrap();
    for args in [&["history", "--snapshots", snaps][..], &["show", "1", "--snapshots", snaps]] {
        let out = hotconf(args, &[]);
        let all = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {all}");
        assert_clean(&format!("{args:?}"), &all);
    }
}
