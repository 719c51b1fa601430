//! The binary's observers of the reloader: Prometheus metrics and chat alerts. Each is fed the
//! library's typed reports, after the audit log and before the status, the log and the events.

pub mod alert;
pub mod metrics;

pub use alert::{AlertConfig, AlertObserver, AlerterHandle};
pub use metrics::{Metrics, MetricsObserver};
