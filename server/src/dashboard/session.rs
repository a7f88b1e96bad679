//! Signing in and out, the session cookie, and the checks every request makes: [`SignedIn`] for
//! pages (no valid session → the sign-in page), [`Posted`] for forms (no valid session → the
//! sign-in page; no or a wrong anti-forgery token → 403).
//!
//! Cookies: the session cookie holds the session's secret (`HttpOnly`, `SameSite=Strict`, `Path=/`,
//! `Secure` over HTTPS, no `Max-Age`: it ends with the browser, and the server ends it earlier
//! by the session limits). The sign-in form has no session yet, so it is protected by a
//! double-submit token: a random value in a short-lived cookie that the form must repeat.

use super::blocking;
use super::error::PageError;
use super::view::{render, Chrome, Fields};
use crate::api::AppState;
use crate::store::{Caller, Store};
use askama::Template;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::header::{COOKIE, LOCATION, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use infoledger_policies::wire::signing::generate_secret;

/// The session cookie.
pub(crate) const SESSION_COOKIE: &str = "infoledger_session";
/// The sign-in form's double-submit cookie.
pub(crate) const LOGIN_COOKIE: &str = "infoledger_login";
/// How long a sign-in form stays usable.
const LOGIN_FORM_SECONDS: u32 = 3600;

/// A request with a valid session.
#[derive(Debug, Clone)]
pub(crate) struct SignedIn {
    /// Who, with the token's role and departments as they are now.
    pub(crate) caller: Caller,
    /// The session's anti-forgery token.
    pub(crate) csrf: String,
    /// The cookie's value.
    secret: String,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<SignedIn, PageError> {
        // After signing in, come back here; a form's target is no page to come back to.
        let next = if parts.method == axum::http::Method::GET {
            parts
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned()
        } else {
            "/".to_owned()
        };
        let Some(secret) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(PageError::SignIn { next });
        };
        let store = state.store();
        let limits = state.dashboard().settings().sessions;
        let lookup = secret.clone();
        let session = blocking(move || Ok(store.session(&lookup, Utc::now(), limits)?)).await?;
        match session {
            Some(session) => Ok(SignedIn {
                caller: session.caller,
                csrf: session.csrf,
                secret,
            }),
            None => Err(PageError::SignIn { next }),
        }
    }
}

/// A form posted with a valid session and its anti-forgery token.
#[derive(Debug)]
pub(crate) struct Posted {
    /// The session.
    pub(crate) signed_in: SignedIn,
    /// The form's fields.
    pub(crate) fields: Fields,
}

impl FromRequest<AppState> for Posted {
    type Rejection = PageError;

    async fn from_request(request: Request, state: &AppState) -> Result<Posted, PageError> {
        let (mut parts, body) = request.into_parts();
        let signed_in = SignedIn::from_request_parts(&mut parts, state).await?;
        let bytes = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|e| {
                PageError::BadRequest(format!("cannot read the form: {}", e.body_text()))
            })?;
        let fields = Fields::from_bytes(&bytes);
        if !same_secret(fields.raw("csrf"), &signed_in.csrf) {
            return Err(PageError::Forbidden(
                "the form's anti-forgery token is missing or out of date: reload the page and \
                 send the form again"
                    .to_owned(),
            ));
        }
        Ok(Posted { signed_in, fields })
    }
}

/// Whether a submitted token equals the expected one, in time independent of where they differ.
fn same_secret(submitted: Option<&str>, expected: &str) -> bool {
    let Some(submitted) = submitted else {
        return false;
    };
    !expected.is_empty()
        && submitted.len() == expected.len()
        && submitted
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// The value of cookie `name`, if the request sends exactly one non-empty value for it.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut found = None;
    for header in headers.get_all(COOKIE) {
        let Ok(text) = header.to_str() else { continue };
        for pair in text.split(';') {
            if let Some((key, value)) = pair.trim().split_once('=') {
                if key == name && !value.is_empty() {
                    if found.is_some() {
                        // Two values (a cookie planted for a sub-path, say): trust neither.
                        return None;
                    }
                    found = Some(value.to_owned());
                }
            }
        }
    }
    found
}

/// A `Set-Cookie` value; `max_age` `None` makes a cookie that ends with the browser, `Some(0)`
/// removes it.
fn set_cookie(name: &str, value: &str, path: &str, max_age: Option<u32>, secure: bool) -> String {
    let mut text = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Strict");
    if let Some(seconds) = max_age {
        text.push_str(&format!("; Max-Age={seconds}"));
    }
    if secure {
        text.push_str("; Secure");
    }
    text
}

