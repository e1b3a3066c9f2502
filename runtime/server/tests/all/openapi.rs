//! The OpenAPI document describes exactly the routes the router serves: every operation
//! of [`relo_server::ROUTES`] is in the document with its operationId, the document has
//! no other, the router answers each (not 404 or 405), refuses the other methods on those
//! paths with 405, and every `$ref` resolves.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use relo_server::ROUTES;
use serde_json::Value;

use crate::support::TestServer;

const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

async fn document(server: &TestServer) -> Value {
    let answer = server.get("/v1/openapi.json", None).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.headers.get("content-type").unwrap(),
        "application/json"
    );
    assert_eq!(
        answer.body,
        serde_json::from_str::<Value>(relo_server::OPENAPI_JSON).unwrap()
    );
    answer.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_lists_exactly_the_routes_the_router_serves() {
    let server = TestServer::sqlite().await;
    let doc = document(&server).await;
    assert_eq!(doc["openapi"], "3.1.0");

    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let method = method.to_ascii_uppercase();
            assert!(METHODS.contains(&method.as_str()), "{method} {path}");
            let id = operation["operationId"].as_str().unwrap().to_owned();
            documented.insert((method, path.clone(), id));
        }
    }
    let routed: BTreeSet<_> = ROUTES
        .iter()
        .map(|r| {
            (
                r.method.as_str().to_owned(),
                r.path.to_owned(),
                r.operation_id.to_owned(),
            )
        })
        .collect();
    assert_eq!(documented, routed);
    assert_eq!(routed.len(), ROUTES.len(), "no route is listed twice");

    for route in ROUTES {
        let method = Method::from_bytes(route.method.as_str().as_bytes()).unwrap();
        let answer = server
            .send(
                Request::builder()
                    .method(method)
                    .uri(route.path)
                    .header("content-type", "application/json")
                    .body(Body::from("{}"))
                    .unwrap(),
            )
            .await;
        assert!(
            answer.status != StatusCode::NOT_FOUND
                && answer.status != StatusCode::METHOD_NOT_ALLOWED,
            "{} {} is in ROUTES but the router answers {} {}",
            route.method.as_str(),
            route.path,
            answer.status,
            answer.body
        );
        for other in METHODS {
            let served = ROUTES
                .iter()
                .any(|r| r.path == route.path && r.method.as_str() == other);
            // HEAD is answered wherever GET is, on the same path.
            let has_get = ROUTES
                .iter()
                .any(|r| r.path == route.path && r.method.as_str() == "GET");
            if served || (other == "HEAD" && has_get) {
                continue;
            }
            let answer = server
                .send(
                    Request::builder()
                        .method(other)
                        .uri(route.path)
                        .body(Body::empty())
                        .unwrap(),
                )
                .await;
            assert_eq!(
                answer.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{other} {}",
                route.path
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reference_in_the_document_resolves() {
    let server = TestServer::sqlite().await;
    let doc = document(&server).await;
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for reference in refs {
        let pointer = reference
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("not a local reference: {reference}"));
        assert!(doc.pointer(pointer).is_some(), "{reference} resolves");
    }
    // Every operation answers its errors in the documented shape.
    assert!(
        doc.pointer("/components/schemas/Error/properties/error")
            .is_some()
    );
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                if key == "$ref" {
                    out.push(value.as_str().unwrap().to_owned());
                } else {
                    collect_refs(value, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}
