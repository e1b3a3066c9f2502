//! The JSON body extractor, whose refusals are [`ApiError`]s naming the field path. (The
//! caller is [`Principal`](crate::Principal), set by the access guard.)

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::error::Category;
use serde_path_to_error::Segment;

use crate::error::ApiError;
use crate::plugins::PLUGIN_BODY_LIMIT;

/// The largest request body the server reads, in bytes.
pub const BODY_LIMIT: usize = 64 * 1024;

/// A JSON request body of type `T`.
///
/// Refusals: 415 `unsupported-media-type` without a JSON content type; 413
/// `body-too-large` over [`BODY_LIMIT`] ([`PLUGIN_BODY_LIMIT`] on the upload route); 400
/// `malformed-json` for text that is not JSON;
/// 400 `invalid-field` for JSON that is not an object;
/// 400 `missing-field`, `unknown-field` or `invalid-field` (a wrong type or value), each
/// naming the field path (`name`, `items[2].digest`).
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !has_json_content_type(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "the request body must be JSON, sent with `Content-Type: application/json`",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body-too-large",
                    format!(
                        "the request body is larger than this route reads ({BODY_LIMIT} bytes; \
                         {PLUGIN_BODY_LIMIT} for a plugin upload)"
                    ),
                )
            } else {
                ApiError::bad_request(
                    "unreadable-body",
                    format!(
                        "the request body could not be read: {}",
                        rejection.body_text()
                    ),
                )
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

fn has_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses `bytes` as one JSON object of type `T`, refusing with the field path. The body
/// must be an object: serde would otherwise also read a struct from an array.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice::<IgnoredAny>(bytes).map_err(|err| json_error("", &err))?;
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::bad_request(
            "invalid-field",
            "the request body must be a JSON object",
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = field_path(err.path());
        json_error(&path, err.inner())
    })
}

/// The path as `a.b[2].c`; empty at the top level.
fn field_path(path: &serde_path_to_error::Path) -> String {
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
            }
        }
    }
    out
}

/// The [`ApiError`] of a serde_json error at `path`. serde names a missing field only in
/// its message (`missing field `name``), at the path of the object lacking it, so the
/// name is taken from there; an unknown field's path already ends at its key.
fn json_error(path: &str, err: &serde_json::Error) -> ApiError {
    let text = err.to_string();
    let quoted = |prefix: &str| {
        text.strip_prefix(prefix)
            .and_then(|rest| rest.split('`').next())
            .map(str::to_owned)
    };
    match err.classify() {
        Category::Syntax | Category::Eof | Category::Io => ApiError::bad_request(
            "malformed-json",
            format!("the request body is not valid JSON: {text}"),
        )
        .with_field_if(path),
        Category::Data => {
            if let Some(name) = quoted("missing field `") {
                let field = join(path, &name);
                ApiError::bad_request("missing-field", format!("`{field}` is required"))
                    .with_field(field)
            } else if let Some(name) = quoted("unknown field `") {
                let field = if path.is_empty() {
                    name
                } else {
                    path.to_owned()
                };
                ApiError::bad_request(
                    "unknown-field",
                    format!("`{field}` is not a known field: {text}"),
                )
                .with_field(field)
            } else {
                let shown = if path.is_empty() { "the body" } else { path };
                ApiError::bad_request("invalid-field", format!("{shown}: {text}"))
                    .with_field_if(path)
            }
        }
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

impl ApiError {
    fn with_field_if(self, path: &str) -> ApiError {
        if path.is_empty() {
            self
        } else {
            self.with_field(path)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "the fields are only deserialised")]
    struct Outer {
        name: String,
        items: Vec<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "the fields are only deserialised")]
    struct Inner {
        digest: String,
        size: u32,
    }

    fn refusal(body: &str) -> (&'static str, Option<String>) {
        match parse_json::<Outer>(body.as_bytes()) {
            Ok(value) => panic!("accepted {value:?}"),
            Err(err) => (err.code, err.field),
        }
    }

    #[test]
    fn refusals_name_the_field_path() {
        assert_eq!(
            refusal(r#"{"name": 5, "items": []}"#),
            ("invalid-field", Some("name".into()))
        );
        assert_eq!(
            refusal(
                r#"{"name": "a", "items": [{"digest": "d", "size": 1}, {"digest": "d", "size": "big"}]}"#
            ),
            ("invalid-field", Some("items[1].size".into()))
        );
        assert_eq!(
            refusal(r#"{"name": "a", "items": [{"size": 1}]}"#),
            ("missing-field", Some("items[0].digest".into()))
        );
        assert_eq!(
            refusal(r#"{"items": []}"#),
            ("missing-field", Some("name".into()))
        );
        assert_eq!(
            refusal(r#"{"name": "a", "items": [], "admin": true}"#),
            ("unknown-field", Some("admin".into()))
        );
        assert_eq!(refusal("[1, 2]"), ("invalid-field", None));
        assert_eq!(refusal(r#"{"name": "a""#), ("malformed-json", None));
        assert_eq!(refusal(""), ("malformed-json", None));
        assert_eq!(
            refusal(r#"{"name": "a", "items": []} trailing"#),
            ("malformed-json", None)
        );
    }

    #[test]
    fn json_content_types() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, value.parse().expect("a header value"));
            has_json_content_type(&headers)
        };
        assert!(with("application/json"));
        assert!(with("Application/JSON; charset=utf-8"));
        assert!(with("application/problem+json"));
        assert!(!with("text/plain"));
        assert!(!with("application/jsonx"));
        assert!(!has_json_content_type(&HeaderMap::new()));
    }
}

/// A query string of type `T`; a refusal is 400 `invalid-query` naming the parameter.
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(ApiQuery)
            .map_err(|error| {
                let field = error.path().to_string();
                ApiError::bad_request(
                    "invalid-query",
                    format!("the query string: {}", error.inner()),
                )
                .with_field(field)
            })
    }
}
