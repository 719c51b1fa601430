//! clap value parsers for the options whose values have a shape: a version (`3` or `v3`), an
//! admin address (`IP:PORT` or `off`), a wait timeout (`30s`). A bad value is a usage error
//! (exit 2) reported by clap before anything runs.

use std::net::SocketAddr;
use std::time::Duration;

/// The longest `--wait` accepted.
pub const MAX_WAIT: Duration = Duration::from_secs(24 * 3600);

/// A version number as `history` and the logs print it: `3` or `v3`.
pub fn version(arg: &str) -> Result<u64, String> {
    let digits = arg.strip_prefix('v').unwrap_or(arg);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("expected a version number such as 3 or v3".to_owned());
    }
    match digits.parse::<u64>() {
        Ok(0) => Err("versions start at 1".to_owned()),
        Ok(n) => Ok(n),
        Err(_) => Err("version number too large".to_owned()),
    }
}

/// Where `run` serves its admin endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminAddr {
    /// `off`: no endpoint.
    Off,
    /// `IP:PORT`.
    At(SocketAddr),
}

/// `IP:PORT` or `off`.
pub fn admin_addr(arg: &str) -> Result<AdminAddr, String> {
    match arg {
        "off" => Ok(AdminAddr::Off),
        a => socket_addr(a).map(AdminAddr::At).map_err(|e| format!("{e} or `off`")),
    }
}

/// `IP:PORT`, e.g. `127.0.0.1:9477` or `[::1]:9477` (no host names: nothing is resolved).
pub fn socket_addr(arg: &str) -> Result<SocketAddr, String> {
    arg.parse().map_err(|_| "expected IP:PORT, e.g. 127.0.0.1:9477".to_owned())
}

/// A duration: `30s`, `2m`, `500ms`, or a bare number of seconds; at most 24 h, more than 0.
pub fn duration(arg: &str) -> Result<Duration, String> {
    let err = || "expected a duration such as 30s, 2m or 500ms".to_owned();
    let split = arg.find(|c: char| !c.is_ascii_digit()).unwrap_or(arg.len());
    let (number, unit) = arg.split_at(split);
    let n: u64 = number.parse().map_err(|_| err())?;
    let d = match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => return Err(err()),
    };
    if d.is_zero() || d > MAX_WAIT {
        return Err("the wait must be more than 0 and at most 24h".to_owned());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert_eq!(version("3"), Ok(3));
        assert_eq!(version("v12"), Ok(12));
        assert_eq!(version("v000002"), Ok(2));
        for bad in ["", "v", "V3", "-1", "3x", "v0", "99999999999999999999999"] {
            assert!(version(bad).is_err(), "{bad}");
        }
        assert_eq!(admin_addr("off"), Ok(AdminAddr::Off));
        assert_eq!(admin_addr("127.0.0.1:1"), Ok(AdminAddr::At("127.0.0.1:1".parse().unwrap())));
        assert!(admin_addr("localhost:9999").is_err());
        assert_eq!(duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(duration("45"), Ok(Duration::from_secs(45)));
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        for bad in ["", "0s", "25h", "s", "1.5s", "3d"] {
            assert!(duration(bad).is_err(), "{bad}");
        }
    }
}
