//! The serde path: a [`Schema`] for any `#[derive(Deserialize)]` type, one file or a whole
//! directory, reporting every deserialization problem at once with file, YAML path and
//! line:column, then the user's own rules ([`Problems`]).

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use yaml_serde::{Mapping, Value};

use super::de::{self, quoted, DeKind, Found, Outcome, UnknownKeys};
use super::diagnostic::{Diagnostic, DiagnosticKind, Diagnostics, Problem};
use super::env_override::{self, Applied, EnvOverrides};
use super::parse_cache::ParseCache;
use super::suggest::did_you_mean;
use super::yaml::{parse_file, path_order, ParsedFile, Segment, YamlPath};
use super::Schema;
use crate::source::env::EnvLookup;
use crate::source::{Sources, SourcesLimits};

/// The problems a user's rule reports, each at a YAML path; the library adds file, line and column.
///
/// For a one-file config a path is inside the file (`workers`, `routes[2].target`); for a
/// directory it starts with the file's stem (`providers.groq.base_url` is `groq.base_url` in
/// `providers.yaml`).
///
/// ```
/// use hotconf::{MapEnv, Problem, Problems};
/// let env = MapEnv::new();
/// let mut cx = Problems::new(&env);
/// cx.report("workers", Problem::new("too-many-workers", "at most 64 workers").with_help("lower `workers`"));
/// assert_eq!(cx.len(), 1);
/// ```
pub struct Problems<'a> {
    env: &'a dyn EnvLookup,
    found: Vec<(YamlPath, Problem)>,
    /// Paths whose values are stand-ins (a check on a partial config).
    changed: &'a Changed,
}

/// The paths whose values are not as written, sorted, so that asking whether a path is clean
/// costs a few binary searches, not a pass over them all: a rule asks once per problem it
/// reports, and a file may hold 50,000 changed paths and a rule as many problems.
#[derive(Debug, Default)]
pub(crate) struct Changed(Vec<YamlPath>);

/// No path changed.
static UNCHANGED: Changed = Changed(Vec::new());

impl Changed {
    pub(crate) fn new(mut paths: Vec<YamlPath>) -> Self {
        paths.sort_unstable_by(|a, b| path_order(a.segments(), b.segments()));
        paths.dedup();
        Self(paths)
    }

    /// Whether a changed path holds `path` or lies under it.
    fn touches(&self, path: &[Segment]) -> bool {
        let find = |p: &[Segment]| self.0.binary_search_by(|c| path_order(c.segments(), p));
        // A changed path that `path` starts with: one of its prefixes.
        if (0..=path.len()).any(|n| find(&path[..n]).is_ok()) {
            return true;
        }
        // A changed path that starts with `path`: the paths under it sort right after it.
        let first = find(path).unwrap_or_else(|i| i);
        self.0.get(first).is_some_and(|c| c.segments().starts_with(path))
    }
}

impl fmt::Debug for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Problems").field("found", &self.found).finish_non_exhaustive()
    }
}

impl<'a> Problems<'a> {
    /// No problems yet; environment lookups go to `env`.
    pub fn new(env: &'a dyn EnvLookup) -> Self {
        Self { env, found: Vec::new(), changed: &UNCHANGED }
    }

    /// Whether the value at `path` and everything under it is as written in the files. Always
    /// true for a rule given with [`SerdeSchema::with_check`] (it only sees clean configs); a rule
    /// given with [`SerdeSchema::with_partial_check`] also runs on a config some of whose values
    /// failed and were replaced by stand-ins, and must not judge those (its problems at such
    /// paths are dropped anyway).
    pub fn is_clean(&self, path: &YamlPath) -> bool {
        !self.changed.touches(path.segments())
    }

    /// The environment, for rules about variables (injectable in tests: [`MapEnv`](crate::MapEnv)).
    pub fn env(&self) -> &'a dyn EnvLookup {
        self.env
    }

    /// Reports `problem` at `path`, written `a.b[1].c` (see [`YamlPath::parse`]).
    pub fn report(&mut self, path: &str, problem: Problem) {
        self.found.push((YamlPath::parse(path), problem));
    }

    /// Reports `problem` at `path`.
    pub fn report_at(&mut self, path: YamlPath, problem: Problem) {
        self.found.push((path, problem));
    }

    /// How many problems were reported.
    pub fn len(&self) -> usize {
        self.found.len()
    }

    /// Whether none were.
    pub fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    /// The problems, with their paths.
    pub fn into_vec(self) -> Vec<(YamlPath, Problem)> {
        self.found
    }
}

