//! A linear pre-scan of YAML text that enforces the nesting and alias limits *before* the parser
//! runs, so that refusing any input costs time linear in its size. Pure: works on the text only.
//!
//! Why: the YAML parser checks every open flow level at every token, so `{a: {a: {a: …` costs
//! time quadratic in the depth before its own recursion limit refuses it (200,000 levels under the
//! 1 MiB cap: minutes), and it replays an alias's whole node at every use, so aliases can expand a
//! small file into millions of nodes.
//!
//! The scan follows the parser's own tokenizer (libyaml's rules for where a token starts, what ends
//! a plain scalar, quotes, comments, block scalars and their indentation, tags, anchors) closely
//! enough to see every flow bracket and block collection the parser will see. Where the two could
//! disagree it errs on the side of counting: a bracket it cannot place counts as an opener, never as
//! a closer, so it may overestimate the depth of a strange document, never underestimate it. The
//! limits sit far beyond any real config: [`MAX_DEPTH`] levels and [`MAX_ALIAS_NODES`] nodes added
//! by aliases.

/// The deepest nesting accepted: block collections (one per indentation level) plus flow
/// collections (`[`, `{`) open at one point. Real configs use fewer than 10.
pub const MAX_DEPTH: usize = 64;

/// The most nodes aliases may add to a document (each `*name` adds the size of the node it names,
/// minus one). Real configs that use aliases add tens.
pub const MAX_ALIAS_NODES: u64 = 10_000;

/// The most nodes (scalars, collections, and what aliases expand to) one file may hold. It bounds
/// the parser's and the schema's work on a file under the size cap to tens of milliseconds; the
/// shipped config holds about 150, and one provider about 20.
pub const MAX_NODES: u64 = 50_000;

/// Why the pre-scan refused a text, and where (1-based line and column, in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Nesting deeper than [`MAX_DEPTH`].
    TooDeep {
        /// Line of the collection that went past the limit.
        line: u32,
        /// Its column.
        column: u32,
    },
    /// Aliases expand to more than [`MAX_ALIAS_NODES`] extra nodes, or an alias names a node that
    /// contains it.
    AliasExpansion {
        /// Line of the alias that went past the limit.
        line: u32,
        /// Its column.
        column: u32,
    },
    /// More than [`MAX_NODES`] nodes.
    TooManyNodes {
        /// Line of the node that went past the limit.
        line: u32,
        /// Its column.
        column: u32,
    },
}

/// Scans `text` once. `Ok` means the parser may run: its cost is then linear in the text's size.
pub fn prescan(text: &str) -> Result<(), Refusal> {
    prescan_within(text, MAX_NODES).map(drop)
}

/// [`prescan`] with at most `max_nodes` nodes (a bundle's remaining budget, at most
/// [`MAX_NODES`]): the number of nodes the text holds, or the refusal.
pub(crate) fn prescan_within(text: &str, max_nodes: u64) -> Result<u64, Refusal> {
    let mut scanner = Scanner::new(text.as_bytes());
    scanner.max_nodes = max_nodes.min(MAX_NODES);
    scanner.run()?;
    Ok(scanner.nodes)
}

/// Where the first flow collection (`[` or `{`) that is never closed opens (1-based line and
/// column), if one is: the place to report a parser error about it, which the parser only notices
/// at the end of the file.
pub fn unclosed_flow(text: &str) -> Option<(u32, u32)> {
    let mut scanner = Scanner::new(text.as_bytes());
    scanner.run().ok()?;
    scanner.unclosed
}

/// Where an anchored node ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Extent {
    /// A flow collection: when the flow level drops back to this.
    Flow(usize),
    /// A block node: at the next token left of `col`, or at `col` unless it is a `- ` continuing an
    /// indentless sequence under a mapping value.
    Block { col: isize, map_value: bool },
}

#[derive(Debug)]
struct Pending {
    name: Vec<u8>,
    line: u32,
    owner: isize,
    map_value: bool,
}

#[derive(Debug)]
struct OpenAnchor {
    name: Vec<u8>,
    start: u64,
    extent: Extent,
}

