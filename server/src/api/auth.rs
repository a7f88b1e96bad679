//! People's authentication: `Authorization: Bearer ilt_…` tokens resolved to a [`Caller`] with a
//! role and a department scope.
//!
//! Handlers take a [`Caller`] argument and ask it before doing anything: [`require_act`] for
//! decisions on violations, [`require_admin`] for administration. Department scope is not
//! checked here: it is passed into every store query and action, so that the database itself
//! never returns another department's rows.

use super::{AppError, AppState};
use crate::store::Caller;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use chrono::Utc;

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, AppError> {
        let mut values = parts.headers.get_all(AUTHORIZATION).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return Err(AppError::Unauthenticated);
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                let (scheme, rest) = v.split_once(' ')?;
                scheme
                    .eq_ignore_ascii_case("bearer")
                    .then(|| rest.trim().to_owned())
            })
            .ok_or(AppError::Unauthenticated)?;
        let store = state.store();
        tokio::task::spawn_blocking(move || store.authenticate_token(&token, Utc::now()))
            .await??
            .ok_or(AppError::Unauthenticated)
    }
}

/// Refuses callers who may not change violations (viewers).
pub fn require_act(caller: &Caller) -> Result<(), AppError> {
    if caller.may_act() {
        Ok(())
    } else {
        Err(AppError::Forbidden {
            role: caller.role.as_str(),
            action: "change violations",
        })
    }
}

/// Refuses callers who are not admins.
pub fn require_admin(caller: &Caller, action: &'static str) -> Result<(), AppError> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(AppError::Forbidden {
            role: caller.role.as_str(),
            action,
        })
    }
}
