//! The API's one error type: every failure becomes `{"error":{"code":"…","message":"…"}}` with a
//! stable code, and server-side failures are logged in full but answered without detail.

use crate::store::StoreError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use infoledger_policies::wire::signing::SignatureError;
use infoledger_policies::{Diagnostic, DiagnosticLevel};
use serde::Serialize;
use serde_json::json;

/// Why a request failed, as the client is told.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The body is not valid JSON for this endpoint (serde's message says where and why).
    #[error("{0}")]
    InvalidJson(String),
    /// A field is well-formed JSON but its value is not acceptable.
    #[error("{0}")]
    InvalidField(String),
    /// A query-string parameter is unknown, repeated, or has a value that is not acceptable (the
    /// message names the parameter).
    #[error("{0}")]
    InvalidQuery(String),
    /// The body exceeds the configured limit.
    #[error("request body exceeds {limit} bytes")]
    BodyTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body could not be read from the connection.
    #[error("cannot read the request body")]
    BodyUnreadable,
    /// The enrollment token is unknown, expired or used up.
    #[error("enrollment token is unknown, expired or used up")]
    EnrollTokenInvalid,
    /// The request's signature did not verify.
    #[error("{0}")]
    Signature(#[from] SignatureError),
    /// The signing agent is not enrolled.
    #[error("unknown agent")]
    UnknownAgent,
    /// The signing agent was revoked.
    #[error("agent is revoked")]
    AgentRevoked,
    /// The body speaks for another agent than the one that signed it.
    #[error("request signed by agent {signer} speaks for agent {claimed}")]
    AgentMismatch {
        /// The agent in the signed headers.
        signer: String,
        /// The agent named in the body.
        claimed: String,
    },
    /// A people's endpoint was called without a valid bearer token (missing, unknown, expired
    /// or revoked: one answer for all, so that tokens cannot be probed).
    #[error("a valid API token is required (Authorization: Bearer ilt_…)")]
    Unauthenticated,
    /// The caller's role does not allow this.
    #[error("your role ({role}) may not {action}")]
    Forbidden {
        /// The caller's role.
        role: &'static str,
        /// What was refused, as a verb phrase.
        action: &'static str,
    },
    /// The addressed thing does not exist or lies outside the caller's departments.
    #[error("{what} `{id}` not found")]
    ResourceNotFound {
        /// What kind of thing (`violation`, `agent`, `token`).
        what: &'static str,
        /// The id asked for.
        id: String,
    },
    /// The action does not apply in the current state (e.g. acknowledging a resolved violation).
    #[error("{0}")]
    Conflict(String),
    /// A policy or ledger has errors (or a policy would invalidate the current ledger); every
    /// diagnostic goes into the answer's `diagnostics`.
    #[error("{message}")]
    InvalidDocument {
        /// What was refused, for people.
        message: String,
        /// Every problem, located.
        diagnostics: Vec<DiagnosticBody>,
    },
    /// No bundle was imported yet.
    #[error("no bundle yet: an admin must import a policy first")]
    NoBundle,
    /// A ledger was imported before any policy.
    #[error("no policy yet: import a policy first, the ledger is validated against it")]
    NoPolicy,
    /// No such route.
    #[error("no such endpoint")]
    NotFound,
    /// The route exists but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The store or the runtime failed; the detail goes to the log only.
    #[error("internal error")]
    Internal(String),
    /// A dependency (the database) is not answering; the detail goes to the log only.
    #[error("service unavailable")]
    Unavailable(String),
}