struct Scanner<'a> {
    text: &'a [u8],
    pos: usize,
    line: u32,
    col: usize,
    flow: usize,
    indents: Vec<usize>,
    /// Whether a simple key may start here, and where the level-0 one started (line, column).
    key_allowed: bool,
    key: Option<(u32, usize, usize)>,
    /// The last block-context indicator was `- ` (for an anchor's owner).
    after_entry: bool,
    nodes: u64,
    /// The most nodes allowed ([`MAX_NODES`], or less: what a bundle has left).
    max_nodes: u64,
    alias_added: u64,
    anchors: std::collections::HashMap<Vec<u8>, u64>,
    open: Vec<OpenAnchor>,
    /// An anchor waiting for its node: a scalar, alias or flow collection on its line, or a block
    /// node when the next token is on a later line.
    pending: Option<Pending>,
    /// Where each open flow collection started (line, column), innermost last.
    flow_opens: Vec<(u32, u32)>,
    /// The outermost flow collection still open at a document's end.
    unclosed: Option<(u32, u32)>,
}

impl<'a> Scanner<'a> {
    fn new(text: &'a [u8]) -> Self {
        // A leading byte order mark is not stripped: the parser is told the text is UTF-8 and
        // skips the mark as it skips any mark that starts a line (below, in `skip_to_token`).
        Self {
            text,
            pos: 0,
            line: 1,
            col: 0,
            flow: 0,
            indents: Vec::new(),
            key_allowed: true,
            key: None,
            after_entry: false,
            nodes: 0,
            max_nodes: MAX_NODES,
            alias_added: 0,
            anchors: std::collections::HashMap::new(),
            open: Vec::new(),
            pending: None,
            flow_opens: Vec::new(),
            unclosed: None,
        }
    }

    fn at(&self, offset: usize) -> u8 {
        self.text.get(self.pos + offset).copied().unwrap_or(0)
    }

    /// The length of the line break at `pos + offset` (`\n`, `\r\n`, `\r`, NEL, LS, PS), or 0.
    fn break_len(&self, offset: usize) -> usize {
        let t = &self.text[(self.pos + offset).min(self.text.len())..];
        match t {
            [b'\r', b'\n', ..] => 2,
            [b'\n' | b'\r', ..] => 1,
            [0xC2, 0x85, ..] => 2,
            [0xE2, 0x80, 0xA8 | 0xA9, ..] => 3,
            _ => 0,
        }
    }

    fn is_blank(&self, offset: usize) -> bool {
        matches!(self.at(offset), b' ' | b'\t')
    }

    fn is_blankz(&self, offset: usize) -> bool {
        self.pos + offset >= self.text.len() || self.is_blank(offset) || self.break_len(offset) > 0
    }

    fn eof(&self) -> bool {
        self.pos >= self.text.len()
    }

    /// Moves past one character (not a line break).
    fn advance(&mut self) {
        let b = self.at(0);
        let len = match b {
            0x00..=0x7F => 1,
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xFF => 4,
            _ => 1,
        };
        self.pos = (self.pos + len).min(self.text.len());
        self.col += 1;
    }

    /// Moves past one line break, if there is one here.
    fn newline(&mut self) -> bool {
        let n = self.break_len(0);
        if n == 0 {
            return false;
        }
        self.pos += n;
        self.line += 1;
        self.col = 0;
        true
    }

    fn skip_to_eol(&mut self) {
        while !self.eof() && self.break_len(0) == 0 {
            self.advance();
        }
    }

    fn position(&self) -> (u32, u32) {
        (self.line, self.col as u32 + 1)
    }

    fn check_depth(&self) -> Result<(), Refusal> {
        if self.indents.len() + self.flow > MAX_DEPTH {
            let (line, column) = self.position();
            return Err(Refusal::TooDeep { line, column });
        }
        Ok(())
    }

    fn indent(&self) -> isize {
        self.indents.last().map_or(-1, |&c| c as isize)
    }

    fn roll_indent(&mut self, col: usize) -> Result<(), Refusal> {
        if self.flow == 0 && self.indent() < col as isize {
            self.indents.push(col);
            self.nodes += 1;
            self.check_depth()?;
        }
        Ok(())
    }

