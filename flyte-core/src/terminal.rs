//! Text for a terminal: what a run stored (task and run names, errors,
//! log lines) is user data, and a terminal takes some characters as
//! commands. The command line, the live progress and anything else that
//! prints stored text to a person show it through [`printable`].

use std::borrow::Cow;
use std::fmt::Write as _;

/// Stored text (task and run names, errors, log lines, progress lines:
/// whatever a run wrote) as a terminal may be given it: every character
/// that could drive the terminal is shown as an escape instead, as `ls`
/// and `git` do, so that no error or log line can clear the screen, move
/// the cursor to forge other lines, plant a link (OSC 8) or write the
/// clipboard (OSC 52). C0 controls (`\n`, `\r`, `\t`, `\e` for escape,
/// `\xNN` for the others), DEL, the C1 controls (`\u{9b}` is a CSI to
/// some terminals) and the bidirectional overrides and isolates (which
/// reorder what is shown) are escaped; everything else is kept. For
/// tables and human output only: `-o json` keeps the exact text, escaped
/// by JSON.
///
/// ```
/// use flyte_core::terminal::printable;
///
/// assert_eq!(printable("ok\x1b[2J"), "ok\\e[2J");
/// assert_eq!(printable("plain"), "plain");
/// ```
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut shown = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => shown.push_str("\\n"),
            '\r' => shown.push_str("\\r"),
            '\t' => shown.push_str("\\t"),
            '\x1b' => shown.push_str("\\e"),
            c if (c as u32) < 0x20 || c == '\x7f' => {
                let _ = write!(shown, "\\x{:02x}", c as u32);
            }
            c if needs_escape(c) => {
                let _ = write!(shown, "\\u{{{:x}}}", c as u32);
            }
            c => shown.push(c),
        }
    }
    Cow::Owned(shown)
}

/// Whether `c` could drive a terminal or reorder what it shows.
fn needs_escape(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        | '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}'
        | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_text_keeps_what_is_harmless_and_escapes_what_drives_a_terminal() {
        assert!(matches!(printable("plain ünïcode ✓"), Cow::Borrowed(_)));
        assert_eq!(
            printable("a\x1b]52;c;eA==\x07b\r\n\t\x00\x7f\u{9b}2J\u{202e}\u{2066}\u{2028}z"),
            "a\\e]52;c;eA==\\x07b\\r\\n\\t\\x00\\x7f\\u{9b}2J\\u{202e}\\u{2066}\\u{2028}z"
        );
    }
}
