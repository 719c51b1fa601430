//! Issue 8, part 3, on a real mount (issue 9).
//!
//! A read hung on the config mount (an NFS hard mount whose server went away), here for a few
//! seconds instead of the 30 s to keep the suite fast: the watchdog reports it once,
//! `/status` and `/healthz` keep answering, a manual reload and a pin come back within their
//! bound, and SIGTERM ends the process within 2 s. Once released, the newest content is applied
//! without a new edit.

use std::fs;
use std::time::{Duration, Instant};

use faultfs::{Fault, Op};

use crate::faultfs_fs::mount;
use crate::service::{diff_text, http, Service};
use crate::support::shipped_config;

fn config_backing() -> tempfile::TempDir {
    let backing = tempfile::tempdir().unwrap();
    let config = backing.path().join("config");
    fs::create_dir(&config).unwrap();
    for entry in fs::read_dir(shipped_config()).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), config.join(entry.file_name())).unwrap();
    }
    backing
}

fn edit(backing: &std::path::Path, from: &str, to: &str) {
    let path = backing.join("config/rate_limits.yaml");
    let text = fs::read_to_string(&path).unwrap();
    fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

/// Requests the admin endpoint answers while a read hangs, each within `bound`.
fn answers_within(s: &Service, method: &str, path: &str, bound: Duration) -> (u16, String) {
    let start = Instant::now();
    let answer = http(s.admin, method, path, None);
    assert!(start.elapsed() < bound, "{method} {path} took {:?}", start.elapsed());
    answer
}

#[test]
fn a_hung_read_never_wedges_the_service_and_the_newest_content_is_applied_on_release() {
    let backing = config_backing();
    let fs_ = mount(backing.path());
    let snapshots = tempfile::tempdir().unwrap();
    let s = Service::start(&fs_.path().join("config"), snapshots.path(), &[]);
    let _release = fs_.clear_on_drop();
    fs_.inject(Fault::on(Op::Read, "config/rate_limits.yaml").hang());
    edit(backing.path(), "rpm: 600", "rpm: 700");
    assert!(fs_.wait_hung(1, crate::service::DEADLINE));
    let timeout = s.wait_until(|v| v["event"] == "poll.error" && v["kind"] == "timeout");
    assert!(timeout["path"].as_str().unwrap().ends_with("config"), "{timeout}");
    edit(backing.path(), "rpm: 700", "rpm: 900"); // the newest content, written while hung

    let bound = Duration::from_secs(20);
    // The poller is stuck in the read past its allowance: liveness fails, naming it and the fault.
    let (status, body) = answers_within(&s, "GET", "/healthz", Duration::from_secs(1));
    assert_eq!(status, 503, "{body}");
    assert!(body.starts_with("stalled: poller") && body.contains("fault: timeout "), "{body}");
    assert_eq!(s.get_json("/status")["running_version"], 1);
    // A manual reload reads the directory too: it must come back (failed or timed out), not hang.
    let (status, body) = answers_within(&s, "POST", "/reload", bound);
    assert_ne!(status, 200, "a reload over a hung mount cannot succeed: {body}");
    // A pin reads only the store (not on the hung mount): it is applied.
    let (status, body) = answers_within(&s, "POST", "/pin/1", bound);
    assert_eq!(status, 200, "{body}");
    assert_eq!(answers_within(&s, "GET", "/healthz", Duration::from_secs(1)).0, 503);

    // Released: the newest content (900, not the 700 the hung read was after) is applied, with no
    // new edit.
    fs_.release();
    fs_.clear();
    // (The pin above logged a `reload.applied` of its own: wait for the one with the new content.)
    let applied = s.wait_until(|v| v["event"] == "reload.applied" && v["origin"] == "change");
    assert!(diff_text(&applied).contains("rpm: 600 → 900"), "{applied}");
    assert_eq!(answers_within(&s, "GET", "/healthz", Duration::from_secs(1)), (200, "ok\n".to_owned()));
}

#[test]
fn sigterm_ends_the_process_within_two_seconds_while_a_read_hangs() {
    let backing = config_backing();
    let fs_ = mount(backing.path());
    let snapshots = tempfile::tempdir().unwrap();
    let s = Service::start(&fs_.path().join("config"), snapshots.path(), &[]);
    let _release = fs_.clear_on_drop();
    fs_.inject(Fault::on(Op::Read, "config/rate_limits.yaml").hang());
    edit(backing.path(), "rpm: 600", "rpm: 700");
    assert!(fs_.wait_hung(1, crate::service::DEADLINE));
    // The reloader is busy with a manual reload that also hangs in the read.
    let admin = s.admin;
    let reload = std::thread::spawn(move || http(admin, "POST", "/reload", None));
    assert!(fs_.wait_hung(2, crate::service::DEADLINE));
    let start = Instant::now();
    s.signal("TERM");
    // The process exits within 2 s. A thread whose read the FUSE server already took stays in the
    // kernel until the server answers (as on an NFS hard mount), so until then the exited process
    // is a zombie ('Z'): ended, its exit status not yet collectable.
    let ended = loop {
        let state = fs::read_to_string(format!("/proc/{}/stat", s.pid()))
            .ok()
            .and_then(|stat| stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next()));
        if matches!(state, None | Some('Z' | 'X')) {
            break start.elapsed();
        }
        assert!(start.elapsed() < Duration::from_secs(10), "hotconf run still running after SIGTERM");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(ended < Duration::from_secs(2), "SIGTERM took {ended:?}");
    fs_.clear(); // releases the hung reads: the kernel lets the last thread go
    let (code, log) = s.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("\"event\":\"shutdown\""), "{log}");
    let _ = reload.join();
}