    /// Closes anchored block nodes ended by a token at the current column (`entry`: it is `- `).
    fn close_block_anchors(&mut self, entry: bool) {
        let col = self.col as isize;
        while let Some(top) = self.open.last() {
            let Extent::Block { col: owner, map_value } = top.extent else { break };
            if col < owner || (col == owner && !(entry && map_value)) {
                self.close_top();
            } else {
                break;
            }
        }
    }

    fn close_top(&mut self) {
        if let Some(anchor) = self.open.pop() {
            self.anchors.insert(anchor.name, self.nodes - anchor.start);
        }
    }

    fn save_key(&mut self) {
        if self.key_allowed && self.flow == 0 {
            self.key = Some((self.line, self.col, self.pos));
        }
    }

    /// A scalar (or an alias of `size` nodes) completes any anchor waiting for its node.
    fn leaf(&mut self, size: u64) {
        self.nodes += size;
        if let Some(pending) = self.pending.take() {
            self.anchors.insert(pending.name, size);
        }
    }

    /// Records the outermost flow collection still open, if any, and forgets them all.
    fn note_unclosed(&mut self) {
        if self.unclosed.is_none() {
            self.unclosed = self.flow_opens.first().copied();
        }
        self.flow_opens.clear();
    }

    fn run(&mut self) -> Result<(), Refusal> {
        loop {
            self.skip_to_token();
            if self.eof() {
                self.note_unclosed();
                return Ok(());
            }
            // A key more than a line (or 1024 bytes) back can no longer be a simple key.
            if let Some((line, _, pos)) = self.key {
                if line < self.line || pos + 1024 < self.pos {
                    self.key = None;
                }
            }
            if self.nodes > self.max_nodes {
                let (line, column) = self.position();
                return Err(Refusal::TooManyNodes { line, column });
            }
            let c = self.at(0);
            if self.flow == 0 {
                while self.indent() > self.col as isize {
                    self.indents.pop();
                }
                let entry = c == b'-' && self.is_blankz(1);
                self.close_block_anchors(entry);
                // An anchor whose line ended (after a tag or a comment, say) names a block node.
                if self.pending.as_ref().is_some_and(|p| p.line < self.line) {
                    if let Some(Pending { name, owner, map_value, .. }) = self.pending.take() {
                        let extent = Extent::Block { col: owner, map_value };
                        self.open.push(OpenAnchor { name, start: self.nodes, extent });
                        // Ended at once (a null value) when this token is already outside it.
                        self.close_block_anchors(entry);
                    }
                }
            }
            if self.col == 0
                && (self.text[self.pos..].starts_with(b"---") || self.text[self.pos..].starts_with(b"..."))
                && self.is_blankz(3)
            {
                // A document boundary: everything block-level is closed.
                self.note_unclosed();
                self.indents.clear();
                self.flow = 0;
                while !self.open.is_empty() {
                    self.close_top();
                }
                self.pending = None;
                self.key = None;
                self.key_allowed = true;
                for _ in 0..3 {
                    self.advance();
                }
                continue;
            }
            if self.col == 0 && c == b'%' {
                self.skip_to_eol();
                continue;
            }
            match c {
                b'[' | b'{' => {
                    self.save_key();
                    let level = self.flow;
                    if let Some(Pending { name, .. }) = self.pending.take() {
                        self.open.push(OpenAnchor { name, start: self.nodes, extent: Extent::Flow(level) });
                    }
                    self.nodes += 1;
                    self.flow_opens.push(self.position());
                    self.flow += 1;
                    self.check_depth()?;
                    self.key_allowed = true;
                    self.advance();
                }
                b']' | b'}' => {
                    self.flow = self.flow.saturating_sub(1);
                    self.flow_opens.pop();
                    while matches!(self.open.last(), Some(OpenAnchor { extent: Extent::Flow(l), .. }) if *l >= self.flow)
                    {
                        self.close_top();
                    }
                    self.key_allowed = false;
                    self.advance();
                }
                b',' => {
                    self.key_allowed = true;
                    self.advance();
                }
                b'-' if self.is_blankz(1) => {
                    self.roll_indent(self.col)?;
                    self.key_allowed = true;
                    self.after_entry = true;
                    self.advance();
                    continue;
                }
                b'?' if self.flow > 0 || self.is_blankz(1) => {
                    self.roll_indent(self.col)?;
                    self.key_allowed = true;
                    self.advance();
                }
                b':' if self.flow > 0 || self.is_blankz(1) => {
                    if self.flow == 0 {
                        let col = self.key.take().map_or(self.col, |(_, col, _)| col);
                        self.roll_indent(col)?;
                    }
                    self.key_allowed = self.flow == 0;
                    self.after_entry = false;
                    self.advance();
                }
                b'*' => {
                    self.save_key();
                    let (line, column) = self.position();
                    self.advance();
                    let name = self.name();
                    if self.open.iter().any(|a| a.name == name) {
                        return Err(Refusal::AliasExpansion { line, column });
                    }
                    let size = self.anchors.get(&name).copied().unwrap_or(1);
                    self.alias_added = self.alias_added.saturating_add(size.saturating_sub(1));
                    if self.alias_added > MAX_ALIAS_NODES {
                        return Err(Refusal::AliasExpansion { line, column });
                    }
                    self.leaf(size);
                    self.key_allowed = false;
                }
                b'&' => {
                    self.save_key();
                    self.advance();
                    let name = self.name();
                    self.key_allowed = false;
                    self.anchor(name);
                }
                b'!' => {
                    self.save_key();
                    self.tag();
                    self.key_allowed = false;
                }
                b'|' | b'>' if self.flow == 0 => {
                    self.block_scalar();
                    self.leaf(1);
                    self.key_allowed = true;
                }
                b'\'' | b'"' => {
                    self.save_key();
                    self.quoted(c);
                    self.leaf(1);
                    self.key_allowed = false;
                }
                _ => {
                    self.save_key();
                    let crossed_line = self.plain();
                    self.leaf(1);
                    self.key_allowed = crossed_line && self.flow == 0;
                }
            }
            self.after_entry = false;
        }
    }

