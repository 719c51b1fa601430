//! Diagnostics: what validation says about a config a person must fix, with file, YAML path and
//! line:column. A diagnostic never carries a secret value: kinds hold key and variable *names* only.

use std::fmt;

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

/// One problem in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Diagnostic {
    /// The file's bare name, e.g. `rate_limits.yaml`.
    pub file: String,
    /// The YAML path of the offending value, e.g. `groq.rpm` or `mary.fallbacks[1]`; `None` for
    /// problems of the whole file.
    pub path: Option<String>,
    /// 1-based line, where known.
    pub line: Option<u32>,
    /// 1-based column, where known.
    pub column: Option<u32>,
    /// What is wrong.
    pub kind: DiagnosticKind,
}

/// What is wrong. `Display` gives the message; [`DiagnosticKind::help`] what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DiagnosticKind {
    /// A file the schema requires is absent.
    MissingFile,
    /// Two files for one config (`x.yaml` and `x.yml`).
    ConflictingFiles {
        /// The other file's name.
        other: String,
    },
    /// The file is over the size cap; it was not read.
    TooLarge {
        /// Its size in bytes.
        size: u64,
        /// The cap.
        limit: u64,
    },
    /// The file could not be read.
    Unreadable {
        /// Why, as the OS said it.
        reason: String,
    },
    /// The name resolves to a FIFO, a socket, a device or a directory, not a regular file; it was
    /// refused unread (reading it could block forever).
    NotRegularFile {
        /// What it is.
        kind: crate::source::FileKind,
    },
    /// The file is not UTF-8 text.
    NotUtf8,
    /// The file holds nothing (or only comments).
    EmptyFile,
    /// The file holds more than one YAML document.
    MultipleDocuments,
    /// The YAML parser rejected the text.
    Syntax {
        /// The parser's message.
        message: String,
    },
    /// A mapping key appears twice; YAML parsers would silently keep the last one.
    DuplicateKey {
        /// The key.
        key: String,
        /// Where the key first appears (1-based line and column), when found; the diagnostic
        /// points at the second.
        first: Option<(u32, u32)>,
    },
    /// A flow collection (`[` or `{`) that is never closed; the diagnostic points where it opens.
    UnclosedFlow {
        /// The bracket that opens it.
        open: char,
    },
    /// A merge key (`<<: *defaults`), which hotconf refuses: its result is easy to misread and
    /// YAML 1.2 dropped it.
    MergeKey,
    /// Nesting deeper than the parser allows (a deep or malicious document).
    TooDeep,
    /// Aliases expand to more nodes than the parser allows (an "alias bomb").
    AliasExpansion,
    /// The file holds more YAML nodes than allowed (50,000).
    TooManyNodes,
    /// The config files together are over a cap of the whole bundle: this file is where it is
    /// crossed. The caps bound the work of judging any directory, however its files are split.
    BundleTooLarge {
        /// What is capped: `files`, `bytes` or `nodes`.
        measure: &'static str,
        /// The cap.
        limit: u64,
    },
    /// A required key is absent.
    MissingKey {
        /// The key.
        key: &'static str,
    },
    /// A problem reported by a schema's own rule (or by the serde path), with its own code,
    /// message and help: diagnostics are open, not limited to the kinds above.
    Custom(Box<Problem>),
    /// The file has more problems than are listed (at most 100 are).
    MoreProblems {
        /// How many more.
        count: usize,
    },
}

impl DiagnosticKind {
    /// A stable, machine-readable code for the kind, e.g. `unknown-key`.
    pub fn code(&self) -> &str {
        use DiagnosticKind::*;
        match self {
            Custom(problem) => problem.code(),
            MissingFile => "missing-file",
            ConflictingFiles { .. } => "conflicting-files",
            TooLarge { .. } => "too-large",
            Unreadable { .. } => "unreadable",
            NotRegularFile { .. } => "not-a-regular-file",
            NotUtf8 => "not-utf8",
            EmptyFile => "empty-file",
            MultipleDocuments => "multiple-documents",
            Syntax { .. } => "syntax",
            DuplicateKey { .. } => "duplicate-key",
            UnclosedFlow { .. } => "unclosed-flow",
            MergeKey => "merge-key",
            TooDeep => "too-deep",
            AliasExpansion => "alias-expansion",
            TooManyNodes => "too-many-nodes",
            BundleTooLarge { .. } => "bundle-too-large",
            MissingKey { .. } => "missing-key",
            MoreProblems { .. } => "more-problems",
        }
    }

