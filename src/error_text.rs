//! Errors as text for a person: a cause chain on one line. Below every stage; knows none.

/// `error` and its sources, joined with `: ` (`outer: inner: innermost`), for messages a person reads.
///
/// ```
/// let e = std::io::Error::other("disk full");
/// assert_eq!(hotconf::error_chain(&e), "disk full");
/// ```
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
