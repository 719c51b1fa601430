//! `hotconf validate` through the real binary: exit codes, text and JSON output, no leaked secret.

use crate::support::{assert_no_canary, config_copy, hotconf, shipped_config, CANARY};

#[test]
fn shipped_config_is_valid_with_no_environment() {
    let config = shipped_config();
    let out = hotconf(&["validate", "--config", config.to_str().unwrap()], &[]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.starts_with("ok: "), "{stdout}");
    assert!(stdout.contains("3 files, 5 providers (2 enabled), 3 agents, 5 rate limits, bundle "), "{stdout}");
}

#[test]
fn invalid_config_exits_1_with_every_diagnostic() {
    let dir = config_copy();
    std::fs::write(dir.path().join("rate_limits.yaml"), "local:\n  rpm: 0\n  burts: 5\n  tokens_per_minute: 1\n")
        .unwrap();
    let providers = std::fs::read_to_string(dir.path().join("providers.yaml")).unwrap();
    let providers = providers.replacen(
        "enabled: false\n  api_key_env: GROQ_API_KEY",
        "enabled: true\n  api_key_env: GROQ_API_KEY",
        1,
    );
    std::fs::write(dir.path().join("providers.yaml"), providers).unwrap();
    let out = hotconf(&["validate", "--config", dir.path().to_str().unwrap()], &[("GEMINI_API_KEY", CANARY)]);
    // Diagnostics are for a person: stderr; nothing is a result.
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "");
    let stdout = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1));
    // One problem per mistake (`burts` is not also a missing `burst`), each at its value.
    let dir_name = dir.path().display().to_string();
    let headers: Vec<&str> = stdout.lines().filter(|l| l.starts_with("error") || l.contains(" --> ")).collect();
    assert_eq!(
        headers,
        [
            "error[missing-env-var]: environment variable GROQ_API_KEY is not set or empty".to_owned(),
            format!("  --> {dir_name}/providers.yaml:22:16"),
            "error[not-positive]: must be a positive integer, got 0".to_owned(),
            format!(" --> {dir_name}/rate_limits.yaml:2:8"),
            "error[unknown-key]: unknown key `burts`".to_owned(),
            format!(" --> {dir_name}/rate_limits.yaml:3:3"),
            format!("error: {dir_name} is invalid: 3 problems"),
        ]
    );
    assert_no_canary(&stdout);

    let out = hotconf(&["validate", "--config", dir.path().to_str().unwrap(), "--format", "json"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let objects: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(objects.len(), 3);
    assert_eq!(objects[1]["path"], "local.rpm");
    assert_eq!((&objects[1]["line"], &objects[1]["column"]), (&serde_json::json!(2), &serde_json::json!(8)));
    assert_eq!(objects[1]["code"], "not-positive");
}

#[test]
fn env_var_value_never_printed_even_when_set() {
    let dir = config_copy();
    let providers = std::fs::read_to_string(dir.path().join("providers.yaml")).unwrap();
    std::fs::write(dir.path().join("providers.yaml"), providers.replace("enabled: false", "enabled: true")).unwrap();
    let env = [("GROQ_API_KEY", CANARY), ("GEMINI_API_KEY", CANARY), ("CEREBRAS_API_KEY", CANARY)];
    for format in ["text", "json"] {
        let out = hotconf(&["validate", "--config", dir.path().to_str().unwrap(), "--format", format], &env);
        assert_eq!(out.status.code(), Some(0));
        assert_no_canary(&String::from_utf8_lossy(&out.stdout));
        assert_no_canary(&String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn missing_directory_and_usage_errors() {
    let out = hotconf(&["validate", "--config", "/nonexistent/hotconf"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "");
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "error: cannot read config directory /nonexistent/hotconf: No such file or directory (os error 2)\n"
    );
    let out = hotconf(&["validate", "--format", "xml"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let out = hotconf(&["frobnicate"], &[]);
    assert_eq!(out.status.code(), Some(2));
}
