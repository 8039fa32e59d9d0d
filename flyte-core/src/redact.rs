//! Passwords out of what people see: the one function every part of flyte
//! calls before it shows a database URL (in an error, `--help`, `Debug`, a
//! log line, a span, the report or the UI).
//!
//! It works on text, not on a parsed URL, because the text to show is
//! often one that does not parse: a typo in the scheme, a bad port, an
//! `sslmode` the driver does not know. It redacts:
//! - the password of a URL's user (`postgres://user:PASSWORD@host/db`),
//!   also when the password holds `/`, `@` or `:` unescaped, and in every
//!   URL of the text;
//! - `password=` and `sslpassword=` parameters, in a URL's query
//!   (`?password=...&...`) and in the key=value form
//!   (`host=db password='it''s secret' dbname=x`), quoted or not.
//!
//! ```
//! use flyte_core::redact;
//!
//! assert_eq!(
//!     redact::url("postgres://flyte:hunter2@db.example/flyte"),
//!     "postgres://flyte:***@db.example/flyte"
//! );
//! assert_eq!(
//!     redact::url("host=db password='hunter 2' dbname=flyte"),
//!     "host=db password=*** dbname=flyte"
//! );
//! ```

use std::fmt;

/// What a password is shown as.
pub const MASK: &str = "***";

/// Parameters whose value is a secret.
const SECRET_KEYS: [&str; 2] = ["password", "sslpassword"];

/// `text` with every password in it replaced by [`MASK`].
pub fn url(text: &str) -> String {
    let text = userinfo_passwords(text);
    parameter_values(&text)
}

/// A URL (or connection string) that shows itself redacted, for `Debug`
/// and `Display` of types that hold one.
///
/// ```
/// use flyte_core::redact::Redacted;
///
/// let shown = format!("{:?}", Redacted("postgres://u:pw@h/db"));
/// assert_eq!(shown, "\"postgres://u:***@h/db\"");
/// ```
#[derive(Clone, Copy)]
pub struct Redacted<'a>(pub &'a str);

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&url(self.0), f)
    }
}

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&url(self.0))
    }
}

/// `scheme://user:password@host` → `scheme://user:***@host`, for each
/// `://` of `text`. The user's part ends at the last `@` before the query
/// (`?`), a fragment (`#`), white space or the next URL: a password with
/// an unescaped `@` or `/` is hidden whole, and at worst a port and path
/// that hold an `@` are hidden too.
fn userinfo_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(scheme_end) = rest.find("://") {
        let (head, tail) = rest.split_at(scheme_end + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c == '?' || c == '#' || c.is_whitespace())
            .unwrap_or(tail.len());
        let end = tail[..end].find("://").map_or(end, |next| {
            // The next URL starts after the last separator before it.
            tail[..next].rfind([',', ';', ' ']).unwrap_or(next)
        });
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..=colon]);
                        out.push_str(MASK);
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// `password=VALUE` → `password=***` (and `sslpassword`), where the key
/// starts the text or follows white space, `?`, `&` or `;`, in any case.
/// A value ends at `&` or white space, or at its closing quote when it is
/// quoted (`'...'` with `''` or `\'` inside, as libpq reads it).
fn parameter_values(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let bytes = text.as_bytes();
    while i < text.len() {
        let starts_key = i == 0 || matches!(bytes[i - 1], b'?' | b'&' | b';') || {
            bytes[i - 1].is_ascii_whitespace()
        };
        let key = starts_key
            .then(|| {
                SECRET_KEYS.iter().find(|key| {
                    text[i..]
                        .get(..key.len())
                        .is_some_and(|k| k.eq_ignore_ascii_case(key))
                })
            })
            .flatten();
        let Some(key) = key else {
            let c = text[i..].chars().next().expect("i is on a char boundary");
            out.push(c);
            i += c.len_utf8();
            continue;
        };
        // The key, spaces, `=`, spaces (key=value form allows them).
        let mut j = i + key.len();
        while j < text.len() && bytes[j] == b' ' {
            j += 1;
        }
        if j >= text.len() || bytes[j] != b'=' {
            out.push_str(&text[i..i + key.len()]);
            i += key.len();
            continue;
        }
        j += 1;
        while j < text.len() && bytes[j] == b' ' {
            j += 1;
        }
        out.push_str(&text[i..j]);
        out.push_str(MASK);
        i = value_end(text, j);
    }
    out
}