/// The most diagnostics one file reports; the rest are counted in one closing diagnostic, so a
/// file of 50,000 unknown keys costs linear time to judge and stays readable.
pub const MAX_DIAGNOSTICS_PER_FILE: usize = 100;

/// A user's rule over a whole config.
pub type Check<T> = Arc<dyn Fn(&T, &mut Problems<'_>) + Send + Sync>;

#[derive(Debug, Clone)]
enum Layout {
    /// One file, by name; the directory's other files are not read.
    File(String),
    /// Every config file: a mapping from file stem to document.
    Dir,
}

/// A [`Schema`] for any `T: Deserialize`: one file ([`SerdeSchema::file`]) or a directory read as
/// one mapping from file stem to document ([`SerdeSchema::dir`]), so a struct whose fields are
/// the files gets unknown files (`deny_unknown_fields`) and missing ones (`Option` for an
/// optional file) from serde itself. `x.yml` beside `x.yaml` is refused.
///
/// Every problem is reported at once: YAML refusals first (syntax, duplicate keys, several
/// documents, deep nesting, alias bombs), then every deserialization error with its YAML path and
/// line:column, "did you mean" for unknown keys, then the rule given with
/// [`SerdeSchema::with_check`].
///
/// ```
/// use hotconf::{validate_with, MapEnv, SerdeSchema, SourceFile, Sources};
/// #[derive(Debug, serde::Deserialize)]
/// #[serde(deny_unknown_fields)]
/// struct App { greeting: String, workers: std::num::NonZeroU32 }
///
/// let sources = Sources::from_files([SourceFile::new("app.yaml", "greeting: hi\nworkers: 0\nworkrs: 2\n")]);
/// let errors = validate_with(&SerdeSchema::<App>::file("app.yaml"), sources, &MapEnv::new()).unwrap_err();
/// assert_eq!(errors.to_string(), "\
/// app.yaml:2:10: workers: invalid value number `0`: expected a nonzero u32
///   help: use a whole number of 1 or more
/// app.yaml:3:1: workrs: unknown key `workrs`
///   help: did you mean `workers`?");
/// ```
pub struct SerdeSchema<T> {
    layout: Layout,
    check: Option<Check<T>>,
    /// Whether the check also runs on partial configs.
    partial: bool,
    limits: SourcesLimits,
    unknown_keys: UnknownKeys,
    /// Values from the environment over the files' (read once).
    env: Option<Arc<EnvOverrides>>,
    /// A directory's documents as last parsed, so a reload parses only the files that changed.
    parsed: Arc<ParseCache>,
    _config: PhantomData<fn() -> T>,
}

impl<T> Clone for SerdeSchema<T> {
    fn clone(&self) -> Self {
        Self {
            layout: self.layout.clone(),
            check: self.check.clone(),
            partial: self.partial,
            limits: self.limits,
            unknown_keys: self.unknown_keys,
            env: self.env.clone(),
            parsed: Arc::clone(&self.parsed),
            _config: PhantomData,
        }
    }
}

impl<T> fmt::Debug for SerdeSchema<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SerdeSchema").field("layout", &self.layout).field("check", &self.check.is_some()).finish()
    }
}

impl<T> SerdeSchema<T> {
    /// The config is the one file `name` (a bare name, e.g. `app.yaml`); other files beside it
    /// are not read.
    pub fn file(name: impl Into<String>) -> Self {
        Self::new(Layout::File(name.into()))
    }

    /// The config is the whole directory: a mapping from each file's stem to its document.
    pub fn dir() -> Self {
        Self::new(Layout::Dir)
    }

    fn new(layout: Layout) -> Self {
        Self {
            layout,
            check: None,
            partial: false,
            limits: SourcesLimits::default(),
            unknown_keys: UnknownKeys::Deny,
            env: None,
            parsed: Arc::default(),
            _config: PhantomData,
        }
    }

