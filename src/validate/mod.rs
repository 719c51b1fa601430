//! Validated bundle: turns the files of one attempt into a typed, immutable config through a
//! [`Schema`], or into every [`Diagnostic`] found. Never touches the filesystem: it judges the
//! bytes it is handed and reads the environment only through an [`EnvLookup`].

mod de;
mod diagnostic;
mod duration;
mod env_override;
mod parse_cache;
pub(crate) mod prescan;
mod suggest;
mod typed;
mod yaml;

use crate::source::env::EnvLookup;
use crate::source::Sources;
pub use diagnostic::{Diagnostic, DiagnosticKind, Diagnostics, Problem};
pub use suggest::Suggestions;
pub use typed::{Problems, SerdeSchema};
pub use yaml::{Segment, YamlPath};

/// A set of config files and the rules that make them one typed config.
///
/// The reload machinery (polling, snapshots, publication) is generic over this trait; the LLM
/// gateway's three files are one implementation (`hotconf_gateway::GatewaySchema`).
pub trait Schema: Send + Sync + 'static {
    /// The typed config a valid set of files becomes. Immutable once built.
    type Config: Send + Sync + 'static;

    /// Checks all files together, returning the config or every problem found.
    fn validate(&self, sources: &Sources, env: &dyn EnvLookup) -> Result<Self::Config, Diagnostics>;

    /// A one-line summary of a valid config for people, e.g. `3 providers, 2 agents`.
    fn summary(&self, config: &Self::Config) -> String;

    /// The files this schema reads, out of all the config files in the directory: only these are
    /// validated, hashed, stored and diffed. All of them unless a schema says otherwise (a
    /// one-file config in a directory that holds other files).
    fn select(&self, sources: Sources) -> Sources {
        sources
    }
}

/// Refuses a bundle over the caps of [`validate_with`], at the file that crosses one.
fn check_bundle(sources: &Sources) -> Result<(), Diagnostics> {
    let mut bytes = 0u64;
    for (i, file) in sources.files().iter().enumerate() {
        bytes += match file.body() {
            crate::source::FileBody::Bytes(b) => b.len() as u64,
            _ => 0,
        };
        let crossed = if i >= MAX_BUNDLE_FILES {
            Some(("files", MAX_BUNDLE_FILES as u64))
        } else if bytes > MAX_BUNDLE_BYTES {
            Some(("bytes", MAX_BUNDLE_BYTES))
        } else {
            None
        };
        if let Some((measure, limit)) = crossed {
            let kind = DiagnosticKind::BundleTooLarge { measure, limit };
            return Err(Diagnostics::new(vec![Diagnostic::file(file.name(), kind)]));
        }
    }
    Ok(())
}

/// A config that passed validation, with the exact files it came from and their bundle hash.
/// Only [`validate_with`] makes one.
#[derive(Debug)]
pub struct Validated<C> {
    config: C,
    sources: Sources,
    hash: blake3::Hash,
}

impl<C> Validated<C> {
    /// The typed config.
    pub fn config(&self) -> &C {
        &self.config
    }

    /// The files it came from, byte for byte.
    pub fn sources(&self) -> &Sources {
        &self.sources
    }

    /// The blake3 hash of the files (see [`Sources::bundle_hash`]).
    pub fn hash(&self) -> blake3::Hash {
        self.hash
    }

    /// Splits into the config and its files.
    pub fn into_parts(self) -> (C, Sources) {
        (self.config, self.sources)
    }
}

/// The most config files one bundle may hold.
const MAX_BUNDLE_FILES: usize = 1_024;
/// The most bytes the files of one bundle may hold together: two files at the default per-file
/// cap. The node cap already holds a serde bundle to about 1 MiB of ordinary YAML (some 20 bytes
/// a node), so only long scalars can fill more, and the parser's time grows with bytes: 4 MiB of
/// long scalars took 73 to 106 ms to judge, 2 MiB half that.
const MAX_BUNDLE_BYTES: u64 = 2 * 1024 * 1024;

/// Validates `sources` with `schema`.
///
/// Whatever the schema, a bundle of more than 1,024 files or 2 MiB together is refused before
/// it is judged (`bundle-too-large`, at the file that crosses the cap), and a [`SerdeSchema`]'s
/// files together hold at most 50,000 YAML nodes, as one file may: judging any directory costs
/// at most what judging one file at the caps does.
pub fn validate_with<S: Schema>(
    schema: &S,
    sources: Sources,
    env: &dyn EnvLookup,
) -> Result<Validated<S::Config>, Diagnostics> {
    let sources = schema.select(sources);
    check_bundle(&sources)?;
    let config = schema.validate(&sources, env)?;
    let hash = sources.bundle_hash();
    Ok(Validated { config, sources, hash })
}
