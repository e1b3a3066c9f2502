//! Every answer carries a request id (the client's when it is a short token, else a
//! fresh one), and a request not answered within the server's time limit is a JSON 503.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use relo_server::REQUEST_ID_HEADER;
use serde_json::json;

use crate::support::{PASSWORD, TestServer};

fn id_of(answer: &crate::support::Answer) -> String {
    answer.headers[REQUEST_ID_HEADER]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_carry_the_clients_request_id_or_a_fresh_one() {
    let server = TestServer::sqlite().await;
    let with = |id: &str| {
        Request::get("/healthz")
            .header(REQUEST_ID_HEADER, id)
            .body(Body::empty())
            .unwrap()
    };
    let given = server.send(with("trace-7f3a_01")).await;
    assert_eq!(id_of(&given), "trace-7f3a_01");
    // Not repeated: spaces, a header injection attempt, too long.
    for bad in ["two words", "a\u{7f}b", &"x".repeat(65)] {
        let Ok(request) = Request::get("/healthz")
            .header(REQUEST_ID_HEADER, bad)
            .body(Body::empty())
        else {
            continue;
        };
        let answer = server.send(request).await;
        let id = id_of(&answer);
        assert_ne!(id, bad);
        assert_eq!(id.len(), 22, "{id}");
    }
    let first = id_of(&server.get("/healthz", None).await);
    let second = id_of(&server.get("/nope", None).await);
    assert_ne!(first, second, "fresh ids differ, on unknown routes too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_the_time_limit_is_a_json_503() {
    // A login verifies an argon2id hash on a blocking thread: far longer than 1 ms.
    let server = TestServer::sqlite_with_request_timeout(Duration::from_millis(1)).await;
    let answer = server
        .call(
            "POST",
            "/v1/auth/login",
            None,
            Some(json!({"name": "olga", "password": PASSWORD})),
            None,
        )
        .await;
    answer.assert_error(StatusCode::SERVICE_UNAVAILABLE, "request-timeout");
    assert!(!id_of(&answer).is_empty());
}
