//! The environment `validate` and `diff --against` check against: the process environment, a
//! dotenv-style file of names (`--env-file`), or none at all (`--no-env`, every check skipped
//! and named). Only variable *names* ever leave this module; a value read from a file is reduced
//! to "set and non-empty" on the line it is read and never kept.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Mutex;

use hotconf::{EnvLookup, ProcessEnv};
use hotconf::{FileBody, SourceFile};

/// The largest `--env-file` read (a dotenv file is a few hundred bytes).
pub const MAX_ENV_FILE_BYTES: u64 = 1024 * 1024;

/// The options that choose the environment.
#[derive(Debug, Clone, clap::Args)]
pub struct EnvArgs {
    /// Skip the checks that need the environment (API key variables), as if every variable were
    /// set, and name the skipped variables on stderr: for CI without production secrets.
    #[arg(long, conflicts_with = "env_file")]
    pub no_env: bool,
    /// Check variables against the names in this dotenv-style file (`KEY=VALUE` lines, `#`
    /// comments, optional `export `) instead of the process environment; a name counts as set
    /// when its value is non-empty. Values are never printed.
    #[arg(long, value_name = "FILE", value_parser = parse_env_file)]
    pub env_file: Option<EnvFile>,
}

/// The names an env file sets, each with whether its value is non-empty. No value is kept.
#[derive(Debug, Clone)]
pub struct EnvFile {
    names: BTreeMap<String, bool>,
}

/// An environment that answers every lookup as set, recording the names asked.
#[derive(Debug, Default)]
pub struct SkippedEnv {
    asked: Mutex<BTreeSet<String>>,
}

impl EnvLookup for SkippedEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.asked.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_owned());
        Some("(skipped)".to_owned())
    }
}

impl EnvLookup for EnvFile {
    fn var(&self, name: &str) -> Option<String> {
        // A stand-in, never the file's value: validation only asks "set and non-empty".
        match self.names.get(name) {
            Some(true) => Some("(set in the env file)".to_owned()),
            Some(false) => Some(String::new()),
            None => None,
        }
    }
}

/// The environment chosen by the options.
pub enum Env {
    /// The process environment.
    Process,
    /// `--env-file`.
    File(EnvFile),
    /// `--no-env`.
    Skipped(SkippedEnv),
}

impl Env {
    pub fn from_args(args: EnvArgs) -> Env {
        match (args.no_env, args.env_file) {
            (true, _) => Env::Skipped(SkippedEnv::default()),
            (false, Some(file)) => Env::File(file),
            (false, None) => Env::Process,
        }
    }

    pub fn lookup(&self) -> &dyn EnvLookup {
        match self {
            Env::Process => &ProcessEnv,
            Env::File(f) => f,
            Env::Skipped(s) => s,
        }
    }

    /// With `--no-env`, prints on stderr which checks were skipped (names only).
    pub fn note_skipped(&self) {
        let Env::Skipped(skipped) = self else { return };
        let asked = skipped.asked.lock().unwrap_or_else(|e| e.into_inner());
        if asked.is_empty() {
            eprintln!("note: no environment checks to skip (--no-env)");
        } else {
            let names: Vec<&str> = asked.iter().map(String::as_str).collect();
            let s = if asked.len() == 1 { "" } else { "s" };
            eprintln!("note: skipped {} environment check{s} (--no-env): {}", asked.len(), names.join(", "));
        }
    }
}

/// clap's parser for `--env-file`: reads the file (bounded, never blocking on a FIFO) and keeps
/// the names. Errors name the file and the line, never the line's text (it may hold a value).
pub fn parse_env_file(arg: &str) -> Result<EnvFile, String> {
    let path = PathBuf::from(arg);
    let file =
        SourceFile::read(&path, MAX_ENV_FILE_BYTES).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let bytes = match file.body() {
        FileBody::Bytes(bytes) => bytes.clone(),
        FileBody::TooLarge { size, .. } => {
            return Err(format!(
                "{} is {size} bytes; an env file may have {MAX_ENV_FILE_BYTES} at most",
                path.display()
            ))
        }
        FileBody::NotRegular { kind } => return Err(format!("{} is {kind}, not a regular file", path.display())),
        FileBody::Unreadable { kind } => return Err(format!("cannot read {}: {kind}", path.display())),
    };
    let text = String::from_utf8(bytes).map_err(|_| format!("{} is not UTF-8", path.display()))?;
    parse_env_text(&text).map_err(|line| {
        format!("{} line {line}: expected `NAME=VALUE`, `export NAME=VALUE` or a `#` comment", path.display())
    })
}

/// The names set by dotenv-style `text`, or the 1-based number of the first line that is not
/// `[export ]NAME=VALUE`, a comment or blank.
fn parse_env_text(text: &str) -> Result<EnvFile, usize> {
    let mut names = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map(str::trim_start).unwrap_or(line);
        let Some((name, value)) = line.split_once('=') else { return Err(i + 1) };
        let name = name.trim();
        if !is_env_name(name) {
            return Err(i + 1);
        }
        names.insert(name.to_owned(), value_is_set(value));
    }
    Ok(EnvFile { names })
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether a dotenv value is non-empty: `""`, `''` and an unquoted `# comment` alone are empty.
fn value_is_set(value: &str) -> bool {
    let value = value.trim();
    for quote in ['"', '\''] {
        if let Some(inner) = value.strip_prefix(quote) {
            return !inner.strip_suffix(quote).unwrap_or(inner).is_empty();
        }
    }
    !value.is_empty() && !value.starts_with('#')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_lines() {
        let file = parse_env_text(
            "# comment\n\nGROQ_API_KEY=sk-x\nexport GEMINI_API_KEY = \"y\"\nEMPTY=\nQUOTED_EMPTY=''\nC=# c\n",
        )
        .unwrap();
        assert!(file.is_set("GROQ_API_KEY"));
        assert!(file.is_set("GEMINI_API_KEY"));
        assert!(!file.is_set("EMPTY"));
        assert!(!file.is_set("QUOTED_EMPTY"));
        assert!(!file.is_set("C"));
        assert!(!file.is_set("UNLISTED"));
        assert_eq!(parse_env_text("A=1\nnot a pair\n").unwrap_err(), 2);
        assert_eq!(parse_env_text("1A=1\n").unwrap_err(), 1);
        assert_eq!(parse_env_text("A B=1\n").unwrap_err(), 1);
    }
}
