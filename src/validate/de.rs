//! The serde path: deserializes any `T: Deserialize` from a parsed YAML tree and finds **every**
//! error, each at its YAML path, where serde itself stops at the first.
//!
//! How: a `Deserializer` over the tree tracks the path of each value. An error raised inside a
//! value is recorded at that value's path the first time it crosses a map or sequence access,
//! and the node is *patched*: it answers with a stand-in value of whatever type is asked for
//! (`1`, `""`, `None`, an empty list, a struct of stand-ins, the first variant). The value is
//! deserialized again at once with a copy of its seed when the seed is serde's `PhantomData` (as
//! for every derived struct, map and sequence), so the pass goes on to the next problem;
//! otherwise deserialization runs again. A stand-in that fails too (a type with its own checks)
//! makes the node *skipped*, as if absent, from the next pass on; a required field missing only
//! because it was skipped is a consequence, not a new problem, and its struct is patched in turn.
//! Unknown keys are found without `deny_unknown_fields`: a struct tells its deserializer every
//! field name it takes (aliases included), so a key outside them is recorded and skipped before
//! serde sees it; in the lenient mode ([`UnknownKeys::Warn`]) it is a warning and serde gets it as
//! before (a struct that denies unknown keys is then learnt once per type). A
//! `std::time::Duration` is read from human text (`250ms`, `5s`, `2m`, `1h30m`: see
//! [`super::duration`]) as well as serde's own `{secs, nanos}`. Passes are bounded
//! ([`MAX_PASSES`], and [`MAX_VISITS`] values visited in all) and diagnostics capped per document.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::hash_map::RandomState;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::OnceLock;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Unexpected, Visitor};
use yaml_serde::Value;

use super::diagnostic::Problem;
use super::suggest::did_you_mean;
use super::yaml::{path_order, Segment, YamlPath};

/// The most deserialization passes over one document.
pub const MAX_PASSES: usize = 256;

/// The most values (map values and sequence items) all the passes over one document visit
/// together: as many as the nodes a bundle may hold (keys and values), so a document at the node
/// cap gets about two whole passes and a small one its [`MAX_PASSES`]. Past it no pass starts,
/// and the problems found are what is reported: judging any document costs time linear in its
/// size, whatever its problems.
pub const MAX_VISITS: u64 = super::prescan::MAX_NODES;

/// What went wrong at one path, as serde said it (values that may be secrets are never kept:
/// strings are described, not copied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DeKind {
    UnknownField {
        field: String,
        expected: &'static [&'static str],
    },
    MissingField(&'static str),
    DuplicateField(&'static str),
    InvalidType {
        unexpected: String,
        expected: String,
    },
    InvalidValue {
        unexpected: String,
        expected: String,
    },
    InvalidLength {
        len: usize,
        expected: String,
    },
    UnknownVariant {
        variant: String,
        expected: &'static [&'static str],
    },
    Custom(String),
    /// A [`Problem`] raised by a `Deserialize` impl with [`Problem::into_de_error`].
    Problem(Problem),
}

/// One problem found, at its path in the document.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub path: YamlPath,
    pub kind: DeKind,
}

#[derive(Debug)]
pub(crate) enum DeError {
    /// Raised, not yet located at a path.
    Fresh(DeKind),
    /// Already recorded (and its node poisoned): only unwinding.
    Reported,
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeError::Fresh(kind) => write!(f, "{}", message(kind)),
            DeError::Reported => f.write_str("reported"),
        }
    }
}

impl std::error::Error for DeError {}

fn describe(unexpected: Unexpected<'_>) -> String {
    match unexpected {
        Unexpected::Bool(b) => format!("boolean `{b}`"),
        Unexpected::Unsigned(n) => format!("number `{n}`"),
        Unexpected::Signed(n) => format!("number `{n}`"),
        Unexpected::Float(n) => format!("number `{n}`"),
        Unexpected::Char(_) | Unexpected::Str(_) => "a string".to_owned(),
        Unexpected::Bytes(_) => "bytes".to_owned(),
        Unexpected::Unit => "null".to_owned(),
        Unexpected::Option => "an optional value".to_owned(),
        Unexpected::NewtypeStruct => "a value".to_owned(),
        Unexpected::Seq => "a list".to_owned(),
        Unexpected::Map => "a mapping".to_owned(),
        Unexpected::Enum | Unexpected::UnitVariant => "an enum variant".to_owned(),
        Unexpected::NewtypeVariant | Unexpected::TupleVariant | Unexpected::StructVariant => {
            "an enum variant".to_owned()
        }
        Unexpected::Other(other) => other.to_owned(),
    }
}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        let text = msg.to_string();
        DeError::Fresh(match Problem::from_de_message(&text) {
            Some(problem) => DeKind::Problem(problem),
            None => DeKind::Custom(text),
        })
    }
    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        DeError::Fresh(DeKind::InvalidType { unexpected: describe(unexp), expected: exp.to_string() })
    }
    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        DeError::Fresh(DeKind::InvalidValue { unexpected: describe(unexp), expected: exp.to_string() })
    }
    fn invalid_length(len: usize, exp: &dyn de::Expected) -> Self {
        DeError::Fresh(DeKind::InvalidLength { len, expected: exp.to_string() })
    }
    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        DeError::Fresh(DeKind::UnknownVariant { variant: variant.to_owned(), expected })
    }
    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        DeError::Fresh(DeKind::UnknownField { field: field.to_owned(), expected })
    }
    fn missing_field(field: &'static str) -> Self {
        DeError::Fresh(DeKind::MissingField(field))
    }
    fn duplicate_field(field: &'static str) -> Self {
        DeError::Fresh(DeKind::DuplicateField(field))
    }
}

