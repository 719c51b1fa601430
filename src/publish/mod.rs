//! Publication: stamps a validated config with its version and hands it, as one immutable `Arc`,
//! to the live components, all at once or not at all. Never reads files and never validates.

mod component;

use std::any::Any;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

pub use component::Component;
pub(crate) use component::ComponentHandle;

/// One component's part of a version: its name and what it built.
pub(crate) type Part = (&'static str, Arc<dyn Any + Send + Sync>);

/// One published version of a config: built once, never mutated, shared by `Arc`. Once every
/// component acknowledged it, it also holds each component's part for that version
/// ([`Publication::part`]), so a request reading several parts reads them from one version.
pub struct Publication<C> {
    version: u64,
    hash: blake3::Hash,
    config: Arc<C>,
    published_at: SystemTime,
    /// Set once, when the version goes live, before anyone but the components saw it.
    parts: OnceLock<Box<[Part]>>,
}

impl<C: fmt::Debug> fmt::Debug for Publication<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<&str> = self.parts.get().map(|p| p.iter().map(|(name, _)| *name).collect()).unwrap_or_default();
        f.debug_struct("Publication")
            .field("version", &self.version)
            .field("hash", &self.hash)
            .field("config", &self.config)
            .field("published_at", &self.published_at)
            .field("parts", &parts)
            .finish()
    }
}

impl<C> Publication<C> {
    /// A publication of `config` as `version`, whose files hash to `hash`.
    pub(crate) fn new(version: u64, hash: blake3::Hash, config: Arc<C>) -> Self {
        Self { version, hash, config, published_at: SystemTime::now(), parts: OnceLock::new() }
    }

    /// The part the component named `component` built for this version, if it built one of type
    /// `P`. `None` while the components are building (they see the publication first) and for a
    /// name or type that is not a component's.
    ///
    /// ```
    /// # use hotconf::{Component, Publication};
    /// # #[derive(Debug, serde::Deserialize)]
    /// # struct App { workers: u32 }
    /// struct Pool;
    /// impl Component<App> for Pool {
    ///     type Part = Vec<u32>;
    ///     fn name(&self) -> &'static str { "pool" }
    ///     fn build(&mut self, p: &Publication<App>) -> Vec<u32> { (0..p.config().workers).collect() }
    /// }
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("app.yaml");
    /// # std::fs::write(&path, "workers: 3\n")?;
    /// let live = hotconf::Hotconf::<App>::file(&path).with_component(Pool).start()?;
    /// let version = live.publication();
    /// assert_eq!(version.part::<Vec<u32>>("pool"), Some(&vec![0, 1, 2]));
    /// assert_eq!(version.part::<String>("pool"), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn part<P: Any>(&self, component: &str) -> Option<&P> {
        let parts = self.parts.get()?;
        parts.iter().find(|(name, _)| *name == component).and_then(|(_, part)| part.downcast_ref())
    }

    /// Attaches the components' parts; only the first call counts.
    pub(crate) fn set_parts(&self, parts: Vec<Part>) {
        let _ = self.parts.set(parts.into_boxed_slice());
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
pub(crate) trait Sink<C>: Send + 'static {
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
