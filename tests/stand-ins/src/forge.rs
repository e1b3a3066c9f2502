//! The forge stand-in: tags and releases, behind a bearer token.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use hyper::body::Incoming;
use hyper::header::AUTHORIZATION;
use hyper::{Method, Request, StatusCode};
use serde::Deserialize;
use serde_json::json;

use crate::journal::{Journal, RecordedRequest};
use crate::server::{
    self, Answer, Refusal, Server, error_answer, json_answer, lock, no_route, read_json,
};

const TAGS: &str = "/api/tags";
const RELEASES: &str = "/api/releases";

/// A release the forge recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Release {
    /// Its id: 1 for the first release, then 2, 3, …
    pub id: u64,
    /// The tag it is for.
    pub tag: String,
    /// Its notes.
    pub notes: String,
    /// Where the forge says it is: `<forge url>/releases/<tag>`.
    pub url: String,
}

/// The forge stand-in of the offline demo (not a real forge): lists and creates tags,
/// creates releases, and requires its token on every `POST`. It stops when dropped.
pub struct Forge {
    server: Server,
    state: Arc<State>,
    journal: Journal,
}

struct State {
    url: String,
    bearer: String,
    tags: Mutex<Vec<String>>,
    releases: Mutex<Vec<Release>>,
}

#[derive(Deserialize)]
struct NewTag {
    name: String,
}

#[derive(Deserialize)]
struct NewRelease {
    tag: String,
    #[serde(default)]
    notes: String,
}

impl Forge {
    /// Starts the forge on `addr` (a loopback address; port 0 picks a free one), with
    /// `token` as the bearer token its `POST`s require and `existing_tags` already there.
    ///
    /// # Errors
    ///
    /// If `addr` is not a loopback address or cannot be bound.
    pub async fn start(
        addr: SocketAddr,
        token: impl Into<String>,
        existing_tags: impl IntoIterator<Item = impl Into<String>>,
    ) -> std::io::Result<Self> {
        let bound = server::bind(addr, "forge").await?;
        let state = Arc::new(State {
            url: bound.url().to_owned(),
            bearer: format!("Bearer {}", token.into()),
            tags: Mutex::new(existing_tags.into_iter().map(Into::into).collect()),
            releases: Mutex::new(Vec::new()),
        });
        let journal = Journal::default();
        let handling = Arc::clone(&state);
        let server = bound.serve(journal.clone(), move |request| {
            let state = Arc::clone(&handling);
            async move { state.answer(request).await }
        });
        Ok(Self {
            server,
            state,
            journal,
        })
    }

    /// `http://127.0.0.1:PORT`, what `{{ endpoints.forge }}` is bound to.
    pub fn url(&self) -> &str {
        self.server.url()
    }

    /// The tags, in the order they were created.
    pub fn tags(&self) -> Vec<String> {
        lock(&self.state.tags).clone()
    }

    /// The releases, in the order they were created.
    pub fn releases(&self) -> Vec<Release> {
        lock(&self.state.releases).clone()
    }

    /// Every request answered so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.journal.entries()
    }

    /// From now on, also prints each request answered on stderr, on one line.
    pub fn print_requests(&self) {
        self.journal.echo_to_stderr();
    }
}

impl State {
    async fn answer(&self, request: Request<Incoming>) -> Answer {
        let path = request.uri().path().to_owned();
        match (request.method(), path.as_str()) {
            (&Method::GET, TAGS) => {
                let tags: Vec<_> = lock(&self.tags)
                    .iter()
                    .map(|name| json!({ "name": name }))
                    .collect();
                json_answer(StatusCode::OK, &json!(tags))
            }
            (&Method::POST, TAGS) => match self.authorized(&request) {
                Err(refused) => refused.answer(),
                Ok(()) => match read_json::<NewTag>(request).await {
                    Err(bad) => bad.answer(),
                    Ok(tag) => self.create_tag(tag),
                },
            },
            (&Method::POST, RELEASES) => match self.authorized(&request) {
                Err(refused) => refused.answer(),
                Ok(()) => match read_json::<NewRelease>(request).await {
                    Err(bad) => bad.answer(),
                    Ok(release) => self.create_release(release),
                },
            },
            _ => no_route(&[TAGS, RELEASES], &path),
        }
    }

    fn authorized(&self, request: &Request<Incoming>) -> Result<(), Refusal> {
        match request.headers().get(AUTHORIZATION) {
            Some(value) if value.as_bytes() == self.bearer.as_bytes() => Ok(()),
            Some(_) => Err(Refusal::new(
                StatusCode::UNAUTHORIZED,
                "the bearer token is not this forge's",
            )),
            None => Err(Refusal::new(
                StatusCode::UNAUTHORIZED,
                "an Authorization: Bearer token is required",
            )),
        }
    }

    fn create_tag(&self, tag: NewTag) -> Answer {
        if tag.name.is_empty() {
            return error_answer(StatusCode::BAD_REQUEST, "the tag's name is empty");
        }
        let mut tags = lock(&self.tags);
        if tags.contains(&tag.name) {
            return error_answer(
                StatusCode::CONFLICT,
                format!("tag {} already exists", tag.name),
            );
        }
        tags.push(tag.name.clone());
        json_answer(StatusCode::CREATED, &json!({ "name": tag.name }))
    }

    fn create_release(&self, release: NewRelease) -> Answer {
        if !lock(&self.tags).contains(&release.tag) {
            return error_answer(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("there is no tag {}; create it first", release.tag),
            );
        }
        let mut releases = lock(&self.releases);
        if releases.iter().any(|existing| existing.tag == release.tag) {
            return error_answer(
                StatusCode::CONFLICT,
                format!("tag {} already has a release", release.tag),
            );
        }
        let created = Release {
            id: releases.len() as u64 + 1,
            url: format!("{}/releases/{}", self.url, release.tag),
            tag: release.tag,
            notes: release.notes,
        };
        let answer = json!({ "id": created.id, "url": created.url, "tag": created.tag });
        releases.push(created);
        json_answer(StatusCode::CREATED, &answer)
    }
}