/// The message of a kind, for people.
pub(crate) fn message(kind: &DeKind) -> String {
    match kind {
        DeKind::UnknownField { field, .. } => format!("unknown key `{field}`"),
        DeKind::MissingField(field) => format!("missing required key `{field}`"),
        DeKind::DuplicateField(field) => format!("duplicate key `{field}`"),
        DeKind::InvalidType { unexpected, expected } => {
            format!("expected {}, found {unexpected}", yaml_words(expected))
        }
        DeKind::InvalidValue { unexpected, expected } => format!("invalid value {unexpected}: expected {expected}"),
        DeKind::InvalidLength { len, expected } => format!("{len} items, expected {expected}"),
        DeKind::UnknownVariant { variant, expected } => {
            format!("unknown variant `{variant}`, expected one of {}", quoted(expected))
        }
        DeKind::Custom(message) => message.clone(),
        DeKind::Problem(problem) => problem.message().to_owned(),
    }
}

/// serde's words for YAML's collections, in YAML's words.
pub(crate) fn yaml_words(expected: &str) -> &str {
    match expected {
        "a map" => "a mapping",
        "a sequence" => "a list",
        other => other,
    }
}

/// `` `a`, `b`, `c` ``.
pub(crate) fn quoted(names: &[&str]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

/// Where a value is: its last step and its parent's place, borrowed up to the root, with a hash
/// of the whole path grown one step at a time. A value's place costs one hash of its step, never
/// a copy of its path: a [`YamlPath`] is built only for a node that has a problem.
#[derive(Clone, Copy)]
struct At<'p> {
    up: Option<&'p At<'p>>,
    step: Step<'p>,
    depth: usize,
    hash: u64,
}

#[derive(Clone, Copy)]
enum Step<'p> {
    Root,
    Key(&'p str),
    Index(usize),
}

/// The keys of the path hashes: random per process, so no document can choose paths that share
/// a hash.
fn keys() -> &'static RandomState {
    static KEYS: OnceLock<RandomState> = OnceLock::new();
    KEYS.get_or_init(RandomState::new)
}

/// The hash of the path `up` extended by `step`.
fn extend(up: u64, step: Step<'_>) -> u64 {
    let mut h = keys().build_hasher();
    h.write_u64(up);
    match step {
        Step::Root => {}
        Step::Key(key) => {
            h.write_u8(0);
            h.write(key.as_bytes());
            h.write_u8(0xff);
        }
        Step::Index(i) => {
            h.write_u8(1);
            h.write_usize(i);
        }
    }
    h.finish()
}

/// The hash [`At`] gives `path`.
fn hash_of(path: &YamlPath) -> u64 {
    path.segments().iter().fold(0, |h, s| {
        extend(
            h,
            match s {
                Segment::Key(k) => Step::Key(k),
                Segment::Index(i) => Step::Index(*i),
            },
        )
    })
}

impl<'p> At<'p> {
    const ROOT: At<'static> = At { up: None, step: Step::Root, depth: 0, hash: 0 };

    fn key<'q>(&'q self, key: &'q str) -> At<'q> {
        let step = Step::Key(key);
        At { up: Some(self), step, depth: self.depth + 1, hash: extend(self.hash, step) }
    }

    fn index(&self, i: usize) -> At<'_> {
        let step = Step::Index(i);
        At { up: Some(self), step, depth: self.depth + 1, hash: extend(self.hash, step) }
    }

    /// Whether this is the place of `path`.
    fn is(&self, path: &YamlPath) -> bool {
        let segments = path.segments();
        if segments.len() != self.depth {
            return false;
        }
        let mut at = self;
        for segment in segments.iter().rev() {
            let same = match (at.step, segment) {
                (Step::Key(a), Segment::Key(b)) => a == b,
                (Step::Index(a), Segment::Index(b)) => a == *b,
                _ => false,
            };
            match (same, at.up) {
                (true, Some(up)) => at = up,
                _ => return false,
            }
        }
        true
    }

    /// The path, built (for a node with a problem).
    fn path(&self) -> YamlPath {
        #[cfg(test)]
        BUILT.with(|b| b.set(b.get() + 1));
        let mut segments = Vec::with_capacity(self.depth);
        let mut at = Some(self);
        while let Some(a) = at {
            match a.step {
                Step::Root => {}
                Step::Key(k) => segments.push(Segment::Key(k.to_owned())),
                Step::Index(i) => segments.push(Segment::Index(i)),
            }
            at = a.up;
        }
        segments.reverse();
        YamlPath::from_segments(segments)
    }
}

#[cfg(test)]
thread_local! {
    /// Paths built by [`At::path`] on this thread: the work per problem, for tests.
    static BUILT: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// A hasher for keys that are hashes already.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A set of paths asked about by place ([`At`]): by hash, then compared step by step, so asking
/// costs no path built; nothing at all while the set is empty, as it is for a valid document.
#[derive(Default)]
struct PathSet {
    paths: Vec<YamlPath>,
    /// A path's hash → its index in `paths` (the first path with that hash).
    index: HashMap<u64, usize, BuildHasherDefault<Prehashed>>,
    /// Paths whose hash an earlier path has too, with it: rare, since the hashes' keys are random.
    shared: Vec<(u64, usize)>,
}

impl PathSet {
    fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// The index of the path `is` accepts among those with hash `hash`.
    fn find(&self, hash: u64, is: impl Fn(&YamlPath) -> bool) -> Option<usize> {
        let first = *self.index.get(&hash)?;
        if is(&self.paths[first]) {
            return Some(first);
        }
        self.shared.iter().find(|(h, i)| *h == hash && is(&self.paths[*i])).map(|(_, i)| *i)
    }

    fn contains(&self, at: &At<'_>) -> bool {
        !self.is_empty() && self.find(at.hash, |p| at.is(p)).is_some()
    }

    /// Adds the path of `at` (built only when new); whether it was new.
    fn insert(&mut self, at: &At<'_>) -> bool {
        if self.find(at.hash, |p| at.is(p)).is_some() {
            return false;
        }
        self.push(at.hash, at.path());
        true
    }

    /// Adds `path`; whether it was new.
    fn insert_path(&mut self, path: YamlPath) -> bool {
        let hash = hash_of(&path);
        if self.find(hash, |p| *p == path).is_some() {
            return false;
        }
        self.push(hash, path);
        true
    }

    fn push(&mut self, hash: u64, path: YamlPath) {
        let i = self.paths.len();
        match self.index.entry(hash) {
            std::collections::hash_map::Entry::Occupied(_) => self.shared.push((hash, i)),
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(i);
            }
        }
        self.paths.push(path);
    }

    fn iter(&self) -> impl Iterator<Item = &YamlPath> {
        self.paths.iter()
    }

    fn into_paths(self) -> impl Iterator<Item = YamlPath> {
        self.paths.into_iter()
    }
}

