//! Who a request acts as: the workspace token or a share link, presented as
//! `Authorization: Bearer SECRET` or the cookie `/login` sets. Anything else
//! gets 401. Secrets are checked by the service (in constant time) and are
//! never logged.

use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use taskdaemon_core::time::now_millis;
use taskdaemon_service::Access;

use crate::problem::Problem;
use crate::state::AppState;

/// The cookie `/login` sets.
pub const COOKIE: &str = "td_token";

/// The secret a request presents, if any.
fn presented_secret(headers: &HeaderMap) -> Option<String> {
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        return value.strip_prefix("Bearer ").map(|s| s.trim().to_owned());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// Middleware: resolves the caller's [`Access`] into the request's
/// extensions, or answers 401.
pub async fn require_access(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(secret) = presented_secret(request.headers()) else {
        return Problem::unauthorized().into_response();
    };
    // The token, the usual caller, costs a `stat` of its file: checked here
    // rather than on a blocking thread. Share links need the store.
    match state.service.is_web_token(&secret) {
        Ok(true) => {
            request.extensions_mut().insert(Access::Owner);
            return next.run(request).await;
        }
        Ok(false) => {}
        Err(e) => return Problem::from(e).into_response(),
    }
    match state.call(move |service| service.web_access(&secret)).await {
        Ok(Some(access)) => {
            request.extensions_mut().insert(access);
            next.run(request).await
        }
        Ok(None) => Problem::unauthorized().into_response(),
        Err(problem) => problem.into_response(),
    }
}

/// Refuses share links: only the token may change anything.
pub fn owner(access: &Access) -> Result<(), Problem> {
    if access.can_act() {
        Ok(())
    } else {
        Err(Problem::forbidden(
            "this is a read-only share link: actions are not allowed",
        ))
    }
}

#[derive(Deserialize)]
pub struct LoginQuery {
    token: String,
}

/// `GET /login?token=SECRET`: sets the session cookie and goes to the
/// dashboard (a share link's cookie ends when the link does).
pub async fn login(State(state): State<AppState>, Query(query): Query<LoginQuery>) -> Response {
    let secret = query.token.clone();
    let access = match state.call(move |service| service.web_access(&secret)).await {
        Ok(Some(access)) => access,
        Ok(None) => return Problem::unauthorized().into_response(),
        Err(problem) => return problem.into_response(),
    };
    let max_age = match &access {
        Access::Owner => 30 * 86_400,
        Access::Share(share) => ((share.expires_at - now_millis()) / 1000).max(1),
    };
    let secure = if state.tls { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}",
        query.token
    );
    let mut response = Redirect::to("/").into_response();
    match HeaderValue::from_str(&cookie) {
        Ok(value) => {
            response.headers_mut().insert(header::SET_COOKIE, value);
            response
        }
        Err(_) => Problem::unauthorized().into_response(),
    }
}

/// `POST /logout`: forgets the cookie.
pub async fn logout() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("td_token=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_comes_from_bearer_or_cookie() {
        let mut headers = HeaderMap::new();
        assert_eq!(presented_secret(&headers), None);
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; td_token=abc"),
        );
        assert_eq!(presented_secret(&headers).as_deref(), Some("abc"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer xyz"),
        );
        assert_eq!(presented_secret(&headers).as_deref(), Some("xyz"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic xyz"));
        assert_eq!(presented_secret(&headers), None, "only bearer tokens");
    }
}
