//! The deploy-target stand-in: takes a deployment, reports what it runs.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde::Deserialize;
use serde_json::json;

use crate::journal::{Journal, RecordedRequest};
use crate::server::{self, Answer, Server, error_answer, json_answer, lock, no_route, read_json};

const DEPLOYMENTS: &str = "/api/deployments";
const CURRENT: &str = "/api/deployments/current";

/// A deployment the target took.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Deployment {
    /// The image digest, as sent.
    pub digest: String,
    /// The version, as sent.
    pub version: String,
    /// The image repository, if one was sent.
    #[serde(default)]
    pub image: Option<String>,
}

/// The deploy-target stand-in of the offline demo (not a real deployment system): it
/// "deploys" whatever digest it is sent and reports it back — or, with
/// [`Target::report_digest_override`], reports another one, so a deploy step's check
/// can be tested. It stops when dropped.
pub struct Target {
    server: Server,
    state: Arc<State>,
    journal: Journal,
}

#[derive(Default)]
struct State {
    deployed: Mutex<Option<Deployment>>,
    reported: Mutex<Option<String>>,
    /// How long a deployment takes before it is answered.
    delay: Mutex<Duration>,
    /// Deployment requests that arrived, answered or not.
    received: AtomicUsize,
}

impl Target {
    /// Starts the target on `addr` (a loopback address; port 0 picks a free one).
    ///
    /// # Errors
    ///
    /// If `addr` is not a loopback address or cannot be bound.
    pub async fn start(addr: SocketAddr) -> std::io::Result<Self> {
        let bound = server::bind(addr, "target").await?;
        let state = Arc::new(State::default());
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

    /// `http://127.0.0.1:PORT`, what `{{ endpoints.target }}` is bound to.
    pub fn url(&self) -> &str {
        self.server.url()
    }

    /// What was deployed last, if anything (whatever the target reports).
    pub fn deployed(&self) -> Option<Deployment> {
        lock(&self.state.deployed).clone()
    }

    /// With `Some(digest)`, `GET /api/deployments/current` reports `digest` instead of
    /// what was deployed; `None` reports the truth again.
    pub fn report_digest_override(&self, digest: Option<String>) {
        *lock(&self.state.reported) = digest;
    }

    /// From now on, a deployment is answered only after `delay`, as a slow rollout
    /// would be (for tests that stop a run in the middle of its deploy step).
    pub fn delay_deployments(&self, delay: Duration) {
        *lock(&self.state.delay) = delay;
    }

    /// Deployment requests that arrived so far, including ones not answered yet.
    pub fn deployments_received(&self) -> usize {
        self.state.received.load(Ordering::SeqCst)
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
    async fn deploy(&self, request: Request<Incoming>) -> Answer {
        match read_json::<Deployment>(request).await {
            Err(bad) => bad.answer(),
            Ok(deployment) if deployment.digest.is_empty() => {
                error_answer(StatusCode::BAD_REQUEST, "the digest is empty")
            }
            Ok(deployment) => {
                let answer = json!({ "digest": deployment.digest, "version": deployment.version });
                *lock(&self.deployed) = Some(deployment);
                json_answer(StatusCode::OK, &answer)
            }
        }
    }

    async fn answer(&self, request: Request<Incoming>) -> Answer {
        let path = request.uri().path().to_owned();
        match (request.method(), path.as_str()) {
            (&Method::POST, DEPLOYMENTS) => {
                self.received.fetch_add(1, Ordering::SeqCst);
                let delay = *lock(&self.delay);
                tokio::time::sleep(delay).await;
                self.deploy(request).await
            }
            (&Method::GET, CURRENT) => {
                let deployed = lock(&self.deployed).clone();
                match deployed {
                    None => error_answer(StatusCode::NOT_FOUND, "nothing is deployed yet"),
                    Some(deployment) => {
                        let digest = lock(&self.reported).clone().unwrap_or(deployment.digest);
                        json_answer(
                            StatusCode::OK,
                            &json!({ "digest": digest, "version": deployment.version }),
                        )
                    }
                }
            }
            _ => no_route(&[DEPLOYMENTS, CURRENT], &path),
        }
    }
}