impl FromIterator<YamlPath> for PathSet {
    fn from_iter<I: IntoIterator<Item = YamlPath>>(paths: I) -> Self {
        let mut set = PathSet::default();
        for path in paths {
            set.insert_path(path);
        }
        set
    }
}

/// A path ordered so that the paths under it sort right after it ([`path_order`]): the skipped
/// paths under a node are found with one look in a sorted set.
#[derive(PartialEq, Eq)]
struct Sorted(YamlPath);

impl Ord for Sorted {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        path_order(self.0.segments(), other.0.segments())
    }
}

impl PartialOrd for Sorted {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Default)]
struct Session {
    /// Nodes answered by a stand-in value.
    patched: PathSet,
    /// Nodes skipped as if absent (unknown keys, stand-ins that failed).
    poisoned: PathSet,
    /// The same, sorted (from the first check that needs it on): whether a node holds a skipped
    /// one is one look.
    poisoned_sorted: Option<BTreeSet<Sorted>>,
    /// Paths of skipped nodes compared by the consequence check of wrong lengths (one a check).
    #[cfg_attr(not(test), allow(dead_code))]
    compared: u64,
    /// Required fields found missing, given a stand-in so the struct's other problems show.
    injected: PathSet,
    found: Vec<Found>,
    /// Problems past the cap, counted only, by first path segment (a file in a directory).
    more: std::collections::BTreeMap<String, usize>,
    /// Problems listed, by first path segment.
    listed: std::collections::HashMap<String, usize>,
    /// The paths of the problems listed.
    listed_paths: HashSet<YamlPath>,
    max: usize,
    /// Whether the cap applies to each first path segment (each file of a directory).
    per_first: bool,
    /// A node was poisoned in this pass: another pass may reach further.
    progressed: bool,
    /// Values visited by every pass so far (see [`MAX_VISITS`]).
    visits: u64,
    /// Problems counted past the cap, in all groups.
    more_total: usize,
    /// Struct types (name, field list) known to refuse unknown keys.
    denying: HashSet<(&'static str, usize)>,
    /// What an unknown key of a struct is.
    unknown_keys: UnknownKeys,
    /// Unknown keys let through ([`UnknownKeys::Warn`]), once each.
    warnings: Vec<Found>,
}

/// What an unknown key of a struct is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum UnknownKeys {
    /// A problem, as if every struct had `deny_unknown_fields` (the default).
    #[default]
    Deny,
    /// A warning; the key is ignored unless the struct denies unknown keys itself.
    Warn,
}

impl Session {
    /// Records `kind` at `path` (unless it is a consequence of a patched or skipped node) and
    /// patches `path`; a patched node that fails again is skipped.
    fn settle(&mut self, at: &At<'_>, kind: DeKind) {
        if self.patched.contains(at) {
            self.poison(at);
            return;
        }
        let path = at.path();
        let consequence = match &kind {
            DeKind::MissingField(field) => self.poisoned.contains(&at.key(field)),
            DeKind::InvalidLength { .. } => self.holds_poisoned(&path),
            _ => false,
        };
        let inject = match &kind {
            DeKind::MissingField(field) => Some(at.key(field)),
            _ => None,
        };
        if !consequence {
            self.record(path, kind);
        }
        // A missing field gets a stand-in (once); otherwise the whole node is patched.
        let progressed = match inject {
            Some(field) if !self.injected.contains(&field) => self.injected.insert(&field),
            _ => self.patched.insert(at),
        };
        self.progressed |= progressed;
    }

    /// Whether `path` or a node under it is skipped: the first skipped path at or after it in
    /// the sorted set starts with it if any does.
    fn holds_poisoned(&mut self, path: &YamlPath) -> bool {
        self.compared += 1;
        let poisoned = &self.poisoned;
        let sorted = self.poisoned_sorted.get_or_insert_with(|| poisoned.iter().map(|p| Sorted(p.clone())).collect());
        let from = Sorted(path.clone());
        sorted.range(from..).next().is_some_and(|p| p.0.segments().starts_with(path.segments()))
    }

    fn record(&mut self, path: YamlPath, kind: DeKind) {
        // The same problem met again (a node deserialized once more) is listed once; only a path
        // listed already is compared with the list.
        if self.listed_paths.contains(&path) && self.found.iter().any(|f| f.path == path && f.kind == kind) {
            return;
        }
        let group = match (self.per_first, path.segments().first()) {
            (true, Some(super::yaml::Segment::Key(k))) => k.as_str(),
            _ => "",
        };
        let listed = match self.listed.get_mut(group) {
            Some(listed) => listed,
            None => self.listed.entry(group.to_owned()).or_default(),
        };
        if *listed < self.max {
            *listed += 1;
            self.listed_paths.insert(path.clone());
            self.found.push(Found { path, kind });
        } else if let Some(more) = self.more.get_mut(group) {
            *more += 1;
            self.more_total += 1;
        } else {
            self.more.insert(group.to_owned(), 1);
            self.more_total += 1;
        }
    }

    /// Keeps an unknown key let through as a warning (once, at most `max`).
    fn warn(&mut self, path: YamlPath, kind: DeKind) {
        if self.warnings.len() < self.max && !self.warnings.iter().any(|w| w.path == path) {
            self.warnings.push(Found { path, kind });
        }
    }

    /// The paths whose values are not as written.
    fn into_changed(self) -> Vec<YamlPath> {
        self.patched.into_paths().chain(self.poisoned.into_paths()).chain(self.injected.into_paths()).collect()
    }