    /// Skips blanks, comments and line breaks up to the next token.
    fn skip_to_token(&mut self) {
        loop {
            // The parser skips a byte order mark that starts a line (counting it as a column).
            if self.col == 0 && self.text[self.pos..].starts_with(b"\xEF\xBB\xBF") {
                self.advance();
            }
            while self.is_blank(0) {
                self.advance();
            }
            if self.at(0) == b'#' {
                self.skip_to_eol();
            }
            if !self.newline() {
                return;
            }
            if self.flow == 0 {
                self.key_allowed = true;
            }
        }
    }

    /// An anchor or alias name: letters, digits, `_` and `-`.
    fn name(&mut self) -> Vec<u8> {
        let start = self.pos;
        while matches!(self.at(0), b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z' | b'_' | b'-') {
            self.advance();
        }
        self.text[start..self.pos].to_vec()
    }

    /// `&name` was read: the anchor names the next node (see [`Pending`]).
    fn anchor(&mut self, name: Vec<u8>) {
        let (owner, map_value) = (self.indent(), !self.after_entry);
        self.pending = Some(Pending { name, line: self.line, owner, map_value });
    }

    /// A tag: `!<uri>` or `!handle!suffix` (URI characters, never `,`, `[` or `]`).
    fn tag(&mut self) {
        self.advance();
        if self.at(0) == b'<' {
            while !self.is_blankz(0) && self.at(0) != b'>' {
                self.advance();
            }
            if self.at(0) == b'>' {
                self.advance();
            }
            return;
        }
        while self.at(0).is_ascii_alphanumeric() || b"-_;/?:@&=+$.%!~*'()".contains(&self.at(0)) {
            self.advance();
        }
    }

    /// A single- or double-quoted scalar, possibly over several lines.
    fn quoted(&mut self, quote: u8) {
        self.advance();
        while !self.eof() {
            let c = self.at(0);
            if self.newline() {
                continue;
            }
            if quote == b'\'' && c == b'\'' {
                if self.at(1) == b'\'' {
                    self.advance();
                    self.advance();
                    continue;
                }
                self.advance();
                return;
            }
            if quote == b'"' && c == b'\\' {
                self.advance();
                if !self.newline() && !self.eof() {
                    self.advance();
                }
                continue;
            }
            self.advance();
            if c == quote {
                return;
            }
        }
    }

