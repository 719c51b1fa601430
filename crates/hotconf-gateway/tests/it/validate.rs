//! The validator, table-driven: every rule of the gateway schema, each case snapshotted as the
//! diagnostics a person reads.

use hotconf::{MapEnv, SourceFile, Sources};
use hotconf_gateway::validate_config;

use crate::support::{assert_no_canary, shipped_config, CANARY};

/// A case: edits to the shipped config (file name → new content, or `None` to delete) and the
/// environment variables set (always with the canary as their value).
struct Case {
    name: &'static str,
    edits: &'static [(&'static str, Option<&'static str>)],
    env: &'static [&'static str],
}

const fn case(name: &'static str, edits: &'static [(&'static str, Option<&'static str>)]) -> Case {
    Case { name, edits, env: &[] }
}

fn sources(edits: &[(&str, Option<&str>)]) -> Sources {
    let mut files: Vec<SourceFile> = std::fs::read_dir(shipped_config())
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| SourceFile::new(e.file_name().to_str().unwrap(), std::fs::read(e.path()).unwrap()))
        .collect();
    for (name, content) in edits {
        files.retain(|f| f.name() != *name);
        if let Some(content) = content {
            files.push(SourceFile::new(*name, content.replace("{CANARY}", CANARY)));
        }
    }
    Sources::from_files(files)
}

/// Validates the case and renders what a person would read: the summary or every diagnostic.
fn check(case: &Case) -> String {
    let env = case.env.iter().fold(MapEnv::new(), |env, var| env.with(*var, CANARY));
    let rendered = match validate_config(sources(case.edits), &env) {
        Ok(valid) => format!("valid: {:?}", valid.config().providers().keys().collect::<Vec<_>>()),
        Err(diagnostics) => {
            let json = serde_json::to_string(&diagnostics).unwrap();
            assert_no_canary(&json);
            diagnostics.to_string()
        }
    };
    assert_no_canary(&rendered);
    assert!(!rendered.contains("AKIACANARY"), "a key leaked into a diagnostic:\n{rendered}");
    rendered
}

/// Edits that replace all three files, so a case about one file is not cluttered by the others.
macro_rules! only {
    (providers: $p:expr) => {
        &[
            ("providers.yaml", Some($p)),
            ("rate_limits.yaml", Some(LIMITS_LOCAL)),
            ("agent_chains.yaml", Some(CHAINS_LOCAL)),
        ]
    };
}

const GROQ_ENABLED: &str = "groq:\n  enabled: true\n  api_key_env: GROQ_API_KEY\n  model: m\n  base_url: https://api.groq.com/openai/v1\nlocal:\n  model: m\n  base_url: http://127.0.0.1:1\n";
const CHAINS_LOCAL: &str = "mary:\n  primary: local\n";
const LIMITS_LOCAL: &str = "local:\n  rpm: 1\n  burst: 1\n  tokens_per_minute: 1\n";

const VALID: &[Case] = &[
    case("shipped", &[]),
    Case {
        name: "enabled provider with its key set",
        edits: &[("providers.yaml", Some(GROQ_ENABLED)), ("rate_limits.yaml", Some(LIMITS_LOCAL)), ("agent_chains.yaml", Some("mary:\n  primary: groq\n  fallbacks: [local]\n"))],
        env: &["GROQ_API_KEY"],
    },
    case("yml ending", &[("rate_limits.yaml", None), ("rate_limits.yml", Some("local:\n  rpm: 5\n  burst: 1\n  tokens_per_minute: 10\n"))]),
    case("empty maps", &[("agent_chains.yaml", Some("{}\n")), ("rate_limits.yaml", Some("{}\n"))]),
    case("decimal timeout", &[("providers.yaml", Some("local:\n  model: m\n  base_url: http://h\n  timeout_seconds: 2.5\n  connect_timeout_seconds: 0.5\n")), ("rate_limits.yaml", Some(LIMITS_LOCAL)), ("agent_chains.yaml", Some(CHAINS_LOCAL))]),
];