    fn poison(&mut self, at: &At<'_>) {
        if self.poisoned.insert(at) {
            if let Some(sorted) = &mut self.poisoned_sorted {
                sorted.insert(Sorted(at.path()));
            }
            self.progressed = true;
        }
    }
}

/// What deserializing a document found.
#[derive(Debug)]
pub(crate) struct Outcome<T> {
    /// The value, when there was no problem at all.
    pub value: Option<T>,
    /// The value with stand-ins for what failed, when there were problems.
    pub partial: Option<T>,
    /// The paths whose values are not as written (stand-ins, skipped, given a stand-in).
    pub changed: Vec<YamlPath>,
    /// Every problem found (at most `max`).
    pub found: Vec<Found>,
    /// Problems found past `max`, counted only, by first path segment (or `""`).
    pub more: std::collections::BTreeMap<String, usize>,
    /// Unknown keys let through ([`UnknownKeys::Warn`]), at most `max`.
    pub warnings: Vec<Found>,
    /// Values visited by all the passes (at most about [`MAX_VISITS`]): the work done, for tests.
    #[cfg_attr(not(test), allow(dead_code))]
    pub visits: u64,
    /// Skipped paths compared by the consequence checks of wrong lengths: the work done, for tests.
    #[cfg_attr(not(test), allow(dead_code))]
    pub compared: u64,
}

/// Deserializes `root` as `T`, finding every problem (at most `max` listed, for each first path
/// segment when `per_first`: each file of a directory). Nodes in `absent` are treated as missing
/// from the start (a file that did not parse), without a diagnostic of their own.
pub(crate) fn deserialize_all<T: DeserializeOwned>(
    root: &Value,
    absent: impl IntoIterator<Item = YamlPath>,
    max: usize,
    per_first: bool,
    unknown_keys: UnknownKeys,
) -> Outcome<T> {
    let cx = RefCell::new(Session {
        max,
        per_first,
        unknown_keys,
        patched: absent.into_iter().collect(),
        ..Session::default()
    });
    for _ in 0..MAX_PASSES {
        cx.borrow_mut().progressed = false;
        let result = T::deserialize(Node { value: root, at: At::ROOT, cx: &cx });
        let mut session = cx.borrow_mut();
        match result {
            Ok(value) if session.found.is_empty() && session.more.is_empty() => {
                drop(session);
                let mut session = cx.into_inner();
                let warnings = std::mem::take(&mut session.warnings);
                let (visits, compared) = (session.visits, session.compared);
                let changed = session.into_changed();
                let (value, partial) = if changed.is_empty() { (Some(value), None) } else { (None, Some(value)) };
                let more = Default::default();
                return Outcome { value, partial, changed, found: Vec::new(), more, warnings, visits, compared };
            }
            Ok(value) => {
                drop(session);
                let mut session = cx.into_inner();
                let (found, more, visits) =
                    (std::mem::take(&mut session.found), std::mem::take(&mut session.more), session.visits);
                let warnings = std::mem::take(&mut session.warnings);
                let compared = session.compared;
                let changed = session.into_changed();
                return Outcome {
                    value: None,
                    partial: Some(value),
                    changed,
                    found: one_per_mistake(found),
                    more,
                    warnings,
                    visits,
                    compared,
                };
            }
            Err(DeError::Fresh(kind)) => {
                session.settle(&At::ROOT, kind);
                break;
            }
            Err(DeError::Reported) => {
                // Past the cap a pass only counts: a few more are allowed, then the count stands.
                if !session.progressed || session.more_total >= max || session.visits >= MAX_VISITS {
                    break;
                }
            }
        }
    }
    let mut session = cx.into_inner();
    let (found, more, visits) = (std::mem::take(&mut session.found), std::mem::take(&mut session.more), session.visits);
    let warnings = std::mem::take(&mut session.warnings);
    let compared = session.compared;
    Outcome {
        value: None,
        partial: None,
        changed: session.into_changed(),
        found: one_per_mistake(found),
        more,
        warnings,
        visits,
        compared,
    }
}

/// Drops a "missing `rpm`" whose mapping holds an unknown key close to it (`rmp`): one mistake,
/// one problem, the unknown key's "did you mean `rpm`?".
fn one_per_mistake(found: Vec<Found>) -> Vec<Found> {
    let misspelt = |path: &YamlPath, field: &str| {
        found.iter().any(|f| match (&f.kind, f.path.split_last()) {
            (DeKind::UnknownField { field: typo, .. }, Some((parent, _))) => {
                parent == *path && did_you_mean(typo, [field]).is_some()
            }
            _ => false,
        })
    };
    let keep: Vec<bool> =
        found.iter().map(|f| !matches!(f.kind, DeKind::MissingField(field) if misspelt(&f.path, field))).collect();
    found.into_iter().zip(keep).filter_map(|(f, k)| k.then_some(f)).collect()
}

/// Locates a fresh error at `path`.
fn settle<T>(cx: &RefCell<Session>, at: &At<'_>, result: Result<T, DeError>) -> Result<T, DeError> {
    match result {
        Err(DeError::Fresh(kind)) => {
            cx.borrow_mut().settle(at, kind);
            Err(DeError::Reported)
        }
        other => other,
    }
}

/// How many times one value is deserialized again in the same pass after it failed (a stand-in,
/// or the node with a stand-in for a missing field); past them the pass ends as before.
const MAX_RETRIES: usize = 4;