    /// A plain scalar, by libyaml's rules: it ends at `: `, ` #`, a flow indicator in flow
    /// context, a document marker, or a line indented no deeper than the enclosing block.
    /// Returns whether it ended after a line break (a simple key may then follow).
    fn plain(&mut self) -> bool {
        let min_col = self.indent() + 1;
        let mut crossed_line = false;
        loop {
            if self.col == 0
                && (self.text[self.pos..].starts_with(b"---") || self.text[self.pos..].starts_with(b"..."))
                && self.is_blankz(3)
            {
                return crossed_line;
            }
            if self.at(0) == b'#' {
                return crossed_line;
            }
            while !self.is_blankz(0) {
                let c = self.at(0);
                if (c == b':' && (self.is_blankz(1) || (self.flow > 0 && b",?[]{}".contains(&self.at(1)))))
                    || (self.flow > 0 && b",[]{}".contains(&c))
                {
                    return false;
                }
                self.advance();
            }
            if self.eof() {
                return crossed_line;
            }
            crossed_line = false;
            while self.is_blank(0) || self.break_len(0) > 0 {
                if self.newline() {
                    crossed_line = true;
                } else {
                    self.advance();
                }
            }
            if self.flow == 0 && (self.col as isize) < min_col {
                return crossed_line;
            }
        }
    }

