//! Reload: takes each stable change set, validates it, stores it as a snapshot and publishes it,
//! or rejects it and keeps the running version. Every consequence of an attempt (status, audit
//! log, log lines, events, and the observers a user adds: metrics, alerts) is an [`Observer`]
//! fed one typed [`Report`] from one place. Never reads the config directory itself except for a
//! manual reload, and never writes under the config directory.

mod event;
mod failure;
mod history;
mod observers;
mod reloader;
mod report;
mod status;
mod validator;

pub use event::ReloadEvent;
pub use failure::{Failure, FailureCause};
pub(crate) use history::History;
pub use reloader::StartError;
pub(crate) use reloader::{ReloaderConfig, ReloaderHandle, RetryBackoff};
pub use report::{AttemptReport, Observer, ReloadState, Report};
pub(crate) use status::unix_seconds;
pub use status::{AttemptOutcome, ComponentStatus, LastAttempt, Status, Trigger};
mod subscribe;
pub(crate) use subscribe::Subscribers;
#[cfg(feature = "async")]
pub use subscribe::Subscription;
#[cfg(test)]
mod tests;
