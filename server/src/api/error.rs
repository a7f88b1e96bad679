//! The API's one error type: every failure becomes `{"error":{"code":"…","message":"…"}}` with a
//! stable code, and server-side failures are logged in full but answered without detail.

use crate::store::StoreError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use infoledger_policies::wire::signing::SignatureError;
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
            AppError::InvalidJson(_) | AppError::InvalidField(_) | AppError::BodyUnreadable => {
                StatusCode::BAD_REQUEST
            }
            AppError::Signature(SignatureError::InvalidRequest { .. }) => StatusCode::BAD_REQUEST,
            AppError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::EnrollTokenInvalid | AppError::Signature(_) | AppError::UnknownAgent => {
                StatusCode::UNAUTHORIZED
            }
            AppError::AgentRevoked | AppError::AgentMismatch { .. } => StatusCode::FORBIDDEN,
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
            AppError::BodyTooLarge { .. } => "body_too_large",
            AppError::BodyUnreadable => "body_unreadable",
            AppError::EnrollTokenInvalid => "enroll_token_invalid",
            AppError::Signature(e) => e.code(),
            AppError::UnknownAgent => "unknown_agent",
            AppError::AgentRevoked => "agent_revoked",
            AppError::AgentMismatch { .. } => "agent_mismatch",
            AppError::NotFound => "not_found",
            AppError::MethodNotAllowed => "method_not_allowed",
            AppError::Internal(_) => "internal",
            AppError::Unavailable(_) => "unavailable",
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> AppError {
        match e {
            StoreError::UnknownAgent(_) => AppError::UnknownAgent,
            StoreError::RevokedAgent(_) => AppError::AgentRevoked,
            StoreError::EnrollTokenInvalid => AppError::EnrollTokenInvalid,
            StoreError::InvalidSequence { .. } => AppError::InvalidField(e.to_string()),
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
            | AppError::UnknownAgent
            | AppError::AgentRevoked
            | AppError::AgentMismatch { .. } => {
                tracing::info!(code = self.code(), reason = %self, "agent request refused");
            }
            _ => tracing::debug!(code = self.code(), reason = %self, "request refused"),
        }
        let body = json!({ "error": { "code": self.code(), "message": self.to_string() } });
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