    /// Whether the diagnostic is about a value (its column points at the value) rather than
    /// about a key or a file (its column points at the key).
    pub fn points_at_value(&self) -> bool {
        use DiagnosticKind::*;
        match self {
            Custom(problem) => !problem.points_at_key(),
            MissingKey { .. } | DuplicateKey { .. } | MergeKey | MoreProblems { .. } | MissingFile => false,
            BundleTooLarge { .. } => false,
            _ => true,
        }
    }

    /// Whether the source line it points at may hold a secret, so a renderer must not show it.
    pub fn may_show_secret(&self) -> bool {
        matches!(self, DiagnosticKind::Custom(problem) if problem.hides_source_line())
    }

    /// What the person should do, when there is something specific to say.
    pub fn help(&self) -> Option<String> {
        use DiagnosticKind::*;
        Some(match self {
            Custom(problem) => return problem.help().map(str::to_owned),
            MissingFile => "create the file; hotconf needs all config files to validate them together".into(),
            ConflictingFiles { .. } => "keep one of the two files and delete the other".into(),
            TooLarge { .. } => "trim the file under the limit: remove entries it does not need".into(),
            NotRegularFile { .. } => "replace it with a regular file (or a symlink to one), or remove it".into(),
            NotUtf8 => "save the file as UTF-8".into(),
            EmptyFile => {
                "an empty file is refused so a truncated write is never applied; write `{}` for an empty map".into()
            }
            MultipleDocuments => "remove the `---` separator: each file holds one YAML document".into(),
            DuplicateKey { first: Some((line, _)), .. } => {
                format!("keep one of the two: delete this entry or the one on line {line}")
            }
            DuplicateKey { first: None, .. } => "keep one of the two entries and delete the other".into(),
            UnclosedFlow { open: '[' } => {
                "close it with `]`, or write the items as a block list (`- item` lines)".into()
            }
            UnclosedFlow { .. } => {
                "close it with `}`, or write the entries as a block mapping (`key: value` lines)".into()
            }
            MergeKey => "write the keys out in this mapping (hotconf does not support `<<` merges)".into(),
            TooDeep => "flatten the document: real configs nest a few levels".into(),
            AliasExpansion => {
                "write the values out instead of repeating aliases, and never use an alias inside the node it names"
                    .into()
            }
            TooManyNodes => "trim the file: remove entries it does not need".into(),
            BundleTooLarge { .. } => "trim the config files together: remove files or entries they do not need".into(),
            MissingKey { key } => format!("add `{key}: …` to this mapping"),
            MoreProblems { .. } => "fix the problems listed first; each file lists its first 100".into(),
            Unreadable { .. } => {
                "check the file's permissions and the mount; the running config is kept meanwhile".into()
            }
            Syntax { .. } => {
                "fix the YAML at the line shown: check indentation, `:` after keys, brackets and quotes".into()
            }
        })
    }
}

/// What to do about a value of the wrong type, when there is more to say than the message's
/// "expected …, found …".
pub(crate) fn wrong_type_help(expected: &str, found: &str) -> Option<String> {
    let numeric = ["integer", "number", "u8", "u16", "u32", "u64", "i32", "i64", "f32", "f64"];
    let help = if found == "a string" && numeric.iter().any(|n| expected.contains(n)) {
        "write a number in digits, without quotes (such as `30`)"
    } else if found == "a string" && (expected.contains("true or false") || expected.contains("bool")) {
        "write `true` or `false` (YAML 1.2 reads `yes`, `no`, `on`, `off` and anything quoted as text)"
    } else if ["integer", "u8", "u16", "u32", "u64", "i32", "i64"].iter().any(|n| expected.contains(n)) {
        "write a whole number, such as `30`"
    } else if expected == "a mapping" {
        "write `key: value` lines indented under the key"
    } else if expected == "a list" {
        "write `- item` lines indented under the key, or `[a, b]`"
    } else if expected == "a string" {
        "write one value on the key's line (quote it if it holds `:`, `#`, `[` or `{`)"
    } else {
        return None;
    };
    Some(help.to_owned())
}

