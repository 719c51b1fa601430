//! `--env-file` reads standard dotenv through the real binary: CR-only and CRLF line ends, a BOM,
//! `export`, a quoted value over several lines (a PEM key); a value never reaches any output,
//! and a malformed file is reported by line number alone.

use std::path::Path;

use crate::support::{assert_no_canary, config_copy, hotconf, CANARY};

/// (exit code, stdout, stderr), after checking neither stream holds the canary.
fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = hotconf(args, &[]);
    let (stdout, stderr) = (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap());
    assert_no_canary(&stdout);
    assert_no_canary(&stderr);
    (out.status.code(), stdout, stderr)
}

/// Enables the hosted providers whose keys are in `GROQ_API_KEY` and `GEMINI_API_KEY`.
fn enable_hosted(dir: &Path) {
    let path = dir.join("providers.yaml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    for var in ["GROQ_API_KEY", "GEMINI_API_KEY"] {
        let (from, to) =
            (format!("enabled: false\n  api_key_env: {var}"), format!("enabled: true\n  api_key_env: {var}"));
        assert!(text.contains(&from), "providers.yaml has no {from:?}");
        text = text.replacen(&from, &to, 1);
    }
    std::fs::write(&path, text).unwrap();
}

#[test]
fn env_file_reads_standard_dotenv_and_never_shows_a_value() {
    let dir = config_copy();
    enable_hosted(dir.path());
    let cfg = dir.path().to_str().unwrap();
    let env_dir = tempfile::tempdir().unwrap();
    let file = env_dir.path().join("ci.env");
    let path = file.to_str().unwrap();
    let pem = format!("-----BEGIN PRIVATE KEY-----\n{CANARY}\n-----END PRIVATE KEY-----");
    let files = [
        ("CR-only line ends", format!("# CI\rexport GROQ_API_KEY={CANARY}\rGEMINI_API_KEY='{CANARY}'\r")),
        (
            "a BOM, CRLF and a multi-line PEM before the keys",
            format!(
                "\u{feff}TLS_KEY=\"{}\"\r\nGROQ_API_KEY={CANARY} # the CI key\r\nexport GEMINI_API_KEY=\"{CANARY}\"\r\n",
                pem.replace('\n', "\r\n")
            ),
        ),
        ("a key whose value spans lines", format!("GROQ_API_KEY=\"{pem}\"\nGEMINI_API_KEY='{CANARY}\n{CANARY}'\n")),
    ];
    for (what, text) in &files {
        std::fs::write(&file, text).unwrap();
        for format in ["text", "json"] {
            let (code, stdout, stderr) = run(&["validate", "--config", cfg, "--env-file", path, "--format", format]);
            assert_eq!(code, Some(0), "{what}, --format {format}: {stdout}{stderr}");
        }
    }
    // Still "set" means non-empty: an empty quoted value over a CR-only file is missing.
    std::fs::write(&file, format!("GROQ_API_KEY={CANARY}\rGEMINI_API_KEY=\"\"\r")).unwrap();
    let (code, _, stderr) = run(&["validate", "--config", cfg, "--env-file", path]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("GEMINI_API_KEY") && !stderr.contains("GROQ_API_KEY"), "{stderr}");
    // A quote left open is a usage error naming the line where the entry starts, never its text.
    std::fs::write(&file, format!("GROQ_API_KEY={CANARY}\r\nGEMINI_API_KEY=\"{CANARY}\r\n{CANARY}\r\n")).unwrap();
    let (code, _, stderr) = run(&["validate", "--config", cfg, "--env-file", path]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains(&format!("{path} line 2: expected `NAME=VALUE`")), "{stderr}");
}
