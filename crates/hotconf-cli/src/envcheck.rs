//! The environment `validate` and `diff --against` check against: the process environment, a
//! dotenv-style file of names (`--env-file`), or none at all (`--no-env`, every check skipped
//! and named). Only variable *names* ever leave this module; a value read from a file is reduced
//! to "set and non-empty" on the line it is read and never kept.
//!
//! The file is standard dotenv, parsed by `dotenvy` (the maintained fork of the `dotenv` crate)
//! over bytes this module read itself, bounded and never blocking; dotenvy's iterator never
//! touches the process environment's variables (it reads them only to expand `$NAME`).

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};
use std::path::PathBuf;
use std::rc::Rc;
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
    /// Check variables against the names in this dotenv file (`KEY=VALUE` lines, `#` comments,
    /// optional `export `, quoted values over several lines; LF, CRLF or CR line ends; a BOM)
    /// instead of the process environment; a name counts as set when its value is non-empty.
    /// Values are never printed.
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
        format!(
            "{} line {line}: expected `NAME=VALUE`, `export NAME=VALUE` or a `#` comment, with every quote closed",
            path.display()
        )
    })
}

/// The names set by dotenv `text`, each with whether its value is non-empty, or the 1-based
/// number of the line where the first entry dotenvy cannot parse starts. dotenvy's error holds
/// the entry's text, which may be a secret: only the line number leaves this function.
fn parse_env_text(text: &str) -> Result<EnvFile, usize> {
    // dotenvy skips a BOM only when it loads the process environment, and ends lines at LF only
    // (CRLF is trimmed per line): a CR-only file would be one long line.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let reader = LineByLine::new(text.as_bytes());
    let lines_read = reader.lines_begun();
    let mut names = BTreeMap::new();
    let mut entries_end = 0;
    for entry in dotenvy::from_read_iter(reader) {
        match entry {
            Ok((name, value)) => {
                names.insert(name, !value.is_empty());
                entries_end = lines_read.get();
            }
            Err(_) => return Err(entry_start(&text, entries_end, lines_read.get())),
        }
    }
    Ok(EnvFile { names })
}

/// The line where the entry that ends on line `last` starts: after line `after` (where the
/// previous entry ended), the first that is not blank or a comment (the lines dotenvy skips).
fn entry_start(text: &str, after: usize, last: usize) -> usize {
    text.lines()
        .enumerate()
        .skip(after)
        .take(last.saturating_sub(after))
        .find(|(_, line)| {
            let line = line.trim_start();
            !line.is_empty() && !line.starts_with('#')
        })
        .map_or(last.max(1), |(i, _)| i + 1)
}

/// A reader that hands out at most one line per `read`, counting the lines begun. dotenvy reads
/// through a `BufReader`, which reads again only once its buffer is used up, and dotenvy's
/// iterator stops after the entry it yields or fails on: so the count is the line that entry
/// ends on, the line number dotenvy does not give.
struct LineByLine<'a> {
    rest: &'a [u8],
    at_line_start: bool,
    lines_begun: Rc<Cell<usize>>,
}

impl<'a> LineByLine<'a> {
    fn new(text: &'a [u8]) -> Self {
        Self { rest: text, at_line_start: true, lines_begun: Rc::default() }
    }

    fn lines_begun(&self) -> Rc<Cell<usize>> {
        Rc::clone(&self.lines_begun)
    }
}