impl fmt::Display for DiagnosticKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use DiagnosticKind::*;
        match self {
            MissingFile => f.write_str("required file is missing"),
            ConflictingFiles { other } => write!(f, "conflicts with {other}"),
            TooLarge { size, limit } => write!(f, "file is {size} bytes, over the {limit}-byte limit"),
            Unreadable { reason } => write!(f, "cannot read file: {reason}"),
            NotRegularFile { kind } => write!(f, "file is {kind}, not a regular file"),
            NotUtf8 => f.write_str("file is not valid UTF-8"),
            EmptyFile => f.write_str("file is empty"),
            MultipleDocuments => f.write_str("file holds more than one YAML document"),
            Syntax { message } => write!(f, "YAML syntax error: {message}"),
            DuplicateKey { key, .. } => write!(f, "duplicate key `{key}`"),
            UnclosedFlow { open } => write!(f, "this `{open}` is never closed"),
            MergeKey => f.write_str("merge keys (`<<`) are not supported"),
            TooDeep => write!(f, "nesting is too deep (more than {} levels)", super::prescan::MAX_DEPTH),
            AliasExpansion => write!(
                f,
                "aliases expand to too many nodes (more than {} added, or an alias inside the node it names)",
                super::prescan::MAX_ALIAS_NODES
            ),
            MissingKey { key } => write!(f, "missing required key `{key}`"),
            TooManyNodes => {
                write!(f, "file holds more than {} YAML nodes (keys, values, list items)", super::prescan::MAX_NODES)
            }
            BundleTooLarge { measure: "bytes", limit } => write!(
                f,
                "the config files together hold more than {} MiB; this file is past the limit, and nothing is judged",
                limit / (1024 * 1024)
            ),
            BundleTooLarge { measure, limit } => write!(
                f,
                "the config files together hold more than {limit} {measure}; this file is past the limit, and nothing is judged"
            ),
            MoreProblems { count } => write!(f, "and {count} more problems in this file, not listed"),
            Custom(problem) => f.write_str(problem.message()),
        }
    }
}

/// A problem in a user's own words: a stable code, a message and optional help.
///
/// Rules written for [`Hotconf::with_check`](crate::Hotconf::with_check) report these through
/// [`Problems`](crate::Problems); the library adds the file, YAML path and line:column.
///
/// ```
/// use hotconf::Problem;
/// let p = Problem::new("too-many-workers", "at most 64 workers").with_help("lower `workers`");
/// assert_eq!((p.code(), p.message(), p.help()), ("too-many-workers", "at most 64 workers", Some("lower `workers`")));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    code: std::borrow::Cow<'static, str>,
    message: String,
    help: Option<String>,
    /// Points at the key (an unknown or misplaced key), not at the value.
    at_key: bool,
    /// The source line may hold a secret: a renderer must not show it.
    secret_line: bool,
}

impl Problem {
    /// A problem with a machine-readable `code` (e.g. `too-many-workers`) and a `message` for people.
    /// Never put a secret value in either.
    pub fn new(code: impl Into<std::borrow::Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self { code: code.into(), message: message.into(), help: None, at_key: false, secret_line: false }
    }

    /// This problem about a key (unknown, misplaced, not allowed) rather than its value: its
    /// column points at the key.
    #[must_use]
    pub fn at_key(mut self) -> Self {
        self.at_key = true;
        self
    }

    /// This problem's source line may hold a secret (a key pasted inline, a credential in a URL):
    /// a renderer shows its location and message but never the line.
    #[must_use]
    pub fn hiding_source_line(mut self) -> Self {
        self.secret_line = true;
        self
    }

    /// Whether its column points at the key ([`Problem::at_key`]) rather than the value.
    pub fn points_at_key(&self) -> bool {
        self.at_key
    }

    /// Whether its source line must not be shown ([`Problem::hiding_source_line`]).
    pub fn hides_source_line(&self) -> bool {
        self.secret_line
    }

    /// This problem with `help`: what the person should do.
    #[must_use]
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// The code.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The help, if any.
    pub fn help(&self) -> Option<&str> {
        self.help.as_deref()
    }