/// Deserializes the map value or sequence item `value` at `path` (a stand-in if it is patched).
/// When it fails and `seed` can be copied (see [`spare`]), the problem is settled at `path` and
/// the value deserialized again at once (now a stand-in, or with a stand-in for the missing
/// field): the pass goes on to the next problem instead of ending, so a file's problems cost one
/// pass, not one pass each. A stand-in that fails too ends the pass, as without a spare seed.
fn node_or_stand_in<'de, S: DeserializeSeed<'de>>(
    cx: &RefCell<Session>,
    value: &'de Value,
    at: At<'_>,
    seed: S,
) -> Result<S::Value, DeError> {
    let mut seed = seed;
    cx.borrow_mut().visits += 1;
    for _ in 0..MAX_RETRIES {
        let Some(again) = spare(&seed) else { break };
        let patched = cx.borrow().patched.contains(&at);
        let result = if patched { seed.deserialize(StandIn) } else { seed.deserialize(Node { value, at, cx }) };
        let kind = match result {
            Err(DeError::Fresh(kind)) => kind,
            // A stand-in for a missing field failed, and the node is patched now (see
            // `MapAccess::next_value_seed`): a stand-in for the whole node.
            Err(DeError::Reported) if !patched && cx.borrow().patched.contains(&at) => {
                seed = again;
                continue;
            }
            other => return other,
        };
        let mut session = cx.borrow_mut();
        session.settle(&at, kind);
        if session.poisoned.contains(&at) || session.more_total >= session.max {
            // Its stand-in failed: skipped as absent from the next pass on. Or enough problems
            // are counted past the cap: the pass ends, as it did before going on past problems.
            return Err(DeError::Reported);
        }
        seed = again;
    }
    let result = if cx.borrow().patched.contains(&at) {
        seed.deserialize(StandIn)
    } else {
        seed.deserialize(Node { value, at, cx })
    };
    settle(cx, &at, result)
}

/// A copy of `seed` when it is a `PhantomData` (the seed of serde's `next_value`,
/// `next_element` and `next_entry`, so of every derived struct, map and sequence), to deserialize
/// a value again after it failed; `None` for any other seed, which keeps the pass-per-problem way.
fn spare<S>(seed: &S) -> Option<S> {
    let phantom = std::mem::size_of::<S>() == 0 && std::any::type_name::<S>().starts_with("core::marker::PhantomData<");
    // SAFETY: `S` is `PhantomData<_>` (a zero-sized type of that name), which is `Copy`: a bitwise
    // copy of it is a copy.
    phantom.then(|| unsafe { std::ptr::read(seed) })
}

fn unexpected(value: &Value) -> Unexpected<'_> {
    match value {
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Unexpected::Unsigned(u),
            (_, Some(i), _) => Unexpected::Signed(i),
            (_, _, Some(f)) => Unexpected::Float(f),
            _ => Unexpected::Other("a number"),
        },
        Value::String(s) => Unexpected::Str(s),
        Value::Sequence(_) => Unexpected::Seq,
        Value::Mapping(_) => Unexpected::Map,
        Value::Tagged(_) => Unexpected::Enum,
    }
}

/// A key as a path segment (borrowed when it is a string, as keys almost always are).
fn key_text(key: &Value) -> Cow<'_, str> {
    match key {
        Value::String(s) => Cow::Borrowed(s),
        Value::Number(n) => Cow::Owned(n.to_string()),
        Value::Bool(b) => Cow::Owned(b.to_string()),
        Value::Null => Cow::Borrowed("null"),
        _ => Cow::Borrowed("?"),
    }
}

struct Node<'a, 'c, 'p> {
    value: &'a Value,
    at: At<'p>,
    cx: &'c RefCell<Session>,
}

impl<'a, 'c, 'p> Node<'a, 'c, 'p> {
    fn invalid<V>(&self, visitor: &dyn de::Expected) -> Result<V, DeError> {
        Err(de::Error::invalid_type(unexpected(self.value), visitor))
    }