impl Read for LineByLine<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let line_len = self.rest.iter().position(|&b| b == b'\n').map_or(self.rest.len(), |i| i + 1);
        let n = line_len.min(buf.len());
        if n == 0 {
            return Ok(0);
        }
        if self.at_line_start {
            self.lines_begun.set(self.lines_begun.get() + 1);
        }
        buf[..n].copy_from_slice(&self.rest[..n]);
        self.rest = &self.rest[n..];
        self.at_line_start = n == line_len;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names `text` sets, sorted, `NAME` for a non-empty value and `NAME=` for an empty one;
    /// or the line of its first error.
    fn parsed(text: &str) -> Result<Vec<String>, usize> {
        let file = parse_env_text(text)?;
        Ok(file.names.iter().map(|(name, &set)| if set { name.clone() } else { format!("{name}=") }).collect())
    }

    #[test]
    fn dotenv_lines() {
        let pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----";
        // (what, the file, the names it sets or the line of its first error)
        type Case<'a> = (&'a str, &'a str, Result<&'a [&'a str], usize>);
        let cases: &[Case] = &[
            (
                "comments, blanks, export, spaces around =, quotes, empty values",
                "# comment\n\nGROQ_API_KEY=sk-x\nexport GEMINI_API_KEY = \"y\"\nEMPTY=\nQUOTED_EMPTY=''\nC=# c\n",
                Ok(&["C=", "EMPTY=", "GEMINI_API_KEY", "GROQ_API_KEY", "QUOTED_EMPTY="]),
            ),
            ("export", "export A=1\n", Ok(&["A"])),
            ("a trailing comment", "A=1 # one\nB= # none\n", Ok(&["A", "B="])),
            ("multi-line double-quoted PEM", &format!("A=1\nTLS_KEY=\"{pem}\"\nB=2\n"), Ok(&["A", "B", "TLS_KEY"])),
            ("multi-line single-quoted", "K='line 1\nline 2'\nB=\n", Ok(&["B=", "K"])),
            ("CRLF", "# c\r\nA=1\r\nB=\r\nC='x'\r\n\r\n", Ok(&["A", "B=", "C"])),
            ("CR only", "# c\rA=1\rB=\rC=\"x\"\r", Ok(&["A", "B=", "C"])),
            ("CRLF inside a quoted value", "K=\"a\r\nb\"\r\nB=1\r\n", Ok(&["B", "K"])),
            ("a BOM", "\u{feff}A=1\nB=\n", Ok(&["A", "B="])),
            ("a BOM before a comment", "\u{feff}# c\nA=1\n", Ok(&["A"])),
            ("# inside quotes is a value", "A='x # y'\nB='#'\nC=\"#\"\n", Ok(&["A", "B", "C"])),
            ("the last of a name wins", "A=1\nA=\n", Ok(&["A="])),
            ("no final newline", "A=1", Ok(&["A"])),
            ("empty file", "", Ok(&[])),
            ("not a pair", "A=1\nnot a pair\n", Err(2)),
            ("after blanks and comments", "A=1\n\n# c\n  \nnot a pair\n", Err(5)),
            ("a name starting with a digit", "1A=1\n", Err(1)),
            ("a space in the name", "A B=1\n", Err(1)),
            ("a space in an unquoted value", "A=1 2\n", Err(1)),
            ("after a multi-line value", &format!("K=\"{pem}\"\nbad line\n"), Err(4)),
            ("a quote left open: where it opens", "A=1\nB=\"open\nC=2\n", Err(2)),
            ("a bad escape inside a multi-line value", "A=1\nK=\"x\ny\\q\"\n", Err(2)),
            ("CR only, malformed", "A=1\rB C\r", Err(2)),
            ("CRLF, malformed", "A=1\r\n\r\nB C\r\n", Err(3)),
        ];
        for (what, text, expected) in cases {
            let expected = expected.map(|names| names.iter().map(|n| n.to_string()).collect::<Vec<_>>());
            assert_eq!(parsed(text), expected, "{what}: {text:?}");
        }
    }

    #[test]
    fn a_malformed_file_is_reported_by_line_never_by_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ci.env");
        let secret = "sk-secret-4d2f";
        std::fs::write(&path, format!("A=1\r\nKEY=\"{secret}\r\nmore {secret}\r\n")).unwrap();
        let e = parse_env_file(path.to_str().unwrap()).unwrap_err();
        assert_eq!(
            e,
            format!(
                "{} line 2: expected `NAME=VALUE`, `export NAME=VALUE` or a `#` comment, with every quote closed",
                path.display()
            )
        );
        std::fs::write(&path, format!("{secret} oops\n")).unwrap();
        let e = parse_env_file(path.to_str().unwrap()).unwrap_err();
        assert!(e.contains(" line 1: ") && !e.contains(secret) && !e.contains("oops"), "{e}");
    }
}
