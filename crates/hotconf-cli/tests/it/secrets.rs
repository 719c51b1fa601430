//! Secrets never leave the process (issue 8, part 5), end to end through the real binary, each
//! with a canary value: not in stdout or stderr at any log level, not in the store's own files
//! (audit log, manifests, state files; `files/` holds the operator's bytes as they wrote them),
//! not in any admin answer, not in the Slack alert.

use std::path::Path;

use crate::service::{fake_slack, write_atomic, Service, DEADLINE};
use crate::support::{assert_no_canary, config_copy, files_under, hotconf, CANARY};

/// An AWS access key id (the `AKIA…` format): upper case, so a valid variable *name*.
const AWS_CANARY: &str = "AKIACANARY7F3A9C1E00";

fn assert_clean(what: &str, text: &str) {
    assert_no_canary(text);
    assert!(!text.contains(AWS_CANARY), "a key leaked into {what}:\n{text}");
    assert!(!text.contains("CANARY"), "part of a key leaked into {what}:\n{text}");
}

/// The store's files other than the operator's own config bytes under `vN/files/`.
fn assert_store_clean(store: &Path) {
    for file in files_under(store, Some("files")) {
        assert_clean(&file.display().to_string(), &String::from_utf8_lossy(&std::fs::read(&file).unwrap()));
    }
}

/// Every admin answer a person may fetch while the bad content is on disk.
fn assert_answers_clean(s: &Service) {
    for path in ["/status", "/config", "/metrics", "/route/mary"] {
        let (_, body) = s.http("GET", path);
        assert_clean(path, &body);
    }
}