    /// This problem as the error of a `Deserialize` impl (a newtype that checks its value), so
    /// hotconf's serde path reports it with its own code and help at the value's YAML path.
    /// (Another deserializer shows its message, with the code and help after separators.)
    ///
    /// ```
    /// use hotconf::{validate_with, MapEnv, Problem, SerdeSchema, SourceFile, Sources};
    /// #[derive(Debug)]
    /// struct Even(u32);
    /// impl<'de> serde::Deserialize<'de> for Even {
    ///     fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
    ///         let n = u32::deserialize(d)?;
    ///         if n % 2 == 1 {
    ///             return Err(Problem::new("odd", format!("{n} is odd")).with_help("use an even number").into_de_error());
    ///         }
    ///         Ok(Even(n))
    ///     }
    /// }
    /// #[derive(Debug, serde::Deserialize)]
    /// struct App { pairs: Even }
    /// let sources = Sources::from_files([SourceFile::new("app.yaml", "pairs: 3\n")]);
    /// let errors = validate_with(&SerdeSchema::<App>::file("app.yaml"), sources, &MapEnv::new()).unwrap_err();
    /// assert_eq!(errors.to_string(), "app.yaml:1:8: pairs: 3 is odd\n  help: use an even number");
    /// assert_eq!(errors.as_slice()[0].kind.code(), "odd");
    /// ```
    pub fn into_de_error<E: serde::de::Error>(self) -> E {
        let flags = match (self.at_key, self.secret_line) {
            (true, true) => "ks",
            (true, false) => "k",
            (false, true) => "s",
            (false, false) => "",
        };
        E::custom(format_args!(
            "{}{SEP}{}{SEP}{}{SEP}{}{SEP}{flags}",
            self.message,
            PROBLEM_MARK,
            self.code,
            self.help.as_deref().unwrap_or("")
        ))
    }

    /// The problem encoded by [`Problem::into_de_error`], if `text` is one.
    pub(crate) fn from_de_message(text: &str) -> Option<Self> {
        let mut parts = text.split(SEP);
        let (message, mark, code, help) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let flags = parts.next()?;
        if mark != PROBLEM_MARK || parts.next().is_some() {
            return None;
        }
        let mut problem = Problem::new(code.to_owned(), message);
        if !help.is_empty() {
            problem = problem.with_help(help);
        }
        problem.at_key = flags.contains('k');
        problem.secret_line = flags.contains('s');
        Some(problem)
    }
}

/// Separates the parts of a [`Problem`] carried through a serde error message.
const SEP: char = '\u{1f}';
const PROBLEM_MARK: &str = "hotconf-problem";

impl From<DiagnosticKind> for Problem {
    /// The kind's code, message and help, as a problem a rule reports.
    fn from(kind: DiagnosticKind) -> Self {
        let problem = Problem::new(kind.code().to_owned(), kind.to_string());
        match kind.help() {
            Some(help) => problem.with_help(help),
            None => problem,
        }
    }
}

impl Diagnostic {
    /// A diagnostic about the whole of `file`.
    pub fn file(file: impl Into<String>, kind: DiagnosticKind) -> Self {
        Self { file: file.into(), path: None, line: None, column: None, kind }
    }

    /// This diagnostic at YAML path `path`.
    #[must_use]
    pub fn at_path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// This diagnostic at a 1-based line and column.
    #[must_use]
    pub fn at_position(mut self, position: Option<(u32, u32)>) -> Self {
        if let Some((line, column)) = position {
            self.line = Some(line);
            self.column = Some(column);
        }
        self
    }

    /// `file:line:column`, as far as known.
    pub fn location(&self) -> String {
        match (self.line, self.column) {
            (Some(l), Some(c)) => format!("{}:{l}:{c}", self.file),
            (Some(l), None) => format!("{}:{l}", self.file),
            _ => self.file.clone(),
        }
    }
}

/// `rate_limits.yaml:3:8: groq.rpm: must be a positive integer, got 0`, then `  help: …`.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_under(f, None)
    }
}

impl Diagnostic {
    /// Whether it names a file (not an environment variable, `$NAME`, nor nothing).
    fn is_file(&self) -> bool {
        !self.file.starts_with('$') && !self.file.is_empty()
    }

    /// `file:line:column` with the file under `root` (a config file's directory as the user named
    /// it), unless it names no file.
    fn location_under(&self, root: Option<&std::path::Path>) -> String {
        match root {
            Some(root) if self.is_file() => root.join(self.location()).display().to_string(),
            _ => self.location(),
        }
    }