    fn map(self, fields: Option<(&'static str, &'static [&'static str])>) -> Option<MapAccess<'a, 'c, 'p>> {
        let Value::Mapping(m) = self.value else { return None };
        Some(MapAccess { entries: m.iter(), pending: None, at: self.at, cx: self.cx, fields, injecting: 0 })
    }
}

impl<'de, 'c, 'p> de::Deserializer<'de> for Node<'de, 'c, 'p> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => visitor.visit_u64(u),
                (_, Some(i), _) => visitor.visit_i64(i),
                (_, _, Some(f)) => visitor.visit_f64(f),
                _ => self.invalid(&visitor),
            },
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Sequence(items) => {
                visitor.visit_seq(SeqAccess { items: items.iter().enumerate(), at: self.at, cx: self.cx })
            }
            Value::Mapping(_) => {
                let access = self.map(None).expect("a mapping");
                visitor.visit_map(access)
            }
            Value::Tagged(tagged) => Node { value: &tagged.value, at: self.at, cx: self.cx }.deserialize_any(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            Value::Null => visitor.visit_unit(),
            _ => self.invalid(&visitor),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            Value::String(s) => visitor.visit_borrowed_str(s),
            // A plain scalar is text when text is wanted (`version: 1.10` as a string).
            Value::Number(n) => visitor.visit_string(n.to_string()),
            Value::Bool(b) => visitor.visit_string(b.to_string()),
            _ => self.invalid(&visitor),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        if super::duration::is_std_duration(name, fields) {
            if let Some(result) = super::duration::from_scalar(self.value) {
                let (secs, nanos) = result.map_err(|problem| DeError::Fresh(DeKind::Problem(problem)))?;
                let entries = [("secs", secs), ("nanos", u64::from(nanos))];
                return visitor.visit_map(de::value::MapDeserializer::new(entries.into_iter()));
            }
        }
        if !matches!(self.value, Value::Mapping(_)) {
            return self.invalid(&visitor);
        }
        let access = self.map(Some((name, fields))).expect("a mapping");
        visitor.visit_map(access)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if !matches!(self.value, Value::Mapping(_)) {
            return self.invalid(&visitor);
        }
        let access = self.map(None).expect("a mapping");
        visitor.visit_map(access)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            Value::Sequence(items) => {
                visitor.visit_seq(SeqAccess { items: items.iter().enumerate(), at: self.at, cx: self.cx })
            }
            _ => self.invalid(&visitor),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self.value {
            Value::String(s) => visitor.visit_enum(de::value::BorrowedStrDeserializer::<DeError>::new(s)),
            Value::Mapping(m) if m.len() == 1 => {
                let (key, value) = m.iter().next().expect("one entry");
                let Value::String(variant) = key else { return self.invalid(&visitor) };
                let up = self.at;
                let at = up.key(variant);
                visitor.visit_enum(EnumAccess { variant, value, at, cx: self.cx })
            }
            Value::Tagged(tagged) => {
                let variant = tagged.tag.to_string();
                let variant = variant.trim_start_matches('!').to_owned();
                visitor.visit_enum(EnumAccess { variant: &variant, value: &tagged.value, at: self.at, cx: self.cx })
            }
            _ => self.invalid(&visitor),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf unit_struct tuple tuple_struct
    }
}

struct MapAccess<'a, 'c, 'p> {
    entries: yaml_serde::mapping::Iter<'a>,
    /// The value of the key just given, and the key's text.
    pending: Option<(&'a Value, Cow<'a, str>)>,
    at: At<'p>,
    cx: &'c RefCell<Session>,
    /// The struct's name and fields, when the map is a struct.
    fields: Option<(&'static str, &'static [&'static str])>,
    /// After the entries: the index of the next field to consider for a stand-in.
    injecting: usize,
}

impl MapAccess<'_, '_, '_> {
    /// The next field found missing in an earlier pass, to be given a stand-in.
    fn next_injected(&mut self) -> Option<&'static str> {
        let (_, fields) = self.fields?;
        let cx = self.cx.borrow();
        if cx.injected.is_empty() {
            return None;
        }
        while let Some(field) = fields.get(self.injecting) {
            self.injecting += 1;
            if cx.injected.contains(&self.at.key(field)) {
                return Some(field);
            }
        }
        None
    }
}

impl<'de, 'c, 'p> de::MapAccess<'de> for MapAccess<'de, 'c, 'p> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, DeError> {
        loop {
            let Some((key, value)) = self.entries.next() else {
                let Some(field) = self.next_injected() else { return Ok(None) };
                self.pending = None;
                return seed.deserialize(de::value::BorrowedStrDeserializer::<DeError>::new(field)).map(Some);
            };
            let text = key_text(key);
            let at = self.at.key(&text);
            if self.cx.borrow().poisoned.contains(&at) {
                continue;
            }
            if let Some((name, fields)) = self.fields {
                if !fields.contains(&&*text) {
                    let mut cx = self.cx.borrow_mut();
                    let kind = DeKind::UnknownField { field: text.clone().into_owned(), expected: fields };
                    if cx.unknown_keys == UnknownKeys::Deny || cx.denying.contains(&(name, fields.as_ptr() as usize)) {
                        // Recorded and skipped: serde never sees it, so no further pass.
                        cx.record(at.path(), kind);
                        cx.poison(&at);
                        continue;
                    }
                    cx.warn(at.path(), kind);
                }
            }
            let key = match seed.deserialize(KeyNode { value: key }) {
                Ok(key) => key,
                Err(DeError::Fresh(kind)) => {
                    let mut cx = self.cx.borrow_mut();
                    if let (DeKind::UnknownField { .. }, Some((name, fields))) = (&kind, self.fields) {
                        cx.denying.insert((name, fields.as_ptr() as usize));
                    }
                    // A key that fails is skipped with its value.
                    cx.record(at.path(), kind);
                    cx.poison(&at);
                    return Err(DeError::Reported);
                }
                Err(DeError::Reported) => return Err(DeError::Reported),
            };
            self.pending = Some((value, text));
            return Ok(Some(key));
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let Some((value, text)) = self.pending.take() else {
            // A stand-in for a missing field; if the field's type refuses it, the whole struct
            // gets a stand-in in the next pass (its problems are recorded already).
            return seed.deserialize(StandIn).map_err(|_| {
                let mut cx = self.cx.borrow_mut();
                let progressed = cx.patched.insert(&self.at);
                cx.progressed |= progressed;
                DeError::Reported
            });
        };
        node_or_stand_in(self.cx, value, self.at.key(&text), seed)
    }
}

struct SeqAccess<'a, 'c, 'p> {
    items: std::iter::Enumerate<std::slice::Iter<'a, Value>>,
    at: At<'p>,
    cx: &'c RefCell<Session>,
}

impl<'de, 'c, 'p> de::SeqAccess<'de> for SeqAccess<'de, 'c, 'p> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, DeError> {
        loop {
            let Some((i, item)) = self.items.next() else { return Ok(None) };
            let at = self.at.index(i);
            if self.cx.borrow().poisoned.contains(&at) {
                continue;
            }
            return node_or_stand_in(self.cx, item, at, seed).map(Some);
        }
    }
}

struct EnumAccess<'a, 'c, 'v, 'p> {
    variant: &'v str,
    value: &'a Value,
    at: At<'p>,
    cx: &'c RefCell<Session>,
}

impl<'de, 'c, 'v, 'p> de::EnumAccess<'de> for EnumAccess<'de, 'c, 'v, 'p> {
    type Error = DeError;
    type Variant = Node<'de, 'c, 'p>;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Node<'de, 'c, 'p>), DeError> {
        let variant = seed.deserialize(self.variant.into_deserializer())?;
        Ok((variant, Node { value: self.value, at: self.at, cx: self.cx }))
    }
}

impl<'de, 'c, 'p> de::VariantAccess<'de> for Node<'de, 'c, 'p> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        match self.value {
            Value::Null => Ok(()),
            _ => Err(de::Error::invalid_type(unexpected(self.value), &"a unit variant")),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_seq(self, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(self, fields: &'static [&'static str], visitor: V) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_struct(self, "", fields, visitor)
    }
}

/// A mapping key: a scalar.
struct KeyNode<'a> {
    value: &'a Value,
}

impl<'de> de::Deserializer<'de> for KeyNode<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => visitor.visit_u64(u),
                (_, Some(i), _) => visitor.visit_i64(i),
                (_, _, Some(f)) => visitor.visit_f64(f),
                _ => Err(de::Error::invalid_type(unexpected(self.value), &visitor)),
            },
            other => Err(de::Error::invalid_type(unexpected(other), &visitor)),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Number(_) | Value::Bool(_) | Value::Null => visitor.visit_string(key_text(self.value).into_owned()),
            other => Err(de::Error::invalid_type(unexpected(other), &visitor)),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self.value {
            Value::String(s) => visitor.visit_enum(de::value::BorrowedStrDeserializer::<DeError>::new(s)),
            other => Err(de::Error::invalid_type(unexpected(other), &visitor)),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf unit unit_struct seq tuple
        tuple_struct map struct ignored_any
    }
}

