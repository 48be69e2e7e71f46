//! The dashboard: static HTML, CSS and plain JavaScript compiled into the
//! binary (no build step, no Node toolchain).

use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};

pub async fn index() -> Html<&'static str> {
    Html(include_str!("assets/index.html"))
}

pub async fn script() -> Response {
    typed(
        include_str!("assets/app.js"),
        "text/javascript; charset=utf-8",
    )
}

pub async fn style() -> Response {
    typed(include_str!("assets/app.css"), "text/css; charset=utf-8")
}

fn typed(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
