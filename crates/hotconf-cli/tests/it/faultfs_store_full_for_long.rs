//! The store stays full for 20 s, longer than the 1+2+4+8 s retry schedule hotconf once gave up
//! after: the pending content is retried for as long as it is pending (here with the backoff
//! capped at 4 s to keep the test short) and applied by itself once space returns.

use std::fs;
use std::time::{Duration, Instant};

use faultfs::{Fault, Op};

use crate::faultfs_fs::mount;
use crate::service::Service;

#[test]
fn content_pending_on_a_full_store_is_applied_by_itself_when_space_returns_after_a_long_while() {
    let config = crate::support::config_copy();
    let backing = tempfile::tempdir().unwrap();
    let fs_ = mount(backing.path());
    let s = Service::start_with_args(
        config.path(),
        &fs_.path().join("snapshots"),
        &[],
        &["--retry-backoff-max-ms", "4000"],
    );
    let _release = fs_.clear_on_drop();
    let full = fs_.inject(Fault::on(Op::Create, "snapshots/.tmp-*").errno(libc::ENOSPC));
    let path = config.path().join("rate_limits.yaml");
    crate::service::write_atomic(&path, &fs::read_to_string(&path).unwrap().replace("rpm: 600", "rpm: 900"));
    let failed = s.wait_for("reload.failed");
    assert!(failed["error"].as_str().unwrap().contains("No space left on device"), "{failed}");
    // The disk stays full for 20 s: longer than the old 15 s retry budget.
    let until = Instant::now() + Duration::from_secs(20);
    while Instant::now() < until {
        assert_eq!(s.get_json("/status")["running_version"], 1, "the old config keeps running");
        std::thread::sleep(Duration::from_millis(500));
    }
    fs_.remove(full);
    let applied = s.wait_for("reload.applied");
    assert_eq!(applied["version"], 2, "{applied}");
    let (status, body) = s.http("POST", "/acquire/local?tokens=1");
    assert_eq!(status, 200);
    assert!(body.contains("\"rpm\":900"), "{body}");
}