/// A stand-in for a node that failed: answers any request with a plain value of the type asked
/// for, so deserialization goes on past it. Never reaches the user: a document with a patched node
/// has a problem recorded, and yields no value.
struct StandIn;

impl<'de> de::Deserializer<'de> for StandIn {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        // Types that ask for anything mostly want a number (or take any value at all).
        visitor.visit_u64(1)
    }
    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_bool(false)
    }
    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_i64(1)
    }
    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_u64(1)
    }
    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_f64(1.0)
    }
    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_char('x')
    }
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_borrowed_str("")
    }
    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_borrowed_bytes(&[])
    }
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_none()
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _: &'static str, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_seq(StandIns { fields: &[], len: 0 })
    }
    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_seq(StandIns { fields: &[], len })
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_seq(StandIns { fields: &[], len })
    }
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_map(StandIns { fields: &[], len: 0 })
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_map(StandIns { fields, len: fields.len() })
    }
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let first = variants.first().copied().unwrap_or("");
        visitor.visit_enum(StandInEnum(first))
    }
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! { unit unit_struct }
    same_as! {
        deserialize_i64: deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i128;
        deserialize_u64: deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u128;
        deserialize_f64: deserialize_f32;
        deserialize_str: deserialize_string deserialize_identifier;
        deserialize_bytes: deserialize_byte_buf
    }
}

/// Methods of a `Deserializer` that do what another does.
macro_rules! same_as {
    ($($target:ident: $($method:ident)*);*) => {
        $($(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
                self.$target(visitor)
            }
        )*)*
    };
}
use same_as;

/// Stand-ins for the fields of a struct (keys `fields`) or `len` items of a sequence.
struct StandIns {
    fields: &'static [&'static str],
    len: usize,
}

impl<'de> de::SeqAccess<'de> for StandIns {
    type Error = DeError;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, DeError> {
        if self.len == 0 {
            return Ok(None);
        }
        self.len -= 1;
        seed.deserialize(StandIn).map(Some)
    }
}

impl<'de> de::MapAccess<'de> for StandIns {
    type Error = DeError;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, DeError> {
        let Some((first, rest)) = self.fields.split_first() else { return Ok(None) };
        self.fields = rest;
        seed.deserialize(de::value::BorrowedStrDeserializer::<DeError>::new(first)).map(Some)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        seed.deserialize(StandIn)
    }
}

struct StandInEnum(&'static str);

impl<'de> de::EnumAccess<'de> for StandInEnum {
    type Error = DeError;
    type Variant = StandIn;
    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, StandIn), DeError> {
        Ok((seed.deserialize(de::value::BorrowedStrDeserializer::<DeError>::new(self.0))?, StandIn))
    }
}

