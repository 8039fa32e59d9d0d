//! Who may use the UI, and what every answer carries: the token, the
//! loopback host check, the same-origin check of requests that change
//! something, and the headers that keep store text from becoming markup.

use axum::extract::{Query, Request, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use std::sync::Arc;

use crate::api::ApiError;

/// The shortest token accepted.
pub(crate) const MIN_TOKEN_LEN: usize = 16;

/// The cookie a browser keeps the token in, once given `?token=`.
const COOKIE: &str = "flyte_ui_token";

/// A secret every request must carry; never shown (its `Debug` is a mask).
#[derive(Clone, PartialEq, Eq)]
pub struct Token(Arc<str>);

impl Token {
    /// The token `text` (checked for length when the UI starts).
    pub fn new(text: impl Into<String>) -> Self {
        Token(Arc::from(text.into()))
    }

    /// Its length in characters.
    pub fn len(&self) -> usize {
        self.0.chars().count()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `given` is this token, compared in time that does not depend
    /// on where they differ.
    fn matches(&self, given: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), given.as_bytes());
        let mut differ = a.len() ^ b.len();
        for (i, x) in a.iter().enumerate() {
            differ |= usize::from(x ^ b.get(i).copied().unwrap_or(!x));
        }
        differ == 0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(****)")
    }
}

/// What the guard checks requests against.
#[derive(Debug, Clone)]
pub(crate) struct Access {
    /// The token, if one is required.
    pub(crate) token: Option<Token>,
    /// Bound to loopback: requests must name a loopback host.
    pub(crate) loopback: bool,
}

/// Checks every request: the host (on loopback), the token, and for a
/// request that changes something its origin and body type; then adds the
/// headers every answer carries.
pub(crate) async fn guard(
    State(access): State<Arc<Access>>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = match admit(&access, &request) {
        Ok(Admit::Pass) => next.run(request).await,
        Ok(Admit::Remember(token)) => remember(&request, &token),
        Err(e) => e.into_response(),
    };
    harden(response.headers_mut());
    response
}

enum Admit {
    Pass,
    /// `?token=` in a browser's address: set the cookie and go to the same
    /// page without the token in its address (nor in history or referrers).
    Remember(String),
}

fn admit(access: &Access, request: &Request) -> Result<Admit, ApiError> {
    let headers = request.headers();
    if access.loopback && !loopback_host(headers) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "bad_host",
            "this UI listens on loopback and answers only requests for localhost, 127.0.0.1 or [::1]",
        )
        .hint("open it as http://127.0.0.1:PORT; to serve other hosts, bind elsewhere with a --token"));
    }
    if let Some(token) = &access.token {
        let query_token = query_token(request.uri());
        let given = bearer(headers)
            .or_else(|| cookie(headers))
            .or(query_token.clone());
        if !given.as_deref().is_some_and(|g| token.matches(g)) {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this UI needs its token",
            )
            .hint("send `Authorization: Bearer TOKEN`, or open the page once as /?token=TOKEN (the token given to `flyte ui --token` or FLYTE_UI_TOKEN)"));
        }
        if let Some(t) = query_token {
            if request.method() == Method::GET && !request.uri().path().starts_with("/api/") {
                return Ok(Admit::Remember(t));
            }
        }
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        same_origin(headers)?;
    }
    Ok(Admit::Pass)
}

/// A state-changing request must come from the UI's own pages or from a
/// script (no `Origin`, or the same one), with a JSON body type: an HTML
/// form of another site can send neither.
fn same_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let cross = || {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "cross_origin",
            "a request that changes something must come from the UI's own pages",
        )
        .hint("send it from the UI, or from a script without an Origin header")
    };
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if site != "same-origin" && site != "none" {
            return Err(cross());
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let own = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .is_some_and(|rest| rest == host);
        if !own {
            return Err(cross());
        }
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| {
            t.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
    if !json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "json_required",
            "a request that changes something must send `Content-Type: application/json`",
        )
        .hint("send a JSON body, `{}` when there is nothing to say"));
    }
    Ok(())
}

/// Whether the request's `Host` is a loopback name.
fn loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(|t| t.trim().to_owned())
}

fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE).then(|| value.to_owned())
        })
}

/// `?token=` of a page's address, decoded as forms are.
fn query_token(uri: &Uri) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct TokenQuery {
        token: Option<String>,
    }
    Query::<TokenQuery>::try_from_uri(uri).ok()?.0.token
}

/// Sets the token's cookie and sends the browser to the same page without
/// `?token=`.
fn remember(request: &Request, token: &str) -> Response {
    let path = request.uri().path();
    let rest: Vec<&str> = request
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("token="))
        .collect();
    let target = if rest.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", rest.join("&"))
    };
    let mut response = Redirect::to(&target).into_response();
    // The token is the user's own, given on their command line; a cookie
    // that scripts cannot read and other sites do not send.
    if let Ok(value) = HeaderValue::from_str(&format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
    )) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// The headers every answer carries: no inline script, no framing, no
/// sniffing, no referrer, nothing cached.
fn harden(headers: &mut HeaderMap) {
    let set = |headers: &mut HeaderMap, name: &'static str, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(
        headers,
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    );
    set(headers, "x-content-type-options", "nosniff");
    set(headers, "x-frame-options", "DENY");
    set(headers, "referrer-policy", "no-referrer");
    set(headers, "cache-control", "no-store");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_only_themselves_and_never_show() {
        let t = Token::new("0123456789abcdef");
        assert!(t.matches("0123456789abcdef"));
        assert!(!t.matches("0123456789abcdeF"));
        assert!(!t.matches("0123456789abcde"));
        assert!(!t.matches("0123456789abcdef0"));
        assert!(!t.matches(""));
        assert_eq!(format!("{t:?}"), "Token(****)");
    }

    #[test]
    fn loopback_hosts_are_told_apart() {
        let host = |h: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::HOST, HeaderValue::from_str(h).unwrap());
            loopback_host(&m)
        };
        assert!(host("127.0.0.1:8233"));
        assert!(host("localhost:8233"));
        assert!(host("LOCALHOST"));
        assert!(host("[::1]:8233"));
        assert!(!host("evil.example:8233"));
        assert!(!host("127.0.0.1.evil.example"));
        assert!(!loopback_host(&HeaderMap::new()));
    }

    #[test]
    fn query_tokens_decode() {
        let token = |q: &str| query_token(&format!("/runs/x?{q}").parse().unwrap());
        assert_eq!(token("a=1&token=ab%2Fc+d").as_deref(), Some("ab/c d"));
        assert_eq!(token("a=1"), None);
        assert_eq!(token("token=%zz%4").as_deref(), Some("%zz%4"));
    }
}
