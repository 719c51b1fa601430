//! Diagnostics as a person reads them on stderr, rustc-style (annotate-snippets, what rustc
//! uses): `error[code]: message`, ` --> config/rate_limits.yaml:5:10` (the config directory as
//! given on the command line joined with the file name, so terminals and editors can jump), the
//! source line with a caret under the problem, and the help beneath. Coloured when stderr is a
//! terminal; plain when piped, with `NO_COLOR`, or `TERM=dumb` (`CLICOLOR_FORCE` forces colour).
//!
//! Secrets: a line is shown only for diagnostics whose problem does not hide it
//! (`DiagnosticKind::may_show_secret`, data the rule set), and every line shown goes through the
//! library's one secret knowledge (`hotconf::secret::mask_line`): what a diff would redact is
//! masked here too.
//!
//! Hostile names: everything a user wrote (the file's name in the origin and the title, the YAML
//! path in the label, keys quoted in the message and the help, the source line after masking)
//! goes through [`crate::escape::visible`], so a control character in any of them is shown as an
//! escape and never reaches the terminal. A source line keeps its tabs (annotate-snippets draws
//! each as four spaces, and a tab stays one column, so ` --> path:line:col` stays true for an
//! ordinary file); any other control character in it (which YAML refuses anyway) is escaped, the
//! caret stays under its token, and the column printed then counts the line as shown.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use annotate_snippets::{Level, Renderer, Snippet};
use hotconf::{Diagnostic, DiagnosticKind, Diagnostics, Sources};

use crate::escape::visible;

/// The text of each UTF-8 file of `sources`, by name, for the snippets.
pub fn texts(sources: &Sources) -> HashMap<String, String> {
    sources
        .files()
        .iter()
        .filter_map(|f| Some((f.name().to_owned(), String::from_utf8(f.bytes()?.to_vec()).ok()?)))
        .collect()
}

/// The text of each file named in `diagnostics`, read from `dir` through the library's one
/// non-blocking reader (a FIFO is refused, never waited on; 1 MiB at most), for when the sources
/// are not at hand.
pub fn texts_from_dir(dir: &Path, diagnostics: &Diagnostics) -> HashMap<String, String> {
    let mut texts = HashMap::new();
    for d in diagnostics.as_slice() {
        if d.line.is_none() || texts.contains_key(&d.file) {
            continue;
        }
        let file = hotconf::SourceFile::read(&dir.join(&d.file), hotconf::Sources::DEFAULT_MAX_FILE_BYTES);
        if let Some(text) = file.ok().and_then(|f| String::from_utf8(f.bytes()?.to_vec()).ok()) {
            texts.insert(d.file.clone(), text);
        }
    }
    texts
}

/// Whether stderr gets colour.
pub fn stderr_colour() -> bool {
    anstream::AutoStream::choice(&std::io::stderr()) != anstream::ColorChoice::Never
}

/// Every diagnostic, rendered, each followed by a blank line. `dir` is the config directory as
/// given on the command line (`None`: files of a stored version, named bare).
pub fn render(diagnostics: &Diagnostics, dir: Option<&Path>, texts: &HashMap<String, String>, colour: bool) -> String {
    let renderer = if colour { Renderer::styled() } else { Renderer::plain() };
    let mut out = String::new();
    for d in diagnostics.as_slice() {
        let _ = writeln!(out, "{}\n", one(d, dir, texts.get(&d.file).map(String::as_str), &renderer));
    }
    out
}

/// Prints [`render`] of `diagnostics` to stderr.
pub fn eprint(diagnostics: &Diagnostics, dir: Option<&Path>, texts: &HashMap<String, String>) {
    eprint!("{}", render(diagnostics, dir, texts, stderr_colour()));
}

fn one(d: &Diagnostic, dir: Option<&Path>, text: Option<&str>, renderer: &Renderer) -> String {
    let origin = match dir {
        Some(dir) => visible(&dir.join(&d.file).display().to_string()).into_owned(),
        None => visible(&d.file).into_owned(),
    };
    let message = visible(&d.kind.to_string()).into_owned();
    let help = d.kind.help().map(|h| visible(&h).into_owned());
    let code = visible(d.kind.code()).into_owned();
    let path_label = visible(d.path.as_deref().unwrap_or_default()).into_owned();
    let snippet = match (d.line, d.column, text) {
        (Some(line), Some(column), Some(text)) if !d.kind.may_show_secret() => {
            snippet_parts(text, line, column, &d.kind)
        }
        _ => None,
    };
    let title = match (&snippet, d.line, d.column) {
        (Some(_), ..) => message.clone(),
        (None, Some(l), Some(c)) => format!("{origin}:{l}:{c}: {}{message}", prefix(&path_label)),
        (None, Some(l), None) => format!("{origin}:{l}: {}{message}", prefix(&path_label)),
        (None, ..) => format!("{origin}: {}{message}", prefix(&path_label)),
    };
    let mut m = Level::Error.title(&title).id(&code);
    if let Some(parts) = &snippet {
        let mut s = Snippet::source(&parts.source).line_start(parts.line_start as usize).origin(&origin).fold(true);
        s = s.annotation(Level::Error.span(parts.span.clone()).label(&path_label));
        if let Some(first) = &parts.first {
            s = s.annotation(Level::Error.span(first.clone()).label("first written here"));
        }
        m = m.snippet(s);
    }
    if let Some(help) = &help {
        m = m.footer(Level::Help.title(help));
    }
    let rendered = renderer.render(m).to_string();
    rendered
}