    /// A literal or folded block scalar: the header, then every line indented at least as deep as
    /// its content (or blank).
    fn block_scalar(&mut self) {
        self.advance();
        let mut explicit = 0usize;
        while matches!(self.at(0), b'+' | b'-' | b'1'..=b'9') {
            if self.at(0).is_ascii_digit() {
                explicit = usize::from(self.at(0) - b'0');
            }
            self.advance();
        }
        self.skip_to_eol();
        let base = self.indent();
        let mut indent = if explicit > 0 { (base.max(0) as usize) + explicit } else { 0 };
        if !self.newline() {
            return;
        }
        // Leading blank lines, and the first content line, fix the indentation when not explicit.
        let mut max_seen = 0;
        loop {
            let start = self.pos;
            let mut spaces = 0;
            while self.at(spaces) == b' ' && (indent == 0 || spaces < indent) {
                spaces += 1;
            }
            max_seen = max_seen.max(spaces);
            if self.pos + spaces < self.text.len() && self.break_len(spaces) > 0 {
                for _ in 0..spaces {
                    self.advance();
                }
                self.newline();
                continue;
            }
            if indent == 0 {
                indent = max_seen.max((base + 1).max(1) as usize);
            }
            if spaces < indent || self.pos + spaces >= self.text.len() {
                // Not content: the scalar ends before this line.
                debug_assert_eq!(self.pos, start);
                return;
            }
            self.skip_to_eol();
            if !self.newline() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deep_flow(open: &str, close: &str, n: usize) -> String {
        format!("{}x{}", open.repeat(n), close.repeat(n))
    }

    #[test]
    fn accepts_real_configs() {
        let cases: &[&str] = &[
            include_str!("../../config/rate_limits.yaml"),
            include_str!("../../config/providers.yaml"),
            include_str!("../../config/agent_chains.yaml"),
            "a: \"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"\n",
            "a: '{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{''{{{'\n",
            "a: x # [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n",
            "# {{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{\na: 1\n",
            "a: |\n  [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n  {{{{\nb: 2\n",
            "a: >-\n\n   {{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{\nb: 2\n",
            "a: b[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n",
            "url: http://x/#[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n",
            "a: \"multi\n  line [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"\n",
            "defaults: &d {rpm: 1, burst: 1, tokens_per_minute: 1}\ngroq: *d\ngemini: *d\n",
            "chain: &c\n  primary: a\n  fallbacks: [b, c]\nmary: *c\nbob: *c\n",
            "list:\n- &x\n  a: 1\n- *x\n- *x\n",
            &format!("a: {}\n", deep_flow("[", "]", MAX_DEPTH - 1)),
            &format!("a: [{}]\n", vec![deep_flow("[", "]", 10); 1000].join(", ")),
        ];
        for (i, text) in cases.iter().enumerate() {
            assert_eq!(prescan(text), Ok(()), "case {i}: {}", &text[..text.len().min(200)]);
            // The parser agrees these are valid YAML.
            assert!(yaml_serde::from_str::<yaml_serde::Value>(text).is_ok(), "case {i}");
        }
    }

    #[test]
    fn refuses_deep_and_exploding_inputs_where_they_go_wrong() {
        let block: String = (0..=MAX_DEPTH).map(|i| format!("{}k:\n", " ".repeat(i))).collect();
        let compact = format!("{}x\n", "- ".repeat(MAX_DEPTH + 1));
        let bomb = "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n";
        let block_bomb = format!("a: &a\n{}b: [{}]\n", "  k: v\n".repeat(200), "*a, ".repeat(100));
        let cases: &[(&str, &str, Refusal)] = &[
            ("flow maps", &format!("a: {}", "{a: ".repeat(100_000)), Refusal::TooDeep { line: 1, column: 4 + 4 * 63 }),
            ("flow lists", &deep_flow("[", "]", 1000), Refusal::TooDeep { line: 1, column: 65 }),
            (
                "after a comment line",
                &format!("# ]]]]\n\n{}", deep_flow("[", "]", 65)),
                Refusal::TooDeep { line: 3, column: 65 },
            ),
            (
                "after a quoted bracket",
                &format!("a: \"]]]\"\nb: {}", deep_flow("[", "]", 65)),
                Refusal::TooDeep { line: 2, column: 67 },
            ),
            (
                "after a block scalar",
                &format!("a: |\n  ]]]\nb: {}", deep_flow("[", "]", 65)),
                Refusal::TooDeep { line: 3, column: 67 },
            ),
            (
                "block scalar ended by a less indented line",
                &format!("- k: |\n   x\n  {}", deep_flow("[", "]", 65)),
                Refusal::TooDeep { line: 3, column: 65 },
            ),
            (
                "plain scalar ended by the indentation",
                &format!("k: v ]]]\n{}", deep_flow("[", "]", 65)),
                Refusal::TooDeep { line: 2, column: 64 },
            ),
            (
                "a line separator ends a block scalar",
                &format!("a: |\n  x\u{2028}{}", deep_flow("[", "]", 65)),
                Refusal::TooDeep { line: 3, column: 64 },
            ),
            ("tag with brackets", &format!("{}x", "[!t ".repeat(65)), Refusal::TooDeep { line: 1, column: 4 * 64 + 1 }),
            ("block mappings", &block, Refusal::TooDeep { line: 65, column: 66 }),
            ("compact sequences", &compact, Refusal::TooDeep { line: 1, column: 129 }),
            ("billion laughs", bomb, Refusal::AliasExpansion { line: 5, column: 8 }),
            ("aliases of a block node", &block_bomb, Refusal::AliasExpansion { line: 202, column: 105 }),
            (
                "aliases of a block node after a tag",
                &format!("a: &a !!map\n{}b: [{}]\n", "  k: v\n".repeat(200), "*a, ".repeat(100)),
                Refusal::AliasExpansion { line: 202, column: 105 },
            ),
            ("recursive alias", "a: &a [x, *a]\n", Refusal::AliasExpansion { line: 1, column: 11 }),
            (
                "a second byte order mark starts a plain scalar",
                &format!("\u{feff}\u{feff}\"{}", "{a: ".repeat(70)),
                Refusal::TooDeep { line: 1, column: 260 },
            ),
            ("many nodes", &"k: v\n".repeat(30_000), Refusal::TooManyNodes { line: 25_001, column: 1 }),
        ];
        for (what, text, expected) in cases {
            assert_eq!(prescan(text), Err(*expected), "{what}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 3000, ..Default::default() })]

        /// Differential check against the parser: whatever text comes first (quotes, comments, block
        /// scalars, tags, anchors, odd indentation), if the parser reaches 128 levels of the deep
        /// part, the pre-scan has refused the text (as too deep, or earlier for another reason).
        #[test]
        fn never_lets_the_parser_reach_the_deep_part(
            prefix in proptest::collection::vec(
                proptest::sample::select(vec![
                    "[", "]", "{", "}", ",", ":", ": ", "- ", "? ", "#", " #", "'", "''", "\"", "\\", "|", ">", "|2",
                    "&a ", "*a", "!t ", "!<x> ", "---", "...", "\n", "\n  ", "\n    ", " ", "\t", "a", "k: ", "x",
                    "\u{2028}", "\r", "%", "- - ", "k:\n- ", ": |\n", ": >-\n", "  ", "\u{85}", "\u{feff}", "é",
                ]),
                0..24,
            ),
            open in proptest::sample::select(vec!["[", "{a: ", "{", "[[{a: "]),
        ) {
            let text = format!("{}{}x", prefix.concat(), open.repeat(130));
            if let Err(e) = yaml_serde::from_str::<yaml_serde::Value>(&text) {
                if e.to_string().contains("recursion limit exceeded") {
                    proptest::prop_assert!(
                        prescan(&text).is_err(),
                        "the parser went 128 deep in {:?}, the pre-scan said {:?}", text, prescan(&text)
                    );
                }
            }
        }
    }

    fn expanded_size(value: &yaml_serde::Value) -> u64 {
        use yaml_serde::Value;
        1 + match value {
            Value::Sequence(items) => items.iter().map(expanded_size).sum(),
            Value::Mapping(map) => map.iter().map(|(k, v)| expanded_size(k) + expanded_size(v)).sum(),
            Value::Tagged(tagged) => expanded_size(&tagged.value),
            _ => 0,
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 3000, ..Default::default() })]

        /// Differential check against the parser: whatever the text, if the pre-scan lets it
        /// through, the value the parser builds (aliases expanded) stays within the node limit.
        #[test]
        fn never_lets_aliases_expand_past_the_limit(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "a: &a [x, x, x, x, x, x, x, x, x, x]\n", "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n",
                    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n", "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n",
                    "e: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n", "f: &a\n", "g: &b !!seq\n", "  - *a\n", "  - *b\n",
                    "  - *c\n", "  k: *d\n", "- &c\n", "- *c\n", "- [*b, *b]\n", "h: &d {x: *c, y: *c}\n", "  # c\n",
                    "i: *d\n", "j: [*c, *d]\n", "l: &b [*c, *d]\n", "m: &c [*d, *d]\n", "n: &d [*c, *c, *c]\n",
                    "  - &a [*d, *d]\n", "  - x\n", "&a ", "*a", "[", "]", "\n", "- ", "k: ", "x", "'", "|\n", "  ",
                ]),
                0..40,
            ),
        ) {
            let text = parts.concat();
            if prescan(&text).is_ok() {
                if let Ok(value) = yaml_serde::from_str::<yaml_serde::Value>(&text) {
                    let size = expanded_size(&value);
                    proptest::prop_assert!(size <= MAX_NODES + 1, "{size} nodes from {text:?}");
                }
            }
        }
    }

    /// Alias bombs in every anchor placement: refused when they would explode, accepted (and
    /// parsed to a value of the size the pre-scan counted) when small.
    #[test]
    fn alias_bombs_in_every_style() {
        fn bomb(style: usize, fanout: usize, levels: usize) -> String {
            let mut text = String::from("l0: &l0 x\n");
            for l in 1..=levels {
                let refs: Vec<String> = (0..fanout).map(|_| format!("*l{}", l - 1)).collect();
                text += &match style {
                    0 => format!("l{l}: &l{l} [{}]\n", refs.join(", ")),
                    1 => format!("l{l}: &l{l}\n{}", refs.iter().map(|r| format!("  - {r}\n")).collect::<String>()),
                    2 => format!(
                        "l{l}: &l{l} !!map # c\n{}",
                        (0..fanout).map(|i| format!("  k{i}: *l{}\n", l - 1)).collect::<String>()
                    ),
                    3 => {
                        format!("l{l}:\n  - &l{l}\n{}", refs.iter().map(|r| format!("    - {r}\n")).collect::<String>())
                    }
                    _ => format!("l{l}: &l{l}\n{}", refs.iter().map(|r| format!("- {r}\n")).collect::<String>()),
                };
            }
            text
        }
        for style in 0..5 {
            let big = bomb(style, 10, 6);
            assert!(matches!(prescan(&big), Err(Refusal::AliasExpansion { .. })), "style {style}: {big}");
            let small = bomb(style, 3, 4);
            assert_eq!(prescan(&small), Ok(()), "style {style}: {small}");
            let value = yaml_serde::from_str::<yaml_serde::Value>(&small)
                .unwrap_or_else(|e| panic!("style {style}: {e}\n{small}"));
            assert!(expanded_size(&value) < 1000, "style {style}");
        }
    }
}
