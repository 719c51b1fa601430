//! Publication: stamps a validated config with its version and hands it, as one immutable `Arc`,
//! to the live components, all at once or not at all. Never reads files and never validates.

mod component;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub use component::{Ack, Component, ComponentHandle};

/// One published version of a config: built once, never mutated, shared by `Arc`.
#[derive(Debug)]
pub struct Publication<C> {
    version: u64,
    hash: blake3::Hash,
    config: Arc<C>,
    published_at: SystemTime,
}

impl<C> Publication<C> {
    /// A publication of `config` as `version`, whose files hash to `hash`.
    pub fn new(version: u64, hash: blake3::Hash, config: Arc<C>) -> Self {
        Self { version, hash, config, published_at: SystemTime::now() }
    }

    /// The snapshot version number.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The bundle hash of the files it came from.
    pub fn hash(&self) -> blake3::Hash {
        self.hash
    }

    /// The config.
    pub fn config(&self) -> &Arc<C> {
        &self.config
    }

    /// When it was made.
    pub fn published_at(&self) -> SystemTime {
        self.published_at
    }
}

/// Where publications go: the set of live components of a service.
///
/// `apply` is all or nothing: it returns `Ok` once every component has acknowledged the version
/// and the version is live; on `Err` the previous version stays live, untouched.
pub trait Sink<C>: Send + 'static {
    /// Applies `publication` to every component.
    fn apply(&mut self, publication: Arc<Publication<C>>) -> Result<(), ApplyError>;

    /// Each component's name and the version it last acknowledged.
    fn applied_versions(&self) -> Vec<(&'static str, Option<u64>)>;
}

/// Why a publication was not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// A component did not acknowledge in time.
    #[error("component {component} did not acknowledge version {version} within {timeout:?}")]
    AckTimeout {
        /// The component.
        component: &'static str,
        /// The version.
        version: u64,
        /// The time it was given.
        timeout: Duration,
    },
    /// A component panicked while applying.
    #[error("component {component} panicked while applying version {version}: {message}")]
    Panicked {
        /// The component.
        component: &'static str,
        /// The version.
        version: u64,
        /// The panic's message.
        message: String,
    },
    /// A component's thread is gone.
    #[error("component {component} has stopped")]
    Stopped {
        /// The component.
        component: &'static str,
    },
}

impl ApplyError {
    /// The component concerned.
    pub fn component(&self) -> &'static str {
        match self {
            ApplyError::AckTimeout { component, .. }
            | ApplyError::Panicked { component, .. }
            | ApplyError::Stopped { component } => component,
        }
    }
}

/// A panic payload as text.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

impl<C> fmt::Display for Publication<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{} ({})", self.version, &self.hash.to_hex()[..12])
    }
}
