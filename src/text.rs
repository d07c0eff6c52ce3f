//! Text that reaches a person: values from AWS (names, tags, policy Sids) and from other
//! people's files are shown as data, never as terminal commands or layout. Control characters,
//! bidirectional overrides and invisible format characters become visible `\u{..}` escapes.

use std::borrow::Cow;

/// True for the characters a terminal or a reader would act on rather than show: C0 and C1
/// controls (ESC starts ANSI/OSC sequences, CR and LF forge lines), DEL, bidirectional
/// embeddings, overrides and isolates (they reorder text), zero-width and other invisible
/// format characters, and the Unicode line and paragraph separators.
pub fn is_hazard(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{206f}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
        )
}

/// `text` with every hazardous character replaced by a visible escape (`\u{1b}`); borrowed
/// when there is none.
pub fn visible(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_hazard) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_hazard(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Like [`visible`], but keeps line feeds: for messages xscan lays out itself (errors with a
/// `help:` line) and multi-line text such as pretty-printed evidence.
pub fn visible_lines(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c != '\n' && is_hazard(c)) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.split('\n')
            .map(|line| visible(line).into_owned())
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hazards_become_visible() {
        assert_eq!(visible("nb-1"), "nb-1");
        assert_eq!(visible("a\x1b]0;title\x07b"), "a\\u{1b}]0;title\\u{7}b");
        assert_eq!(visible("x\ny\rz"), "x\\u{a}y\\u{d}z");
        assert_eq!(visible("\u{202e}gpj.exe"), "\\u{202e}gpj.exe");
        assert_eq!(visible("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(visible_lines("a\nb\x1b[2J"), "a\nb\\u{1b}[2J");
        assert_eq!(visible("café ✓ 名前"), "café ✓ 名前");
    }
}
