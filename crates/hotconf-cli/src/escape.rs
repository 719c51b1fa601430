//! Terminal safety for what a user wrote: the file names, keys, values and paths the CLI prints
//! for a person (rendered diagnostics and their source lines, `validate`'s summaries, the diff,
//! the `history` table, GitHub annotations) go through [`visible`] first, so no config directory
//! can send a terminal or a CI log an escape sequence (set the window title, clear the screen) or
//! a line break that forges a line of its own. Knows nothing of formats: JSON output is escaped
//! by serde_json, the service's log by `logfmt` and `jsonlog`; the renderer keeps a source line's
//! tabs, which annotate-snippets draws as spaces (`render::shown`).
//!
//! Escaped: every control character — C0 (U+0000–U+001F, ESC, CR, LF and TAB among them), DEL,
//! C1 (U+0080–U+009F, of which U+009B is a one-character CSI) — and the Unicode line and
//! paragraph separators U+2028 and U+2029, which some viewers break lines on (the set `logfmt`
//! escapes), and the bidirectional formatting characters (U+200E/F, U+202A–E, U+2066–9), which
//! reorder how a name or a line reads ("Trojan Source"). TAB is escaped too: it is invisible,
//! reads as spaces, and in a key or a file name is exactly the difference a person cannot
//! otherwise see; `logfmt` writes it as `\t` as well.
//! Everything else, non-ASCII letters included, is left as written, and so is `\`: a name that
//! holds the text `\x1b` reads the same as one holding ESC, which is ambiguous to the eye but
//! harmless, and escaping `\` would double every separator of a Windows path.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `s` with every control character written as a visible escape: `\n`, `\r`, `\t`, `\x1b` (other
/// C0 and DEL), `\u{9b}` (C1, U+2028, U+2029). Borrowed when there is nothing to escape.
///
/// ```text
/// visible("evil\x1b]0;pwned\x07\r\nerror: forged.yaml") == r"evil\x1b]0;pwned\x07\r\nerror: forged.yaml"
/// ```
pub fn visible(s: &str) -> Cow<'_, str> {
    if !s.chars().any(escaped) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0'..='\u{1f}' | '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if escaped(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn escaped(c: char) -> bool {
    // And the bidirectional formatting characters ("Trojan Source": they reorder how a name or a
    // line is displayed), which the service's log keeps as written.
    breaks_a_line_or_commands(c)
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Characters a terminal or a line-based reader could take as a line break or a command: every
/// control character and the line and paragraph separators. The service's text log (`logfmt`)
/// escapes these.
pub fn breaks_a_line_or_commands(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

#[cfg(test)]
mod tests {
    use super::visible;

    #[test]
    fn control_characters_become_visible_escapes() {
        let cases = [
            ("rate_limits.yaml", "rate_limits.yaml"),
            ("", ""),
            (
                "evil\u{1b}]0;pwned\u{7}\u{1b}[2J\r\nerror: forged.yaml",
                r"evil\x1b]0;pwned\x07\x1b[2J\r\nerror: forged.yaml",
            ),
            ("nul\0del\u{7f}tab\t", r"nul\x00del\x7ftab\t"),
            ("csi\u{9b}31mnel\u{85}", r"csi\u{9b}31mnel\u{85}"),
            ("ls\u{2028}ps\u{2029}", r"ls\u{2028}ps\u{2029}"),
            ("lmy.\u{202e}lmay", r"lmy.\u{202e}lmay"),
            ("\u{2066}a\u{2069}\u{200f}", r"\u{2066}a\u{2069}\u{200f}"),
            ("ünïcode → ok, 日本語, C:\\config", "ünïcode → ok, 日本語, C:\\config"),
        ];
        for (input, expected) in cases {
            let out = visible(input);
            assert_eq!(out, expected, "{input:?}");
            assert!(!out.chars().any(char::is_control), "{out:?}");
        }
        assert!(matches!(visible("plain.yaml"), std::borrow::Cow::Borrowed(_)));
    }
}