    /// Displays the diagnostic with its file under `root` (a config file's directory as the user
    /// named it); a diagnostic about an environment variable (`$NAME`) is not a file.
    fn fmt_under(&self, f: &mut fmt::Formatter<'_>, root: Option<&std::path::Path>) -> fmt::Result {
        write!(f, "{}: ", self.location_under(root))?;
        if let Some(path) = &self.path {
            write!(f, "{path}: ")?;
        }
        write!(f, "{}", self.kind)?;
        if let Some(help) = self.kind.help() {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

impl Serialize for Diagnostic {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Diagnostic", 7)?;
        s.serialize_field("file", &self.file)?;
        s.serialize_field("path", &self.path)?;
        s.serialize_field("line", &self.line)?;
        s.serialize_field("column", &self.column)?;
        s.serialize_field("code", self.kind.code())?;
        s.serialize_field("message", &self.kind.to_string())?;
        s.serialize_field("help", &self.kind.help())?;
        s.end()
    }
}

/// Every problem validation found, in file order, then line order. `Display` (and `Debug`, so
/// that `main`'s `?` prints the same) gives one `file:line:column: path: message` line for each,
/// followed by its help.
#[derive(Clone, PartialEq, Eq, Default, Serialize)]
#[serde(transparent)]
pub struct Diagnostics {
    list: Vec<Diagnostic>,
    /// The directory the files are shown under, as the user named it.
    #[serde(skip)]
    root: Option<std::path::PathBuf>,
}

impl Diagnostics {
    /// Sorts the diagnostics by file, line, column.
    /// A file's "and N more problems" closes its list.
    pub fn new(mut list: Vec<Diagnostic>) -> Self {
        let key = |d: &Diagnostic| {
            let last = matches!(d.kind, DiagnosticKind::MoreProblems { .. });
            (d.file.clone(), last, d.line.unwrap_or(0), d.column.unwrap_or(0))
        };
        list.sort_by_cached_key(key);
        Self { list, root: None }
    }

    /// These diagnostics displayed with their files under `dir`, the config directory as the
    /// user named it (`config/app.yaml:3:1`, which an editor or a terminal can jump to); each
    /// [`Diagnostic::file`] stays the bare name.
    #[must_use]
    pub fn under(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.root = Some(dir.into());
        self
    }

    /// The diagnostics.
    pub fn as_slice(&self) -> &[Diagnostic] {
        &self.list
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// How many problems were found: the diagnostics listed plus those only counted (see
    /// [`DiagnosticKind::MoreProblems`]).
    pub fn problems(&self) -> usize {
        self.list
            .iter()
            .map(|d| match d.kind {
                DiagnosticKind::MoreProblems { count } => count,
                _ => 1,
            })
            .sum()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The diagnostics, by value.
    pub fn into_vec(self) -> Vec<Diagnostic> {
        self.list
    }

    /// Each diagnostic with its location as `Display` shows it (`file:line:column`, the file
    /// under the directory as the user named it), for a log line each.
    pub(crate) fn each_location(&self) -> impl Iterator<Item = (&Diagnostic, String)> + '_ {
        self.list.iter().map(move |d| (d, d.location_under(self.root.as_deref())))
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.list.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            d.fmt_under(f, self.root.as_deref())?;
        }
        Ok(())
    }
}

/// The same as `Display`: what `main`'s `?` prints is the readable list.
impl fmt::Debug for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Diagnostics {}

#[cfg(test)]
mod problem_tests {
    use super::Problem;

    #[test]
    fn a_problem_keeps_where_it_points_and_whether_its_line_shows_through_a_serde_error() {
        for (problem, at_key, hidden) in [
            (Problem::new("plain", "m"), false, false),
            (Problem::new("key", "m").at_key(), true, false),
            (Problem::new("secret", "m").with_help("h").hiding_source_line(), false, true),
            (Problem::new("both", "m").at_key().hiding_source_line(), true, true),
        ] {
            let error: yaml_serde::Error = problem.clone().into_de_error();
            let back = Problem::from_de_message(&error.to_string()).expect("a problem");
            assert_eq!((back.points_at_key(), back.hides_source_line()), (at_key, hidden), "{}", problem.code());
            assert_eq!(back, problem);
        }
    }
}