fn prefix(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("{path}: ")
    }
}

/// The source shown: from the first line annotated to the last, masked then escaped, and the
/// spans in it.
struct Parts {
    source: String,
    line_start: u32,
    span: std::ops::Range<usize>,
    first: Option<std::ops::Range<usize>>,
}

fn snippet_parts(text: &str, line: u32, column: u32, kind: &DiagnosticKind) -> Option<Parts> {
    let first = match kind {
        DiagnosticKind::DuplicateKey { first: Some(first), .. } if first.0 <= line => Some(*first),
        _ => None,
    };
    let line_start = first.map_or(line, |f| f.0);
    let masked: Vec<String> = text
        .lines()
        .skip(line_start as usize - 1)
        .take((line - line_start + 1) as usize)
        .map(hotconf::secret::mask_line)
        .collect();
    if masked.len() != (line - line_start + 1) as usize {
        return None;
    }
    let lines: Vec<String> = masked.iter().map(|l| shown(l)).collect();
    let source = lines.join("\n");
    // Byte offset in `source` of a 1-based line and column (columns count the characters of the
    // line as written; an escape before the column moves it right by its width).
    let offset = |l: u32, c: u32| -> Option<usize> {
        let before: usize = lines[..(l - line_start) as usize].iter().map(|x| x.len() + 1).sum();
        let this = &masked[(l - line_start) as usize];
        let within = this.char_indices().nth(c as usize - 1).map(|(i, _)| i).unwrap_or(this.len());
        Some(before + shown(&this[..within]).len())
    };
    let span_at = |l: u32, c: u32| -> Option<std::ops::Range<usize>> {
        let start = offset(l, c)?;
        let rest = &source[start..];
        let len = match kind {
            DiagnosticKind::UnclosedFlow { .. } => rest.chars().next().map_or(0, char::len_utf8),
            _ => token_len(rest),
        };
        Some(start..start + len.max(usize::from(!rest.is_empty())))
    };
    Some(Parts {
        span: span_at(line, column)?,
        first: match first {
            Some((l, c)) => Some(span_at(l, c)?),
            None => None,
        },
        source,
        line_start,
    })
}

/// A source line as shown: every control character escaped but the tabs annotate-snippets draws.
fn shown(line: &str) -> String {
    line.split('\t').map(visible).collect::<Vec<_>>().join("\t")
}

/// The length of the token `rest` starts with: a quoted string, a flow collection's item, a key
/// (up to `:`), or a value (up to a comment or the line's end).
fn token_len(rest: &str) -> usize {
    let line = rest.lines().next().unwrap_or("");
    if let Some(q) = line.chars().next().filter(|c| *c == '"' || *c == '\'') {
        return line[1..].find(q).map_or(line.len(), |i| i + 2);
    }
    let mut end = line.len();
    for pat in [": ", " #", ",", "]", "}"] {
        if let Some(i) = line.find(pat) {
            end = end.min(i);
        }
    }
    if line[..end].ends_with(':') {
        end -= 1;
    }
    line[..end].trim_end().len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_everywhere_and_the_caret_stays_under_its_token() {
        let problem = hotconf::Problem::new("c\u{1b}", "bad `k\u{1b}y`").with_help("fix `k\u{1b}y`\r\nerror: forged");
        let d = Diagnostic::file("f\u{1b}[2J\nerror: forged.yaml", DiagnosticKind::Custom(Box::new(problem)))
            .at_path("a.k\u{1b}y")
            .at_position(Some((1, 6)));
        let texts = HashMap::from([(d.file.clone(), "k\u{1b}y: 0 # \u{7}\n".to_owned())]);
        let out = render(&Diagnostics::new(vec![d]), Some(Path::new("conf")), &texts, false);
        assert!(!out.chars().any(|c| c.is_control() && c != '\n'), "{out:?}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], r"error[c\x1b]: bad `k\x1by`");
        // The column counts the line as shown: `0` is its ninth character.
        assert_eq!(lines[1], r" --> conf/f\x1b[2J\nerror: forged.yaml:1:9");
        let source = lines.iter().position(|l| l.starts_with("1 | ")).expect("the source line");
        assert_eq!(lines[source], r"1 | k\x1by: 0 # \x07");
        // The caret under `0`, the sixth character as written.
        assert_eq!(lines[source + 1], r"  |         ^ a.k\x1by");
        assert!(out.contains(r"= help: fix `k\x1by`\r\nerror: forged"), "{out}");

        // A tab in a source line is drawn as spaces (by annotate-snippets, as before) and stays one
        // column in the location.
        let d = Diagnostic::file("a.yaml", DiagnosticKind::Custom(Box::new(hotconf::Problem::new("c", "m"))))
            .at_position(Some((1, 4)));
        let texts = HashMap::from([(d.file.clone(), "k:\t0\n".to_owned())]);
        let out = render(&Diagnostics::new(vec![d]), None, &texts, false);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(&lines[1..4], [" --> a.yaml:1:4", "  |", "1 | k:    0"], "{out}");
    }

    #[test]
    fn token_lengths() {
        for (rest, len) in [("30 # note", 2), ("groq, gemini]", 4), ("rmp: 5", 3), ("\"a b\": 1", 5), ("x", 1)] {
            assert_eq!(token_len(rest), len, "{rest}");
        }
    }
}