/// A local path to go to after signing in: absolute, on this site (not `//host` or `/\host`).
fn local_path(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && !path.chars().any(char::is_control) =>
        {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// A 303 redirect to `location`, with these cookies set.
pub(crate) fn see_other(location: &str, cookies: &[String]) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(location) {
        headers.insert(LOCATION, value);
    }
    for cookie in cookies {
        if let Ok(value) = HeaderValue::from_str(cookie) {
            headers.append(SET_COOKIE, value);
        }
    }
    response
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    css: &'static str,
    nonce: String,
    next: String,
    error: String,
}

/// `GET /login`: the sign-in form (straight on to `next` when already signed in).
pub(crate) async fn login_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Result<Response, PageError> {
    let fields = Fields::from_query(query.as_deref());
    let next = local_path(fields.one("next"));
    if let Some(secret) = cookie(&headers, SESSION_COOKIE) {
        let store = state.store();
        let limits = state.dashboard().settings().sessions;
        let valid = blocking(move || Ok(store.session(&secret, Utc::now(), limits)?)).await?;
        if valid.is_some() {
            return Ok(see_other(&next, &[]));
        }
    }
    login_page(&state, &headers, next, String::new(), StatusCode::OK)
}

/// The sign-in form with a fresh double-submit token.
fn login_page(
    state: &AppState,
    headers: &HeaderMap,
    next: String,
    error: String,
    status: StatusCode,
) -> Result<Response, PageError> {
    let rng = ring::rand::SystemRandom::new();
    let nonce = generate_secret(&rng)
        .map_err(|_| PageError::Internal("secure random source failed".into()))?;
    let secure = state.dashboard().secure_cookies(headers);
    let page = LoginPage {
        css: Chrome::css(),
        nonce: nonce.clone(),
        next,
        error,
    };
    let mut response = render(&page)?;
    *response.status_mut() = status;
    let cookie = set_cookie(
        LOGIN_COOKIE,
        &nonce,
        "/login",
        Some(LOGIN_FORM_SECONDS),
        secure,
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(SET_COOKIE, value);
    }
    Ok(response)
}

/// `POST /login` (`token`, `csrf`, `next`): a session for a valid API token.
pub(crate) async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let fields = Fields::from_bytes(&body);
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if !same_secret(fields.raw("csrf"), &expected) {
        return Err(PageError::Forbidden(
            "the sign-in form is missing its anti-forgery token or has expired: open the sign-in \
             page again"
                .to_owned(),
        ));
    }
    let next = local_path(fields.one("next"));
    let Some(token) = fields.one("token").map(str::to_owned) else {
        return login_page(
            &state,
            &headers,
            next,
            "Paste your API token (ilt_…).".to_owned(),
            StatusCode::BAD_REQUEST,
        );
    };
    let store = state.store();
    let limits = state.dashboard().settings().sessions;
    let session = blocking(move || Ok(store.create_session(&token, Utc::now(), limits)?)).await?;
    let Some(session) = session else {
        tracing::info!("dashboard sign-in refused: unknown, expired or revoked token");
        return login_page(
            &state,
            &headers,
            next,
            "This token is unknown, expired or revoked.".to_owned(),
            StatusCode::UNAUTHORIZED,
        );
    };
    tracing::info!(user = %session.caller.name, token = %session.caller.token_id, "dashboard sign-in");
    let secure = state.dashboard().secure_cookies(&headers);
    Ok(see_other(
        &next,
        &[
            set_cookie(SESSION_COOKIE, &session.secret, "/", None, secure),
            set_cookie(LOGIN_COOKIE, "", "/login", Some(0), secure),
        ],
    ))
}

/// `POST /logout`: ends the session.
pub(crate) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    posted: Posted,
) -> Result<Response, PageError> {
    let store: std::sync::Arc<Store> = state.store();
    let secret = posted.signed_in.secret.clone();
    blocking(move || Ok(store.end_session(&secret, Utc::now())?)).await?;
    let secure = state.dashboard().secure_cookies(&headers);
    Ok(see_other(
        "/login",
        &[set_cookie(SESSION_COOKIE, "", "/", Some(0), secure)],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_only_when_unambiguous() {
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_static("a=1; infoledger_session=xyz; b=2"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE).as_deref(), Some("xyz"));
        assert_eq!(cookie(&headers, LOGIN_COOKIE), None);
        headers.append(COOKIE, HeaderValue::from_static("infoledger_session=other"));
        assert_eq!(cookie(&headers, SESSION_COOKIE), None);
    }

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        for (next, want) in [
            (Some("/violations?status=open"), "/violations?status=open"),
            (Some("//evil.example/x"), "/"),
            (Some("/\\evil.example"), "/"),
            (Some("https://evil.example"), "/"),
            (Some("/a\nb"), "/"),
            (None, "/"),
        ] {
            assert_eq!(local_path(next), want, "{next:?}");
        }
    }

    #[test]
    fn tokens_must_match_exactly() {
        assert!(same_secret(Some("abc"), "abc"));
        assert!(!same_secret(Some("abd"), "abc"));
        assert!(!same_secret(Some("ab"), "abc"));
        assert!(!same_secret(None, "abc"));
        assert!(!same_secret(Some(""), ""));
    }

    #[test]
    fn session_cookies_are_http_only_and_strict() {
        assert_eq!(
            set_cookie(SESSION_COOKIE, "s", "/", None, true),
            "infoledger_session=s; Path=/; HttpOnly; SameSite=Strict; Secure"
        );
        assert_eq!(
            set_cookie(LOGIN_COOKIE, "", "/login", Some(0), false),
            "infoledger_login=; Path=/login; HttpOnly; SameSite=Strict; Max-Age=0"
        );
    }
}