const INVALID: &[Case] = &[
    // The seed's cases.
    case("seed rpm zero", &[("rate_limits.yaml", Some("local:\n  rpm: 0\n  burst: 20\n  tokens_per_minute: 100\n"))]),
    case("seed unknown provider in chain", &[("agent_chains.yaml", Some("mary:\n  primary: local\n  fallbacks:\n    - mistral\n"))]),
    case("seed missing api key", only!(providers: GROQ_ENABLED)),
    case("seed yaml syntax error", &[("rate_limits.yaml", Some("local:\n  rpm: [30\n  burst: 5\n"))]),
    // Types, keys, shapes.
    case("wrong types", &[("rate_limits.yaml", Some("local:\n  rpm: \"30\"\n  burst: 2.5\n  tokens_per_minute: true\nlocal-small: 7\n"))]),
    case("unknown key typo", &[("rate_limits.yaml", Some("local:\n  rpm: 30\n  burts: 5\n  tokens_per_minute: 100\n"))]),
    case("duplicate key", &[("rate_limits.yaml", Some("local:\n  rpm: 30\n  burst: 5\n  tokens_per_minute: 100\nlocal:\n  rpm: 60\n  burst: 5\n  tokens_per_minute: 100\n"))]),
    case("duplicate nested key", &[("rate_limits.yaml", Some("local:\n  rpm: 30\n  burst: 5\n  rpm: 60\n  tokens_per_minute: 100\n"))]),
    case("empty file", &[("agent_chains.yaml", Some(""))]),
    case("only comments", &[("agent_chains.yaml", Some("# nothing yet\n"))]),
    case("several documents", &[("agent_chains.yaml", Some("mary:\n  primary: local\n---\nbob:\n  primary: local\n"))]),
    case("top level is a list", &[("agent_chains.yaml", Some("- mary\n- bob\n"))]),
    case("control character", &[("agent_chains.yaml", Some("mary:\n  primary: local\u{0}\n"))]),
    case("deep nesting", &[("agent_chains.yaml", Some("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n"))]),
    case("alias bomb", &[("agent_chains.yaml", Some("a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"))]),
    // Values.
    case("negative and zero limits", &[("rate_limits.yaml", Some("local:\n  rpm: -1\n  burst: 0\n  tokens_per_minute: 0\n"))]),
    case("missing limit keys", &[("rate_limits.yaml", Some("local:\n  rpm: 10\n"))]),
    case("limits for unknown provider", &[("rate_limits.yaml", Some("mistral:\n  rpm: 1\n  burst: 1\n  tokens_per_minute: 1\n"))]),
    case("invalid names", &[("agent_chains.yaml", Some("\"bad name\":\n  primary: local\n"))]),
    // Chains.
    case("disabled provider in chain", &[("agent_chains.yaml", Some("mary:\n  primary: groq\n  fallbacks: [local]\n"))]),
    case("provider repeated in chain", &[("agent_chains.yaml", Some("mary:\n  primary: local\n  fallbacks:\n    - local-small\n    - local\n"))]),
    case("chain without primary", &[("agent_chains.yaml", Some("mary:\n  fallbacks: [local]\n"))]),
    // Providers and secrets.
    case("inline api key", only!(providers: "local:\n  model: m\n  base_url: http://h\n  api_key: {CANARY}\n")),
    case("inline secrets in any case", only!(providers: "local:\n  model: m\n  base_url: http://h\n  API_KEY: {CANARY}\n  Token: {CANARY}\n  apiKey: {CANARY}\n  Password: [{CANARY}]\n  client_secret: {CANARY}\n")),
    case("key pasted into api_key_env", only!(providers: "local:\n  model: m\n  base_url: http://h\n  api_key_env: {CANARY}\n")),
    case("aws key pasted into api_key_env", only!(providers: "local:\n  model: m\n  base_url: http://h\n  api_key_env: AKIACANARY7F3A9C1E00\n")),
    case("credentials in base_url", only!(providers: "local:\n  model: m\n  base_url: https://user:{CANARY}@h/v1\n")),
    case("secret query parameter in base_url", only!(providers: "local:\n  model: m\n  base_url: https://h/v1?api_key={CANARY}\nlocal-b:\n  model: m\n  base_url: \"http://h/v1?x=1&token=canary\"\n")),
    case("unknown provider key lists only real keys", only!(providers: "local:\n  model: m\n  base_url: http://h\n  colour: red\n")),
    case("bad provider fields", only!(providers: "local:\n  enabled: yes please\n  model: \"\"\n  base_url: ftp://h\n  timeout_seconds: 0\n  max_retries: 99\n  modle: x\n")),
    case("connect timeout over timeout", only!(providers: "local:\n  model: m\n  base_url: http://h\n  timeout_seconds: 5\n  connect_timeout_seconds: 10\n")),
    // Files.
    case("missing file", &[("providers.yaml", None)]),
    case("unexpected file", &[("settings.yaml", Some("a: 1\n"))]),
    case("yaml and yml", &[("providers.yml", Some("local:\n  model: m\n  base_url: http://h\n"))]),
    case("every file broken", &[("providers.yaml", Some("local: [\n")), ("rate_limits.yaml", Some("")), ("agent_chains.yaml", None)]),
];

#[test]
fn valid_configs() {
    for case in VALID {
        let out = check(case);
        assert!(out.starts_with("valid"), "{}: {out}", case.name);
    }
}

#[test]
fn invalid_configs() {
    for case in INVALID {
        let out = check(case);
        assert!(!out.starts_with("valid"), "{} should be invalid", case.name);
        insta::assert_snapshot!(case.name.replace(' ', "_"), out, case.name);
    }
}

#[test]
fn oversized_file_is_refused_before_parsing() {
    // Over the file's cap (1 MiB), under the bundle's (2 MiB) with the other two files.
    let big = format!("local:\n  model: m\n  base_url: http://h\n  # {}\n", "x".repeat(1536 * 1024));
    let sources = sources(&[]);
    let files = sources.files().iter().filter(|f| f.name() != "providers.yaml").cloned();
    let sources = Sources::from_files(files.chain([SourceFile::new("providers.yaml", big)]));
    let start = std::time::Instant::now();
    let err = validate_config(sources, &MapEnv::new()).unwrap_err();
    assert!(start.elapsed() < std::time::Duration::from_secs(1));
    assert_eq!(
        err.to_string().lines().next().unwrap(),
        "providers.yaml: file is 1572908 bytes, over the 1048576-byte limit"
    );
}

#[test]
fn diagnostics_as_json() {
    let err = validate_config(sources(INVALID[0].edits), &MapEnv::new()).unwrap_err();
    insta::assert_json_snapshot!(err);
}

#[test]
fn invalid_utf8_names_its_line() {
    let mut files: Vec<SourceFile> =
        sources(&[]).files().iter().filter(|f| f.name() != "agent_chains.yaml").cloned().collect();
    files.push(SourceFile::new("agent_chains.yaml", b"mary:\n  primary: loc\xffal\n".to_vec()));
    let err = validate_config(Sources::from_files(files), &MapEnv::new()).unwrap_err();
    assert_eq!(err.to_string(), "agent_chains.yaml:2:1: file is not valid UTF-8\n  help: save the file as UTF-8");
}