fn set_providers(config: &Path, from: &str, to: &str) {
    let path = config.join("providers.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from));
    write_atomic(&path, &text.replacen(from, to, 1));
}

/// With `RUST_LOG=trace`, the HTTP client and TLS stack would log the webhook URL; only
/// hotconf's own events are written. The rejected content is a key pasted into `api_key_env`,
/// which is refused without being echoed: not in the log, the audit log, `/status` or the alert.
#[test]
fn no_log_level_prints_the_webhook_url_or_a_key_in_api_key_env() {
    let (port, posts) = fake_slack();
    let webhook = format!("http://127.0.0.1:{port}/services/T000/B000/{CANARY}");
    let config = config_copy();
    let store = tempfile::tempdir().unwrap();
    let env = [("SLACK_WEBHOOK_URL", webhook.as_str()), ("RUST_LOG", "trace")];
    let s = Service::start(config.path(), store.path(), &env);
    set_providers(config.path(), "api_key_env: GROQ_API_KEY", &format!("api_key_env: {AWS_CANARY}"));
    let alert = posts.recv_timeout(DEADLINE).expect("an alert was posted");
    assert_clean("the Slack alert", &alert);
    assert!(alert.contains("this looks like a key, not a variable name (value not shown)"), "{alert}");
    // The summary line is written after `/status` is updated; `alert.sent` may come before or after it.
    s.wait_until(|v| v["event"] == "reload.rejected" && v["problems"].is_number());
    let deadline = std::time::Instant::now() + DEADLINE;
    while !s.raw.lock().unwrap().contains(r#""event":"alert.sent""#) {
        assert!(std::time::Instant::now() < deadline, "no alert.sent within {DEADLINE:?}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let status = s.get_json("/status");
    assert_eq!(status["last_attempt"]["result"], "rejected", "{status}");
    assert_eq!(status["last_attempt"]["diagnostics"][0]["code"], "key-in-env-name", "{status}");
    assert_answers_clean(&s);
    let (code, stdout, stderr) = s.stop_with_stderr();
    assert_eq!(code, Some(0));
    assert_clean("stdout", &stdout);
    assert_clean("stderr", &stderr);
    assert!(!stdout.contains(&format!("127.0.0.1:{port}")), "webhook address logged:\n{stdout}");
    assert!(stdout.contains(r#""event":"alert.sent""#));
    assert_store_clean(store.path());
}

/// A `base_url` with a credential in its query string or its userinfo is refused in validation
/// (pointing at `api_key_env`), at startup, on a live change and by `hotconf validate`.
#[test]
fn a_credential_in_base_url_is_refused_and_never_shown() {
    let good = "base_url: https://api.groq.com/openai/v1";
    for bad in [
        format!("base_url: https://api.groq.com/openai/v1?api_key={CANARY}"),
        format!("base_url: \"https://api.groq.com/openai/v1?model=x&token={CANARY}\""),
        format!("base_url: https://me:{CANARY}@api.groq.com/openai/v1"),
    ] {
        // `hotconf validate` and a refused startup.
        let config = config_copy();
        set_providers(config.path(), good, &bad);
        let store = tempfile::tempdir().unwrap();
        let out = hotconf(&["validate", "--config", config.path().to_str().unwrap()], &[]);
        let stdout = String::from_utf8(out.stdout).unwrap() + &String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(1), "{stdout}");
        assert!(
            stdout.contains("providers.yaml:24:13: groq.base_url: credentials in a URL are not allowed"),
            "{stdout}"
        );
        assert!(stdout.contains("`api_key_env`"), "{stdout}");
        assert_clean("validate", &stdout);
        let err = Service::try_start(config.path(), store.path(), &[], 50).err().expect("refused to start");
        assert_eq!(err.0, 1);
        assert_clean("output", &err.1);
        let invalid: serde_json::Value = serde_json::from_str(err.1.lines().next().unwrap()).unwrap();
        assert_eq!(invalid["path"], "groq.base_url", "{}", err.1);
        assert!(invalid["message"].as_str().unwrap().contains("credentials in a URL are not allowed"), "{}", err.1);
        assert!(invalid["help"].as_str().unwrap().contains("`api_key_env`"), "{}", err.1);
    }

    // A live change: rejected, the running config (and `GET /config`) keeps the clean URL.
    let config = config_copy();
    let store = tempfile::tempdir().unwrap();
    let s = Service::start(config.path(), store.path(), &[]);
    set_providers(config.path(), good, &format!("base_url: https://api.groq.com/openai/v1?api_key={CANARY}"));
    let rejected = s.wait_until(|v| v["event"] == "reload.diagnostic" && v["code"] == "credential-in-url");
    assert_eq!((rejected["file"].as_str(), rejected["path"].as_str()), (Some("providers.yaml"), Some("groq.base_url")));
    assert_eq!((rejected["line"].as_u64(), rejected["column"].as_u64()), (Some(24), Some(13)));
    assert_eq!(s.get_json("/config")["config"]["providers"]["groq"]["base_url"], "https://api.groq.com/openai/v1");
    assert_answers_clean(&s);
    let (code, stdout, stderr) = s.stop_with_stderr();
    assert_eq!(code, Some(0));
    assert_clean("stdout", &stdout);
    assert_clean("stderr", &stderr);
    assert_store_clean(store.path());
}

/// `HOTCONF_ADMIN_TOKEN` set but empty (or blank) would silently turn authentication off: the
/// service refuses to start (exit 3) before touching the store.
#[test]
fn an_empty_admin_token_refuses_to_start() {
    let config = config_copy();
    for token in ["", "  "] {
        let store = tempfile::tempdir().unwrap();
        let (code, output) =
            Service::try_start(config.path(), store.path(), &[("HOTCONF_ADMIN_TOKEN", token)], 50).err().unwrap();
        assert_eq!(code, 3, "{output}");
        // Printed once: one JSON event (the service logs JSON), nothing on stderr.
        let fatal: serde_json::Value = serde_json::from_str(output.trim_end()).expect("one JSON line");
        assert_eq!(fatal["event"], "fatal");
        assert_eq!(
            fatal["error"],
            "HOTCONF_ADMIN_TOKEN is set but empty, which would leave the admin endpoint without \
             authentication; set it to a token, unset it to run without one, or pass --admin-addr off"
        );
        assert_eq!(std::fs::read_dir(store.path()).unwrap().count(), 0, "the store was touched");
    }
    // A real token works, and is required.
    let store = tempfile::tempdir().unwrap();
    let s = Service::start(config.path(), store.path(), &[("HOTCONF_ADMIN_TOKEN", CANARY)]);
    assert_eq!(s.http("GET", "/status").0, 401);
    let (code, stdout, stderr) = s.stop_with_stderr();
    assert_eq!(code, Some(0));
    assert_clean("stdout", &stdout);
    assert_clean("stderr", &stderr);
}
