//! Reload: takes each stable change set, validates it, stores it as a snapshot and publishes it,
//! or rejects it and keeps the running version. Owns the failure state, metrics and alerts.
//! Never reads the config directory itself except for a forced reload, and never writes under
//! the config directory.

mod event;
mod history;
pub mod metrics;
mod reloader;
mod status;
mod validator;

pub use event::ReloadEvent;
pub use history::History;
pub use reloader::{ReloaderConfig, ReloaderHandle, Reporting, RetryBackoff, StartError};
pub use status::{AttemptOutcome, ComponentStatus, LastAttempt, Status, Trigger};
pub use validator::ValidateError;
