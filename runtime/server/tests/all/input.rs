//! Bad input gets a JSON error with a stable code and the field path: malformed JSON,
//! wrong types, missing and unknown fields, a body that is not JSON, a 1 MiB body, an
//! unknown route, a wrong method.

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};

use crate::support::{TestServer, server_tests};

async fn malformed_json_is_a_400(server: TestServer) {
    for body in [
        r#"{"name": "olga", "password": "#,
        r#"{"name": "olga" "password": "x"}"#,
        "",
        "not json",
        r#"{"name": "olga", "password": "correct horse battery staple"} {}"#,
    ] {
        let answer = server.post("/v1/auth/login", body).await;
        answer.assert_error(StatusCode::BAD_REQUEST, "malformed-json");
    }
}

async fn a_wrong_type_names_the_field(server: TestServer) {
    let answer = server
        .post("/v1/auth/login", r#"{"name": 5, "password": "x"}"#)
        .await;
    answer.assert_error(StatusCode::BAD_REQUEST, "invalid-field");
    assert_eq!(answer.field(), Some("name"));

    let answer = server
        .post("/v1/auth/login", r#"{"name": "olga", "password": ["x"]}"#)
        .await;
    answer.assert_error(StatusCode::BAD_REQUEST, "invalid-field");
    assert_eq!(answer.field(), Some("password"));

    let answer = server
        .post("/v1/auth/refresh", r#"{"refresh_token": null}"#)
        .await;
    answer.assert_error(StatusCode::BAD_REQUEST, "invalid-field");
    assert_eq!(answer.field(), Some("refresh_token"));

    let answer = server.post("/v1/auth/login", r#"["olga", "x"]"#).await;
    answer.assert_error(StatusCode::BAD_REQUEST, "invalid-field");
    assert_eq!(answer.field(), None);
}

async fn missing_and_unknown_fields_are_named(server: TestServer) {
    let answer = server.post("/v1/auth/login", r#"{"name": "olga"}"#).await;
    answer.assert_error(StatusCode::BAD_REQUEST, "missing-field");
    assert_eq!(answer.field(), Some("password"));

    let answer = server
        .post(
            "/v1/auth/login",
            r#"{"name": "olga", "password": "x", "roles": ["admin"]}"#,
        )
        .await;
    answer.assert_error(StatusCode::BAD_REQUEST, "unknown-field");
    assert_eq!(answer.field(), Some("roles"));

    let answer = server.post("/v1/auth/logout", "{}").await;
    answer.assert_error(StatusCode::BAD_REQUEST, "missing-field");
    assert_eq!(answer.field(), Some("refresh_token"));
}

async fn a_body_that_is_not_json_is_a_415(server: TestServer) {
    let answer = server
        .send(
            Request::post("/v1/auth/login")
                .header("content-type", "text/plain")
                .body(Body::from(r#"{"name": "olga", "password": "x"}"#))
                .unwrap(),
        )
        .await;
    answer.assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type");
    let answer = server
        .send(
            Request::post("/v1/auth/login")
                .body(Body::from(r#"{"name": "olga", "password": "x"}"#))
                .unwrap(),
        )
        .await;
    answer.assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type");
}

async fn a_one_mebibyte_body_is_a_413(server: TestServer) {
    let huge = format!(
        r#"{{"name": "olga", "password": "{}"}}"#,
        "x".repeat(1024 * 1024)
    );
    let answer = server.post("/v1/auth/login", huge.clone()).await;
    answer.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "body-too-large");

    // The same streamed in chunks, with no size known up front: the limit holds while
    // reading.
    let (mut sender, streamed) = http_body_util::channel::Channel::<Bytes>::new(4);
    let feeder = tokio::spawn(async move {
        for chunk in huge.into_bytes().chunks(16 * 1024) {
            if sender
                .send_data(Bytes::copy_from_slice(chunk))
                .await
                .is_err()
            {
                break; // the server stopped reading
            }
        }
    });
    let answer = server
        .send(
            Request::post("/v1/auth/refresh")
                .header("content-type", "application/json")
                .body(Body::new(streamed))
                .unwrap(),
        )
        .await;
    answer.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "body-too-large");
    feeder.abort();

    // Just under the limit is read (and refused for what it says).
    let padded = format!(
        r#"{{"refresh_token": "x"}}{}"#,
        " ".repeat(relo_server::BODY_LIMIT - 24)
    );
    assert!(padded.len() <= relo_server::BODY_LIMIT);
    server
        .post("/v1/auth/refresh", padded)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid-refresh-token");
}

async fn an_unknown_route_is_a_json_404(server: TestServer) {
    for path in ["/nope", "/v1/runz", "/v1/auth", "/v1/me/extra", "/"] {
        server
            .get(path, None)
            .await
            .assert_error(StatusCode::NOT_FOUND, "not-found");
    }
    server
        .post("/v2/auth/login", "{}")
        .await
        .assert_error(StatusCode::NOT_FOUND, "not-found");
}

async fn a_wrong_method_is_a_json_405(server: TestServer) {
    server
        .get("/v1/auth/login", None)
        .await
        .assert_error(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed");
    server
        .post("/v1/me", "{}")
        .await
        .assert_error(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed");
}

server_tests!(
    malformed_json_is_a_400,
    a_wrong_type_names_the_field,
    missing_and_unknown_fields_are_named,
    a_body_that_is_not_json_is_a_415,
    a_one_mebibyte_body_is_a_413,
    an_unknown_route_is_a_json_404,
    a_wrong_method_is_a_json_405,
);