/// Where the value starting at `start` ends.
fn value_end(text: &str, start: usize) -> usize {
    let bytes = text.as_bytes();
    if bytes.get(start) == Some(&b'\'') {
        let mut j = start + 1;
        while j < bytes.len() {
            match bytes[j] {
                b'\\' => j += 2,
                b'\'' if bytes.get(j + 1) == Some(&b'\'') => j += 2,
                b'\'' => return j + 1,
                _ => j += 1,
            }
        }
        return bytes.len();
    }
    text[start..]
        .find(|c: char| c == '&' || c.is_whitespace())
        .map_or(text.len(), |end| start + end)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "PLANTED-s3cret";

    fn hidden(text: &str) -> String {
        let shown = url(text);
        assert!(
            !shown.contains(SECRET) && !shown.contains("s3cret"),
            "{text:?} was shown as {shown:?}"
        );
        shown
    }

    #[test]
    fn the_password_of_a_url_is_masked_and_the_rest_kept() {
        assert_eq!(
            hidden("postgres://flyte:PLANTED-s3cret@db.example:5433/fleet?sslmode=require"),
            "postgres://flyte:***@db.example:5433/fleet?sslmode=require"
        );
        assert_eq!(
            hidden("postgresql://u:PLANTED-s3cret@h1:5432,h2:5433/db"),
            "postgresql://u:***@h1:5432,h2:5433/db"
        );
        assert_eq!(url("postgres://flyte@db/x"), "postgres://flyte@db/x");
        assert_eq!(url("postgres://db/x"), "postgres://db/x");
        assert_eq!(url("no url here"), "no url here");
    }

    #[test]
    fn unescaped_separators_in_the_password_do_not_reveal_it() {
        assert_eq!(
            hidden("postgres://u:PLANTED/s3cret@x@host/db"),
            "postgres://u:***@host/db"
        );
        assert_eq!(
            hidden("postgres://u:PLANTED:s3cret@host/db"),
            "postgres://u:***@host/db"
        );
    }

    #[test]
    fn urls_that_do_not_parse_are_masked_too() {
        hidden("postgress://u:PLANTED-s3cret@host/db");
        hidden("postgres://u:PLANTED-s3cret@host:notaport/db");
        hidden("postgres://u:PLANTED-s3cret@host/db?sslmode=verify-full");
        hidden("error: \"postgres://u:PLANTED-s3cret@host/db\" is not a URL");
        hidden("two: postgres://a:PLANTED-s3cret@h/db and postgres://b:PLANTED-s3cret@h/db");
    }

    #[test]
    fn password_parameters_are_masked_in_both_forms() {
        assert_eq!(
            hidden("postgres://u@h/db?password=PLANTED-s3cret&sslmode=require"),
            "postgres://u@h/db?password=***&sslmode=require"
        );
        assert_eq!(
            hidden("host=h password=PLANTED-s3cret dbname=x"),
            "host=h password=*** dbname=x"
        );
        assert_eq!(
            hidden("host=h PASSWORD = 'PLANTED s3cret''s \\' too' dbname=x"),
            "host=h PASSWORD = *** dbname=x"
        );
        assert_eq!(
            hidden("host=h sslpassword=PLANTED-s3cret"),
            "host=h sslpassword=***"
        );
        // Not a parameter: a word that ends in "password".
        assert_eq!(url("mypassword=x"), "mypassword=x");
    }

    #[test]
    fn redacted_shows_the_masked_text() {
        let value = Redacted("postgres://u:PLANTED-s3cret@h/db");
        assert_eq!(format!("{value}"), "postgres://u:***@h/db");
        assert_eq!(format!("{value:?}"), "\"postgres://u:***@h/db\"");
    }
}