impl AppError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::InvalidJson(_)
            | AppError::InvalidField(_)
            | AppError::InvalidQuery(_)
            | AppError::BodyUnreadable => StatusCode::BAD_REQUEST,
            AppError::Signature(SignatureError::InvalidRequest { .. }) => StatusCode::BAD_REQUEST,
            AppError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::EnrollTokenInvalid | AppError::Signature(_) | AppError::UnknownAgent => {
                StatusCode::UNAUTHORIZED
            }
            AppError::AgentRevoked | AppError::AgentMismatch { .. } => StatusCode::FORBIDDEN,
            AppError::Unauthenticated => StatusCode::UNAUTHORIZED,
            AppError::Forbidden { .. } => StatusCode::FORBIDDEN,
            AppError::ResourceNotFound { .. } => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::InvalidDocument { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::NoBundle => StatusCode::NOT_FOUND,
            AppError::NoPolicy => StatusCode::CONFLICT,
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::InvalidJson(_) => "invalid_json",
            AppError::InvalidField(_) => "invalid_field",
            AppError::InvalidQuery(_) => "invalid_query",
            AppError::BodyTooLarge { .. } => "body_too_large",
            AppError::BodyUnreadable => "body_unreadable",
            AppError::EnrollTokenInvalid => "enroll_token_invalid",
            AppError::Signature(e) => e.code(),
            AppError::UnknownAgent => "unknown_agent",
            AppError::AgentRevoked => "agent_revoked",
            AppError::AgentMismatch { .. } => "agent_mismatch",
            AppError::Unauthenticated => "unauthenticated",
            AppError::Forbidden { .. } => "forbidden",
            AppError::ResourceNotFound { .. } => "not_found",
            AppError::Conflict(_) => "conflict",
            AppError::InvalidDocument { .. } => "invalid_document",
            AppError::NoBundle => "no_bundle",
            AppError::NoPolicy => "no_policy",
            AppError::NotFound => "not_found",
            AppError::MethodNotAllowed => "method_not_allowed",
            AppError::Internal(_) => "internal",
            AppError::Unavailable(_) => "unavailable",
        }
    }
}

/// One diagnostic of a refused policy or ledger, as the API reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiagnosticBody {
    /// The file name the text was imported as.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// `error` or `warning`.
    pub severity: &'static str,
}

impl From<&Diagnostic> for DiagnosticBody {
    fn from(d: &Diagnostic) -> DiagnosticBody {
        DiagnosticBody {
            file: d.file.display().to_string(),
            line: d.line,
            column: d.col,
            message: d.message.clone(),
            severity: match d.level {
                DiagnosticLevel::Error => "error",
                DiagnosticLevel::Warning => "warning",
            },
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> AppError {
        match e {
            StoreError::UnknownAgent(_) => AppError::UnknownAgent,
            StoreError::RevokedAgent(_) => AppError::AgentRevoked,
            StoreError::EnrollTokenInvalid => AppError::EnrollTokenInvalid,
            StoreError::InvalidSequence { .. }
            | StoreError::InvalidInput { .. }
            | StoreError::ZeroUses => AppError::InvalidField(e.to_string()),
            StoreError::ViolationNotFound(id) => AppError::ResourceNotFound {
                what: "violation",
                id,
            },
            StoreError::TokenNotFound(id) => AppError::ResourceNotFound { what: "token", id },
            StoreError::InvalidTransition { .. } => AppError::Conflict(e.to_string()),
            // The server is stopping: the agent keeps the batch and sends it again later.
            StoreError::Closed => AppError::Unavailable(e.to_string()),
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<tokio::task::JoinError> for AppError {
    fn from(e: tokio::task::JoinError) -> AppError {
        AppError::Internal(format!("blocking task failed: {e}"))
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            AppError::Internal(detail) | AppError::Unavailable(detail) => {
                tracing::error!(code = self.code(), error = %detail, "request failed");
            }
            // Refused signatures can mean an attack or a misconfigured agent: worth a trace for
            // the operator, not an error.
            AppError::Signature(_)
            | AppError::Unauthenticated
            | AppError::UnknownAgent
            | AppError::AgentRevoked
            | AppError::AgentMismatch { .. } => {
                tracing::info!(code = self.code(), reason = %self, "agent request refused");
            }
            _ => tracing::debug!(code = self.code(), reason = %self, "request refused"),
        }
        let mut error = json!({ "code": self.code(), "message": self.to_string() });
        if let AppError::InvalidDocument { diagnostics, .. } = &self {
            error["diagnostics"] = json!(diagnostics);
        }
        let body = json!({ "error": error });
        (status, Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_do_not_leak_their_detail() {
        let err = AppError::from(StoreError::Corrupt("secret table layout".into()));
        assert_eq!(err.code(), "internal");
        assert_eq!(err.to_string(), "internal error");
        assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn signature_errors_keep_their_code() {
        let err = AppError::from(SignatureError::BadSignature);
        assert_eq!(
            (err.status(), err.code()),
            (StatusCode::UNAUTHORIZED, "bad_signature")
        );
    }
}
