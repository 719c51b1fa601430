//! Human durations for `std::time::Duration` fields: `250ms`, `5s`, `2m`, `1h30m`, `1.5s`.
//!
//! serde asks for a `Duration` as a struct named `Duration` with the fields `secs` and `nanos`;
//! the deserializer (`de.rs`) recognises that request and, when the YAML value is a scalar, reads
//! it here. A plain `Duration` field takes `5s` with no attribute and no helper crate, and serde's
//! own `{secs: 5, nanos: 0}` still works. Why not a crate (`humantime`, `duration-str`): those
//! need `#[serde(with = …)]` on every field, which is the step users forget, and their errors
//! carry no location; reading it in our deserializer gives every `Duration` the same grammar and
//! a located diagnostic for free, in about 80 lines.
//!
//! Grammar: one or more `<number><unit>` groups, written together (`1h30m`); a number is digits
//! with an optional fraction (`1.5s`); units `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h`, `d`.
//! `0` alone is zero. A bare number is refused (seconds or milliseconds? the unit says), as is
//! anything past [`MAX_TEXT`] characters or [`u64::MAX`] seconds.

use yaml_serde::Value;

use super::diagnostic::Problem;

/// The longest duration text read (a longer string is refused unread).
pub const MAX_TEXT: usize = 64;

const UNITS: [(&str, u128); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
    ("d", 86_400_000_000_000),
];

/// Whether serde is asking for a `std::time::Duration` (its name and field list).
pub(crate) fn is_std_duration(name: &str, fields: &[&str]) -> bool {
    name == "Duration" && fields == ["secs", "nanos"]
}

/// A scalar read as a duration (seconds and nanoseconds), or the problem with it; `None` for a
/// value that is not a scalar (a mapping goes to serde's own `{secs, nanos}`).
pub(crate) fn from_scalar(value: &Value) -> Option<Result<(u64, u32), Problem>> {
    match value {
        Value::String(text) => Some(parse(text).ok_or_else(|| invalid("a string that is not a duration"))),
        Value::Number(n) if n.as_u64() == Some(0) => Some(Ok((0, 0))),
        Value::Number(_) => Some(Err(invalid("a number without a unit"))),
        Value::Tagged(tagged) => from_scalar(&tagged.value),
        _ => None,
    }
}

fn invalid(found: &str) -> Problem {
    Problem::new("invalid-duration", format!("expected a duration, found {found}"))
        .with_help("write a number and a unit, such as `250ms`, `5s`, `2m` or `1h30m` (units: ns, us, ms, s, m, h, d)")
}

/// `1h30m` as seconds and nanoseconds; `None` if it is not a duration.
pub(crate) fn parse(text: &str) -> Option<(u64, u32)> {
    let text = text.trim();
    if text.len() > MAX_TEXT || text.is_empty() {
        return None;
    }
    if text == "0" {
        return Some((0, 0));
    }
    let mut rest = text;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(rest.len());
        let (number, after) = rest.split_at(digits);
        let unit_len = after.find(|c: char| c.is_ascii_digit()).unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let scale = UNITS.iter().find(|(u, _)| *u == unit)?.1;
        total = total.checked_add(scaled(number, scale)?)?;
        rest = after;
    }
    let secs = u64::try_from(total / 1_000_000_000).ok()?;
    Some((secs, (total % 1_000_000_000) as u32))
}

/// `number` (digits, an optional fraction) times `scale` nanoseconds, truncated to a nanosecond.
fn scaled(number: &str, scale: u128) -> Option<u128> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    if !whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u128 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let mut nanos = whole.checked_mul(scale)?;
    // Nanoseconds are the finest unit: digits past 18 of fraction cannot matter.
    let fraction = &fraction[..fraction.len().min(18)];
    if !fraction.is_empty() {
        let digits: u128 = fraction.parse().ok()?;
        nanos = nanos.checked_add(digits.checked_mul(scale)? / 10u128.pow(fraction.len() as u32))?;
    }
    Some(nanos)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn human_durations() {
        for (text, expected) in [
            ("250ms", Some((0, 250_000_000))),
            ("5s", Some((5, 0))),
            ("2m", Some((120, 0))),
            ("1h30m", Some((5400, 0))),
            ("1.5s", Some((1, 500_000_000))),
            ("0.25h", Some((900, 0))),
            ("100us", Some((0, 100_000))),
            ("100µs", Some((0, 100_000))),
            ("7ns", Some((0, 7))),
            ("1d", Some((86_400, 0))),
            (" 5s ", Some((5, 0))),
            ("0", Some((0, 0))),
            ("5", None),
            ("5 s", None),
            ("5sec", None),
            ("s", None),
            ("", None),
            (".s", None),
            ("1.2.3s", None),
            ("-5s", None),
            ("99999999999999999999999h", None),
            ("1ms2", None),
        ] {
            assert_eq!(parse(text), expected, "{text:?}");
        }
        assert_eq!(parse(&"1".repeat(super::MAX_TEXT + 1)), None, "past the text cap");
    }
}