    /// This schema with unknown keys as warnings (logged, target `hotconf`, event
    /// `config.warning`) rather than problems. By default a key no struct field takes is a
    /// problem with "did you mean", whether or not the struct has `deny_unknown_fields` (the
    /// deserializer knows every field a struct takes); a struct that has it still refuses.
    #[must_use]
    pub fn with_unknown_keys_as_warnings(mut self) -> Self {
        self.unknown_keys = UnknownKeys::Warn;
        self
    }

    /// This schema with environment overrides: every variable named `{prefix}__KEY__KEY…` in
    /// `env`, read now and once, sets the value at that key path over the files' (in a
    /// directory config the first key is the file's stem). Keys match without regard to case;
    /// the value is read as a plain YAML scalar and validated as the file's own would be. A
    /// problem with it names the variable, never its value.
    ///
    /// ```
    /// use hotconf::{validate_with, MapEnv, SerdeSchema, SourceFile, Sources};
    /// #[derive(Debug, serde::Deserialize)]
    /// struct App { port: u16, db: Db }
    /// #[derive(Debug, serde::Deserialize)]
    /// struct Db { url: String }
    ///
    /// let env = MapEnv::new().with("APP__DB__URL", "postgres://db/app").with("APP__PORT", "8080");
    /// let schema = SerdeSchema::<App>::file("app.yaml").with_env_overrides("APP", &env);
    /// let files = Sources::from_files([SourceFile::new("app.yaml", "port: 80\ndb: {url: sqlite://x}\n")]);
    /// let valid = validate_with(&schema, files.clone(), &env)?;
    /// let app = valid.config();
    /// assert_eq!((app.port, app.db.url.as_str()), (8080, "postgres://db/app"));
    ///
    /// let env = MapEnv::new().with("APP__PORT", "eighty");
    /// let schema = SerdeSchema::<App>::file("app.yaml").with_env_overrides("APP", &env);
    /// let errors = validate_with(&schema, files, &env).unwrap_err();
    /// assert_eq!(errors.to_string(), "$APP__PORT: port: expected u16, found a string\n  help: write a number in digits, without quotes (such as `30`)");
    /// # Ok::<(), hotconf::Diagnostics>(())
    /// ```
    #[must_use]
    pub fn with_env_overrides(mut self, prefix: &str, env: &dyn EnvLookup) -> Self {
        self.env = Some(Arc::new(EnvOverrides::read(prefix, env)));
        self
    }