impl<'de> de::VariantAccess<'de> for StandIn {
    type Error = DeError;
    fn unit_variant(self) -> Result<(), DeError> {
        Ok(())
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        seed.deserialize(StandIn)
    }
    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_seq(StandIns { fields: &[], len })
    }
    fn struct_variant<V: Visitor<'de>>(self, fields: &'static [&'static str], visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_map(StandIns { fields, len: fields.len() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::collections::BTreeMap;
    use std::num::NonZeroU32;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct App {
        greeting: String,
        workers: NonZeroU32,
        #[serde(default)]
        mode: Mode,
        limits: Option<Limits>,
        #[serde(default)]
        tags: Vec<u8>,
        #[serde(default)]
        extra: BTreeMap<String, u16>,
    }

    #[derive(Debug, Deserialize, Default)]
    #[serde(rename_all = "snake_case")]
    enum Mode {
        #[default]
        Fast,
        Safe,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Limits {
        rpm: u32,
        burst: u32,
    }

    /// A name that must not be empty: its stand-in (`""`) fails too.
    #[derive(Debug)]
    struct NonEmpty;

    impl<'de> Deserialize<'de> for NonEmpty {
        fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let s = String::deserialize(d)?;
            if s.is_empty() {
                return Err(de::Error::custom("empty"));
            }
            Ok(NonEmpty)
        }
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Named {
        name: NonEmpty,
    }

    fn values(yaml: &str) -> u64 {
        let value: Value = yaml_serde::from_str(yaml).unwrap();
        let mut n = 0;
        let mut stack = vec![&value];
        while let Some(v) = stack.pop() {
            match v {
                Value::Mapping(m) => {
                    n += m.len() as u64;
                    stack.extend(m.values());
                }
                Value::Sequence(s) => {
                    n += s.len() as u64;
                    stack.extend(s);
                }
                _ => {}
            }
        }
        n
    }

    #[test]
    fn problems_inside_values_are_found_in_one_pass_after_valid_ones() {
        // Valid entries first, then 1,000 bad values: each used to end a pass, so each pass walked
        // the valid part again (hundreds of passes over the whole document).
        let yaml: String = (0..10_000).map(|i| format!("v{i}: {{rpm: 1, burst: 1}}\n")).collect::<String>()
            + &(0..1_000).map(|i| format!("p{i}: {{rpm: x, burst: 1}}\n")).collect::<String>();
        let value: Value = yaml_serde::from_str(&yaml).unwrap();
        let out = deserialize_all::<BTreeMap<String, Limits>>(&value, [], 100, false, UnknownKeys::Deny);
        assert_eq!(out.found.len(), 100);
        assert_eq!(out.found[0].path.to_string(), "p0.rpm");
        assert!(out.more.values().sum::<usize>() >= 100);
        // One pass, each bad value visited again as a stand-in: at most twice the values.
        assert!(out.visits <= 2 * values(&yaml), "{} visits for {} values", out.visits, values(&yaml));
    }

    #[test]
    fn problems_whose_stand_in_fails_stop_at_the_budget_of_visits() {
        // A stand-in that fails too still ends the pass: 1,000 of them after 20,000 valid
        // entries would cost a pass each; the budget of visits stops the passes.
        let yaml: String = (0..20_000).map(|i| format!("v{i}: {{name: a}}\n")).collect::<String>()
            + &(0..1_000).map(|i| format!("p{i}: {{name: ''}}\n")).collect::<String>();
        let value: Value = yaml_serde::from_str(&yaml).unwrap();
        let out = deserialize_all::<BTreeMap<String, Named>>(&value, [], 100, false, UnknownKeys::Deny);
        assert!(!out.found.is_empty());
        assert_eq!(out.found[0].path.to_string(), "p0.name");
        // The last pass may start just under the budget: at most one pass over it.
        let bound = MAX_VISITS + 2 * values(&yaml);
        assert!(out.visits <= bound, "{} visits, bound {bound}", out.visits);
        assert!(out.visits >= MAX_VISITS, "the budget, not the problems, ended it: {} visits", out.visits);
    }

    /// Paths built on this thread so far.
    fn built() -> u64 {
        BUILT.with(std::cell::Cell::get)
    }

    #[test]
    fn a_value_costs_no_path_built_unless_it_has_a_problem() {
        // 20,000 valid values: no path built at all (a value's place is borrowed and hashed).
        let valid: String = (0..10_000).map(|i| format!("v{i}: {{rpm: 1, burst: 1}}\n")).collect();
        let value: Value = yaml_serde::from_str(&valid).unwrap();
        let before = built();
        let out = deserialize_all::<BTreeMap<String, Limits>>(&value, [], 100, false, UnknownKeys::Deny);
        assert!(out.value.is_some());
        assert_eq!(built() - before, 0);
        // Beside them, 1,000 unknown keys and 1,000 bad values: a few paths built for each.
        let yaml = valid
            + &(0..1_000).map(|i| format!("u{i}: {{rpm: 1, burst: 1, x{i}: 1}}\n")).collect::<String>()
            + &(0..1_000).map(|i| format!("b{i}: {{rpm: x, burst: 1}}\n")).collect::<String>();
        let value: Value = yaml_serde::from_str(&yaml).unwrap();
        let before = built();
        let out = deserialize_all::<BTreeMap<String, Limits>>(&value, [], 100, false, UnknownKeys::Deny);
        assert_eq!(out.found.len(), 100);
        let built = built() - before;
        assert!(built <= 3 * 2_000, "{built} paths built for 2,000 problems");
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Pair {
        p: (u8, u8),
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct NamedPair {
        p: (NonEmpty, u8),
    }

    #[test]
    fn a_wrong_length_asks_once_whether_a_skipped_node_caused_it() {
        // Each entry: an unknown key (skipped) and a list one item short. Whether the short
        // list is a consequence of a skipped node was a pass over every skipped path: 4,000 ×
        // 4,000. Now one look in the sorted skipped paths each.
        // (Every problem listed: past the cap a pass would end at the first short list.)
        let n = 4_000u64;
        let yaml: String = (0..n).map(|i| format!("k{i}: {{x{i}: 1, p: [1]}}\n")).collect();
        let value: Value = yaml_serde::from_str(&yaml).unwrap();
        let out = deserialize_all::<BTreeMap<String, Pair>>(&value, [], 10_000, false, UnknownKeys::Deny);
        assert_eq!(out.found.len() as u64, 2 * n);
        let shown: Vec<String> = out.found.iter().map(|f| format!("{}: {}", f.path, message(&f.kind))).collect();
        assert!(shown.contains(&"k0.p: 1 items, expected a tuple of size 2".to_owned()), "{shown:?}");
        assert!(shown.contains(&"k0.x0: unknown key `x0`".to_owned()), "{shown:?}");
        assert!(out.compared <= n, "{} skipped paths compared for {n} short lists", out.compared);
        // A list short only because an item was skipped (its stand-in failed too) is a
        // consequence: the item's problem alone is shown.
        let value: Value = yaml_serde::from_str("a: {p: ['', 1]}\nb: {p: [x, 1]}\n").unwrap();
        let out = deserialize_all::<BTreeMap<String, NamedPair>>(&value, [], 100, false, UnknownKeys::Deny);
        let shown: Vec<String> = out.found.iter().map(|f| format!("{}: {}", f.path, message(&f.kind))).collect();
        assert_eq!(shown, ["a.p[0]: empty"]);
    }

    fn check(yaml: &str) -> Vec<String> {
        let value: Value = yaml_serde::from_str(yaml).unwrap();
        let out = deserialize_all::<App>(&value, [], 100, false, UnknownKeys::Deny);
        let mut found: Vec<String> = out.found.iter().map(|f| format!("{}: {}", f.path, message(&f.kind))).collect();
        found.sort();
        if out.value.is_some() {
            assert!(found.is_empty());
        }
        found
    }

    #[test]
    fn every_error_at_once() {
        let cases: &[(&str, &[&str])] = &[
            ("greeting: hi\nworkers: 2\n", &[]),
            (
                "greeting: hi\nworkers: 0\nmode: slow\nlimits: {rpm: x, burts: 3}\ntags: [1, 300, -1]\nextra: {a: 1, b: z}\ngreting: 1\n",
                &[
                    "extra.b: expected u16, found a string",
                    "greting: unknown key `greting`",
                    "limits.burts: unknown key `burts`",
                    "limits.rpm: expected u32, found a string",
                    "mode: unknown variant `slow`, expected one of `fast`, `safe`",
                    "tags[1]: invalid value number `300`: expected u8",
                    "tags[2]: invalid value number `-1`: expected u8",
                    "workers: invalid value number `0`: expected a nonzero u32",
                ],
            ),
            ("workers: [1]\n", &[": missing required key `greeting`", "workers: expected a nonzero u32, found a list"]),
            ("[1, 2]\n", &[": expected struct App, found a list"]),
        ];
        for (yaml, expected) in cases {
            assert_eq!(check(yaml), *expected, "{yaml}");
        }
    }
}
