//! The dashboard's errors, answered as HTML pages for people (the API answers JSON), and the
//! redirect to the sign-in page for requests without a valid session.

use crate::api::AppError;
use crate::store::StoreError;
use askama::Template;
use axum::http::header::LOCATION;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};

/// Why a page cannot be shown.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PageError {
    /// No valid session: sign in first, then come back to `next` (a local path).
    #[error("sign in first")]
    SignIn {
        /// Where to go after signing in.
        next: String,
    },
    /// A parameter or form field is not acceptable (the message names it).
    #[error("{0}")]
    BadRequest(String),
    /// The caller may not do this (role, or a form without its anti-forgery token).
    #[error("{0}")]
    Forbidden(String),
    /// Nothing here, or nothing within the caller's departments: the same page for both.
    #[error("not found")]
    NotFound,
    /// The action does not apply in the current state.
    #[error("{0}")]
    Conflict(String),
    /// The server failed; the detail goes to the log only.
    #[error("internal error")]
    Internal(String),
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    css: &'static str,
    status: u16,
    title: &'a str,
    code: &'a str,
    message: String,
}

impl PageError {
    fn status(&self) -> StatusCode {
        match self {
            PageError::SignIn { .. } => StatusCode::SEE_OTHER,
            PageError::BadRequest(_) => StatusCode::BAD_REQUEST,
            PageError::Forbidden(_) => StatusCode::FORBIDDEN,
            PageError::NotFound => StatusCode::NOT_FOUND,
            PageError::Conflict(_) => StatusCode::CONFLICT,
            PageError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable code, as the API's error codes.
    fn code(&self) -> &'static str {
        match self {
            PageError::SignIn { .. } => "unauthenticated",
            PageError::BadRequest(_) => "invalid_query",
            PageError::Forbidden(_) => "forbidden",
            PageError::NotFound => "not_found",
            PageError::Conflict(_) => "conflict",
            PageError::Internal(_) => "internal",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            PageError::SignIn { .. } => "Sign in",
            PageError::BadRequest(_) => "Bad request",
            PageError::Forbidden(_) => "Not allowed",
            PageError::NotFound => "Not found",
            PageError::Conflict(_) => "Not possible now",
            PageError::Internal(_) => "Server error",
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        if let PageError::SignIn { next } = &self {
            let target = format!(
                "/login?{}",
                form_urlencoded::Serializer::new(String::new())
                    .append_pair("next", next)
                    .finish()
            );
            let mut response = StatusCode::SEE_OTHER.into_response();
            if let Ok(value) = HeaderValue::from_str(&target) {
                response.headers_mut().insert(LOCATION, value);
            }
            return response;
        }
        match &self {
            PageError::Internal(detail) => {
                tracing::error!(code = self.code(), error = %detail, "dashboard request failed");
            }
            _ => tracing::debug!(code = self.code(), reason = %self, "dashboard request refused"),
        }
        let message = match &self {
            PageError::NotFound => "There is nothing at this address that you may see.".to_owned(),
            PageError::Internal(_) => {
                "The server could not answer; its log has the details.".to_owned()
            }
            other => other.to_string(),
        };
        let page = ErrorPage {
            css: super::view::Chrome::css(),
            status: self.status().as_u16(),
            title: self.title(),
            code: self.code(),
            message,
        };
        match page.render() {
            Ok(html) => (self.status(), Html(html)).into_response(),
            Err(e) => {
                tracing::error!(error = %e, "cannot render the error page");
                (self.status(), self.title()).into_response()
            }
        }
    }
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> PageError {
        match e {
            StoreError::ViolationNotFound(_) | StoreError::TokenNotFound(_) => PageError::NotFound,
            StoreError::InvalidInput { .. } => PageError::BadRequest(e.to_string()),
            StoreError::InvalidTransition { .. } => PageError::Conflict(e.to_string()),
            other => PageError::Internal(other.to_string()),
        }
    }
}

impl From<AppError> for PageError {
    fn from(e: AppError) -> PageError {
        match e.status() {
            StatusCode::BAD_REQUEST => PageError::BadRequest(e.to_string()),
            StatusCode::FORBIDDEN => PageError::Forbidden(e.to_string()),
            StatusCode::NOT_FOUND => PageError::NotFound,
            StatusCode::CONFLICT => PageError::Conflict(e.to_string()),
            _ => PageError::Internal(format!("{e:?}")),
        }
    }
}

impl From<tokio::task::JoinError> for PageError {
    fn from(e: tokio::task::JoinError) -> PageError {
        PageError::Internal(format!("blocking task failed: {e}"))
    }
}

impl From<askama::Error> for PageError {
    fn from(e: askama::Error) -> PageError {
        PageError::Internal(format!("template: {e}"))
    }
}