    /// This schema with the user's own rule, run on a config that deserialized cleanly.
    #[must_use]
    pub fn with_check(mut self, check: impl Fn(&T, &mut Problems<'_>) + Send + Sync + 'static) -> Self {
        self.check = Some(Arc::new(check));
        self
    }

    /// This schema with a rule that also runs when some values failed to deserialize, on the
    /// config with stand-ins for them, so its problems are listed beside theirs. It must ask
    /// [`Problems::is_clean`] before judging a value another one depends on (a name defined in
    /// another file); problems it reports at a path that is not clean are dropped.
    #[must_use]
    pub fn with_partial_check(mut self, check: impl Fn(&T, &mut Problems<'_>) + Send + Sync + 'static) -> Self {
        self.check = Some(Arc::new(check));
        self.partial = true;
        self
    }

    /// This schema with another per-file size cap (default [`Sources::DEFAULT_MAX_FILE_BYTES`]):
    /// a file over it is refused by name, unread.
    #[must_use]
    pub fn with_max_file_bytes(mut self, max: u64) -> Self {
        self.limits = SourcesLimits { max_file_bytes: max };
        self
    }
}

impl<T> Schema for SerdeSchema<T>
where
    T: DeserializeOwned + Send + Sync + 'static,
{
    type Config = T;

    fn validate(&self, sources: &Sources, env: &dyn EnvLookup) -> Result<T, Diagnostics> {
        match &self.layout {
            Layout::File(name) => self.validate_file(name, sources, env),
            Layout::Dir => self.validate_dir(sources, env),
        }
    }

    fn summary(&self, _config: &T) -> String {
        let name = std::any::type_name::<T>();
        format!("a valid {}", name.rsplit("::").next().unwrap_or(name))
    }

    fn select(&self, sources: Sources) -> Sources {
        match &self.layout {
            Layout::File(name) => Sources::from_files(sources.files().iter().filter(|f| f.name() == name).cloned()),
            Layout::Dir => sources,
        }
    }
}

impl<T> SerdeSchema<T>
where
    T: DeserializeOwned + Send + Sync + 'static,
{
    fn validate_file(&self, name: &str, sources: &Sources, env: &dyn EnvLookup) -> Result<T, Diagnostics> {
        let Some(file) = sources.get(name) else {
            return Err(Diagnostics::new(vec![Diagnostic::file(name, DiagnosticKind::MissingFile)]));
        };
        let mut parsed = parse_file(file, self.limits.max_file_bytes).map_err(|d| Diagnostics::new(vec![d]))?;
        let mut value = std::mem::take(&mut parsed.value);
        let (overridden, refused) = self.override_from_env(&mut value);
        let outcome = de::deserialize_all::<T>(&value, [], MAX_DIAGNOSTICS_PER_FILE, false, self.unknown_keys);
        let files = BTreeMap::from([(String::new(), &parsed)]);
        self.finish(outcome, &files, |path| (String::new(), path.clone()), env, &overridden, refused)
    }

    /// Sets the environment's values over the document's: where each landed, and the variables
    /// that name no key path.
    fn override_from_env(&self, root: &mut Value) -> (Vec<Applied>, Vec<Diagnostic>) {
        match &self.env {
            Some(overrides) => overrides.apply(root),
            None => (Vec::new(), Vec::new()),
        }
    }

    fn validate_dir(&self, sources: &Sources, env: &dyn EnvLookup) -> Result<T, Diagnostics> {
        let mut diags = Vec::new();
        let mut by_stem: BTreeMap<&str, Vec<&crate::source::SourceFile>> = BTreeMap::new();
        for file in sources.files() {
            let stem = file.name().rsplit_once('.').map_or(file.name(), |(s, _)| s);
            by_stem.entry(stem).or_default().push(file);
        }
        let mut parsed: BTreeMap<String, ParsedFile<'_>> = BTreeMap::new();
        let mut absent = Vec::new();
        let mut root = Mapping::new();
        // The files together hold at most as many nodes as one file may: judging a directory
        // costs what judging one file at the cap does, however its content is split.
        let mut nodes_left = super::prescan::MAX_NODES;
        for (stem, files) in &by_stem {
            match files.as_slice() {
                [first, rest @ ..] if !rest.is_empty() => {
                    for file in rest {
                        let kind = DiagnosticKind::ConflictingFiles { other: first.name().to_owned() };
                        diags.push(Diagnostic::file(file.name(), kind));
                    }
                    absent.push(YamlPath::root().key(stem));
                    root.insert(Value::String((*stem).to_owned()), Value::Null);
                }
                [file, ..] => match self.parsed.parse_within(file, self.limits.max_file_bytes, &mut nodes_left) {
                    Ok(mut p) => {
                        root.insert(Value::String((*stem).to_owned()), std::mem::take(&mut p.value));
                        parsed.insert((*stem).to_owned(), p);
                    }
                    Err(d) => {
                        diags.push(d);
                        absent.push(YamlPath::root().key(stem));
                        root.insert(Value::String((*stem).to_owned()), Value::Null);
                    }
                },
                [] => {}
            }
        }
        self.parsed.retain(sources);
        let mut root = Value::Mapping(root);
        let (overridden, refused) = self.override_from_env(&mut root);
        let outcome = de::deserialize_all::<T>(&root, absent, MAX_DIAGNOSTICS_PER_FILE, true, self.unknown_keys);
        let files: BTreeMap<String, &ParsedFile<'_>> = parsed.iter().map(|(k, v)| (k.clone(), v)).collect();
        let split = |path: &YamlPath| match path.split_first() {
            Some((Segment::Key(stem), rest)) => (stem.clone(), rest),
            _ => (String::new(), YamlPath::root()),
        };
        diags.extend(refused);
        self.finish(outcome, &files, split, env, &overridden, diags)
    }

    /// Turns what deserialization found into diagnostics, or runs the user's rule on the value.
    /// `split` maps a path to the key of its file in `files` and the path inside it.
    /// `overridden`: where the environment's values landed; `refused`: problems found before
    /// deserializing (a refused file, a variable that names no key), which make the config partial.
    fn finish(
        &self,
        outcome: Outcome<T>,
        files: &BTreeMap<String, &ParsedFile<'_>>,
        split: impl Fn(&YamlPath) -> (String, YamlPath),
        env: &dyn EnvLookup,
        overridden: &[Applied],
        refused: Vec<Diagnostic>,
    ) -> Result<T, Diagnostics> {
        let mut outcome = outcome;
        if !refused.is_empty() {
            // A file that was refused has a stand-in: the config is partial.
            outcome.partial = outcome.partial.or(outcome.value.take());
        }
        let single = files.len() == 1 && files.contains_key("");
        let place = |path: &YamlPath, kind: DiagnosticKind| -> Diagnostic {
            if let Some(applied) = env_override::source_of(overridden, path) {
                return env_override::diagnostic(applied, path, kind);
            }
            let (key, inner) = split(path);
            match files.get(&key) {
                Some(file) => file.diagnostic(&inner, kind),
                None if single => Diagnostic::file("", kind),
                None => Diagnostic::file(format!("{key}.yaml"), kind),
            }
        };
        // Problems listed so far and problems only counted, by file key: each file lists at most
        // MAX_DIAGNOSTICS_PER_FILE, and only those are located (locating costs a pass over lines).
        let mut listed: BTreeMap<String, usize> = BTreeMap::new();
        for found in &outcome.found {
            *listed.entry(split(&found.path).0).or_default() += 1;
        }
        let mut more = outcome.more.clone();
        let mut run = |config: &T, changed: &Changed| -> Vec<Diagnostic> {
            let Some(check) = &self.check else { return Vec::new() };
            let mut problems = Problems::new(env);
            problems.changed = changed;
            check(config, &mut problems);
            let mut diags = Vec::new();
            for (path, p) in &problems.found {
                if !problems.is_clean(path) {
                    continue;
                }
                let key = split(path).0;
                let n = listed.entry(key.clone()).or_default();
                if *n < MAX_DIAGNOSTICS_PER_FILE {
                    *n += 1;
                    diags.push(place(path, DiagnosticKind::Custom(Box::new(p.clone()))));
                } else {
                    *more.entry(key).or_default() += 1;
                }
            }
            diags
        };
        let mut diags: Vec<Diagnostic> = outcome
            .found
            .iter()
            .map(|found| match (&found.kind, found.path.segments()) {
                // A directory's root: its keys are the files.
                (DeKind::MissingField(stem), []) if !single => {
                    Diagnostic::file(format!("{stem}.yaml"), DiagnosticKind::MissingFile)
                }
                (DeKind::UnknownField { field, expected }, [_]) if !single => {
                    let name = files.get(field.as_str()).map_or_else(|| format!("{field}.yaml"), |f| f.name.to_owned());
                    let known: Vec<String> = expected.iter().map(|s| format!("{s}.yaml")).collect();
                    let help = match did_you_mean(field, expected.iter().copied()) {
                        Some(s) => format!("did you mean `{s}.yaml`? The config files are {}", known.join(", ")),
                        None => format!("the config files are {}; move or rename this file", known.join(", ")),
                    };
                    let problem = Problem::new("unexpected-file", "unexpected config file").with_help(help).at_key();
                    Diagnostic::file(name, DiagnosticKind::Custom(Box::new(problem)))
                }
                _ => place(&found.path, kind_of(found)),
            })
            .collect();
        let config = match (outcome.value, &outcome.partial) {
            (Some(config), _) => {
                diags.extend(run(&config, &UNCHANGED));
                Some(config)
            }
            (None, Some(partial)) if self.partial => {
                diags.extend(run(partial, &Changed::new(std::mem::take(&mut outcome.changed))));
                None
            }
            _ => None,
        };
        for (key, count) in more {
            let file = match files.get(&key) {
                Some(file) => file.name.to_owned(),
                None => diags.first().map(|d| d.file.clone()).unwrap_or_default(),
            };
            diags.push(Diagnostic::file(file, DiagnosticKind::MoreProblems { count }));
        }
        log_warnings(&outcome.warnings, &place);
        match config {
            Some(config) if diags.is_empty() && refused.is_empty() => Ok(config),
            _ => Err(Diagnostics::new(refused.into_iter().chain(diags).collect())),
        }
    }
}

/// Logs the unknown keys let through ([`SerdeSchema::with_unknown_keys_as_warnings`]), each with
/// its location and "did you mean".
fn log_warnings(warnings: &[Found], place: &dyn Fn(&YamlPath, DiagnosticKind) -> Diagnostic) {
    for found in warnings {
        let d = place(&found.path, kind_of(found));
        tracing::warn!(event = "config.warning", "{d}");
    }
}

/// The diagnostic kind for a deserialization problem.
fn kind_of(found: &Found) -> DiagnosticKind {
    let message = de::message(&found.kind);
    let problem = match &found.kind {
        DeKind::MissingField(key) => return DiagnosticKind::MissingKey { key },
        DeKind::DuplicateField(key) => return DiagnosticKind::DuplicateKey { key: (*key).to_owned(), first: None },
        DeKind::UnknownField { field, expected } => {
            let help = match did_you_mean(field, expected.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None if expected.is_empty() => "remove it".to_owned(),
                None => format!("remove it; the keys here are {}", quoted(expected)),
            };
            Problem::new("unknown-key", message).with_help(help).at_key()
        }
        DeKind::UnknownVariant { variant, expected } => {
            let help = match did_you_mean(variant, expected.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("use one of {}", quoted(expected)),
            };
            Problem::new("unknown-variant", message).with_help(help)
        }
        DeKind::InvalidType { expected, unexpected } => {
            let found = unexpected.as_str();
            let problem = Problem::new("wrong-type", message);
            match crate::validate::diagnostic::wrong_type_help(de::yaml_words(expected), found) {
                Some(help) => problem.with_help(help),
                None => problem,
            }
        }
        DeKind::InvalidValue { expected, .. } => {
            let problem = Problem::new("invalid-value", message);
            match number_help(expected) {
                Some(help) => problem.with_help(help),
                None => problem,
            }
        }
        DeKind::InvalidLength { .. } => Problem::new("wrong-length", message).with_help("add or remove items"),
        DeKind::Custom(_) => Problem::new("invalid", message),
        DeKind::Problem(problem) => problem.clone(),
    };
    DiagnosticKind::Custom(Box::new(problem))
}

/// What to write instead of a number serde refused, by the type it expected.
fn number_help(expected: &str) -> Option<String> {
    if expected.contains("nonzero") {
        return Some("use a whole number of 1 or more".to_owned());
    }
    let max = match expected {
        "u8" => "255",
        "u16" => "65535",
        "u32" => "4294967295",
        "u64" => "18446744073709551615",
        _ => return None,
    };
    Some(format!("use a whole number from 0 to {max}"))
}

#[cfg(test)]
mod tests {
    use super::{Changed, YamlPath};

    #[test]
    fn a_path_is_clean_unless_a_changed_path_holds_it_or_lies_under_it() {
        let changed = ["a.b", "a.c[2]", "d", "e.f.g", "h[0].i"];
        let index = Changed::new(changed.iter().map(|p| YamlPath::parse(p)).collect());
        let asked = [
            "", "a", "a.b", "a.b.x", "a.bb", "a.c", "a.c[1]", "a.c[2]", "a.c[2].z", "d", "d[0]", "e", "e.f", "e.f.h",
            "e.g", "h", "h[0]", "h[1]", "h[0].j", "z",
        ];
        for p in asked {
            let path = YamlPath::parse(p);
            // The definition, one comparison per changed path.
            let naive = changed.iter().any(|c| {
                let c = YamlPath::parse(c);
                path.segments().starts_with(c.segments()) || c.segments().starts_with(path.segments())
            });
            assert_eq!(index.touches(path.segments()), naive, "{p}");
        }
    }
}
