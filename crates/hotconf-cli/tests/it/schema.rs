//! `hotconf schema`: the gateway's JSON Schemas, the committed copies editors use, and whether
//! a JSON Schema validator (boon) judges the shipped files and broken edits as hotconf does.

use std::path::PathBuf;

use hotconf::{MapEnv, SourceFile, Sources};
use hotconf_gateway::validate_config;
use serde_json::Value;

use crate::support::{hotconf, shipped_config};

const FILES: [&str; 3] = ["agent_chains", "providers", "rate_limits"];
const REGENERATE: &str = "regenerate them with `cargo run -- schema --write schemas` and commit the result";

fn committed_schemas() -> PathBuf {
    crate::support::workspace_root().join("schemas")
}

/// `hotconf schema ARGS…`: exit code, stdout, stderr.
fn schema(args: &[&str]) -> (Option<i32>, String, String) {
    let out = hotconf(&[&["schema"], args].concat(), &[]);
    (out.status.code(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

fn shipped(stem: &str) -> String {
    std::fs::read_to_string(shipped_config().join(format!("{stem}.yaml"))).unwrap()
}

/// A schema checker for one file's committed schema.
struct Checker {
    schemas: boon::Schemas,
    index: boon::SchemaIndex,
}

impl Checker {
    fn new(stem: &str) -> Self {
        let text = std::fs::read_to_string(committed_schemas().join(format!("{stem}.schema.json"))).unwrap();
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["$schema"], "https://json-schema.org/draft/2020-12/schema");
        let (mut schemas, mut compiler) = (boon::Schemas::new(), boon::Compiler::new());
        let url = format!("file:///schemas/{stem}.schema.json");
        compiler.add_resource(&url, doc).unwrap();
        let index = compiler.compile(&url, &mut schemas).unwrap();
        Checker { schemas, index }
    }

    /// The YAML text, as JSON, checked: `Err` holds the validator's message.
    fn check(&self, yaml: &str) -> Result<(), String> {
        let value: Value = yaml_serde::from_str(yaml).expect("the test's YAML parses");
        self.schemas.validate(&value, self.index).map_err(|e| format!("{e}"))
    }
}

#[test]
fn committed_schemas_are_what_hotconf_schema_prints() {
    let mut all = serde_json::Map::new();
    for stem in FILES {
        let path = committed_schemas().join(format!("{stem}.schema.json"));
        let committed = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{} is missing ({e}): {REGENERATE}", path.display()));
        let (code, printed, stderr) = schema(&[stem]);
        assert_eq!((code, stderr.as_str()), (Some(0), ""));
        assert!(
            committed == printed,
            "{} differs from what `hotconf schema {stem}` prints (the gateway's types, or the file, changed): {REGENERATE}",
            path.display()
        );
        // The file name works as well as the stem.
        assert_eq!(schema(&[&format!("{stem}.yaml")]).1, printed);
        all.insert(format!("{stem}.yaml"), serde_json::from_str(&printed).unwrap());
    }
    // No FILE: the three in one object keyed by file name.
    let (code, printed, _) = schema(&[]);
    assert_eq!(code, Some(0));
    assert_eq!(serde_json::from_str::<Value>(&printed).unwrap(), Value::Object(all));
}

#[test]
fn shipped_files_name_their_committed_schema_on_the_first_line() {
    for stem in FILES {
        let text = shipped(stem);
        let first = text.lines().next().unwrap();
        assert_eq!(first, format!("# yaml-language-server: $schema=../schemas/{stem}.schema.json"));
        let target = shipped_config().join(first.split_once("$schema=").unwrap().1);
        assert!(target.is_file(), "{stem}.yaml's modeline points at {}, which does not exist", target.display());
    }
}

#[test]
fn write_creates_the_three_files_and_an_unknown_file_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = schema(&["--write", dir.path().to_str().unwrap()]);
    assert_eq!((code, stdout.as_str()), (Some(0), ""));
    assert_eq!(stderr.lines().count(), 3, "{stderr}");
    for stem in FILES {
        let written = std::fs::read_to_string(dir.path().join(format!("{stem}.schema.json"))).unwrap();
        assert_eq!(written, schema(&[stem]).1);
    }

    let (code, stdout, stderr) = schema(&["rate_limit"]);
    assert_eq!((code, stdout.as_str()), (Some(2), ""));
    assert_eq!(
        stderr,
        "error: no config file `rate_limit`: the gateway's files are agent_chains, providers, rate_limits\n"
    );

    let missing = dir.path().join("missing");
    let (code, _, stderr) = schema(&["--write", missing.to_str().unwrap()]);
    assert_eq!(code, Some(3));
    assert!(
        stderr.starts_with(&format!("error: cannot write {}", missing.join("agent_chains.schema.json").display())),
        "{stderr}"
    );
}

/// The shipped files, and edits of them: the schema and hotconf's validation agree on each, and
/// the schema's message names the place.
#[test]
fn schema_and_validation_agree_on_the_shipped_files_and_broken_edits() {
    // (file, replace, with, None = accepted / Some(fragment of the schema's message) /
    // Some("") = only validation refuses: a rule across keys or files, beyond one file's schema)
    let cases: &[(&str, &str, &str, Option<&str>)] = &[
        ("agent_chains", "primary: local\n", "primary: grok\n", Some("")),
        ("providers", "connect_timeout_seconds: 2", "connect_timeout_seconds: 61", Some("")),
        // JSON Schema counts 600.0 as an integer; serde's integer does not.
        ("rate_limits", "rpm: 600", "rpm: 600.0", Some("")),
        ("rate_limits", "", "", None),
        ("agent_chains", "", "", None),
        ("providers", "", "", None),
        ("rate_limits", "rpm: 600", "rpm: 0", Some("at '/local/rpm': must be >=1, but got 0")),
        ("rate_limits", "rpm: 600", "rmp: 600", Some("at '/local': additionalProperties 'rmp' not allowed")),
        ("rate_limits", "rpm: 600", "rpm: '600'", Some("at '/local/rpm': want integer, but got string")),
        ("rate_limits", "rpm: 600", "rpm: 4294967296", Some("at '/local/rpm': must be <=4294967295")),
        ("rate_limits", "burst: 20", "burst: -1", Some("at '/local/burst': must be >=1")),
        ("rate_limits", "local:", "local host:", Some("additionalProperties 'local host' not allowed")),
        (
            "agent_chains",
            "primary: local\n  fallbacks:\n    - local-small",
            "fallbacks: []",
            Some("missing properties 'primary'"),
        ),
        ("agent_chains", "primary: local-small", "primary: ''", Some("at '/winston/primary': length must be >=1")),
        (
            "agent_chains",
            "fallbacks: []",
            "fallbacks: local",
            Some("at '/james/fallbacks': want array, but got string"),
        ),
        ("providers", "timeout_seconds: 60", "timeout_seconds: 0", Some("at '/local/timeout_seconds'")),
        ("providers", "timeout_seconds: 30", "timeout_seconds: 0.5", None),
        ("providers", "timeout_seconds: 60", "timeout_seconds: 3601", Some("at '/local/timeout_seconds'")),
        ("providers", "max_retries: 1", "max_retries: 0", None),
        ("providers", "max_retries: 1", "max_retries: 11", Some("at '/local/max_retries': must be <=10")),
        (
            "providers",
            "enabled: true\n  model: llama",
            "enabled: 'yes'\n  model: llama",
            Some("at '/local/enabled': want boolean"),
        ),
        ("providers", "base_url: http://127.0.0.1", "base_url: ftp://127.0.0.1", Some("at '/local/base_url'")),
        ("providers", "api_key_env: GROQ_API_KEY", "api_key_env: groq_key", Some("at '/groq/api_key_env'")),
        (
            "providers",
            "max_retries: 1",
            "max_retries: 1\n  api_key: placeholder",
            Some("additionalProperties 'api_key' not allowed"),
        ),
        ("providers", "  model: llama3.1:8b\n", "", Some("at '/local': missing properties 'model'")),
    ];
    let checkers: Vec<(&str, Checker)> = FILES.iter().map(|&stem| (stem, Checker::new(stem))).collect();
    for &(file, from, to, expected) in cases {
        let edited = shipped(file).replacen(from, to, 1);
        assert!(from.is_empty() || edited != shipped(file), "`{from}` is not in {file}.yaml");
        let by_schema = checkers.iter().find(|(s, _)| *s == file).unwrap().1.check(&edited);
        let sources = Sources::from_files(FILES.iter().map(|&stem| {
            SourceFile::new(format!("{stem}.yaml"), if stem == file { edited.clone() } else { shipped(stem) })
        }));
        let by_hotconf = validate_config(sources, &MapEnv::new()).map(drop).map_err(|d| d.to_string());
        let case = format!("{file}.yaml: `{from}` -> `{to}`");
        match expected {
            None => {
                assert_eq!(by_schema, Ok(()), "{case}");
                assert_eq!(by_hotconf, Ok(()), "{case}");
            }
            Some("") => {
                assert_eq!(by_schema, Ok(()), "{case}");
                assert!(by_hotconf.is_err(), "{case}: hotconf accepts it");
            }
            Some(fragment) => {
                let message = by_schema.expect_err(&case);
                assert!(message.contains(fragment), "{case}: the schema said:\n{message}");
                assert!(by_hotconf.is_err(), "{case}: the schema refuses what hotconf accepts");
            }
        }
    }
}
