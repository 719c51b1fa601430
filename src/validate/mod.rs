//! Validated bundle: turns the files of one attempt into a typed, immutable config through a
//! [`Schema`], or into every [`Diagnostic`] found. Never touches the filesystem: it judges the
//! bytes it is handed and reads the environment only through an [`EnvLookup`].

mod de;
mod diagnostic;
pub(crate) mod prescan;
mod suggest;
mod typed;
mod yaml;

use std::fmt::Debug;

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
    type Config: Debug + Send + Sync + 'static;

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

/// Validates `sources` with `schema`.
pub fn validate_with<S: Schema>(
    schema: &S,
    sources: Sources,
    env: &dyn EnvLookup,
) -> Result<Validated<S::Config>, Diagnostics> {
    let sources = schema.select(sources);
    let config = schema.validate(&sources, env)?;
    let hash = sources.bundle_hash();
    Ok(Validated { config, sources, hash })
}
