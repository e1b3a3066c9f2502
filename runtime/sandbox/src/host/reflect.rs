//! An injected secret never comes back to the step in the answer.
//!
//! A step that may have a secret injected toward a destination could otherwise read it
//! back from a destination that echoes what it receives (in a header or the body). So
//! every response to a request that carried injected values is masked before the guest
//! sees it: each occurrence of a value in a header or in the body becomes as many `*`
//! (the same length, so `Content-Length` stays right), and the first occurrence in each
//! place is recorded as `secret.reflected`. The body is masked as it streams, holding
//! back the last `longest value - 1` bytes of each frame until the next one shows whether
//! a value continues there.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt as _;
use hyper::body::{Body, Frame, SizeHint};
use relo_evidence::EvidenceEvent;
use wasmtime_wasi_http::{Error as HttpError, WasiBody};
use zeroize::Zeroizing;

use crate::recorder::Recorder;

/// The values injected into one request, by the secret's logical name.
#[derive(Default)]
pub(crate) struct Injected {
    values: Vec<(String, Zeroizing<Vec<u8>>)>,
}

impl std::fmt::Debug for Injected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Injected").finish_non_exhaustive()
    }
}

impl Injected {
    /// Remembers the value of `name` (empty values match nothing and are left out).
    pub(crate) fn add(&mut self, name: &str, value: &str) {
        if !value.is_empty() {
            self.values
                .push((name.to_owned(), Zeroizing::new(value.as_bytes().to_vec())));
        }
    }

    /// Whether no value was injected.
    pub(crate) fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    fn longest(&self) -> usize {
        self.values.iter().map(|(_, v)| v.len()).max().unwrap_or(0)
    }

    /// Masks every occurrence of every value in `bytes`; the names of those found.
    fn mask(&self, bytes: &mut [u8]) -> Vec<&str> {
        let mut found = Vec::new();
        for (name, value) in &self.values {
            let mut at = 0;
            let mut hit = false;
            while let Some(offset) = find(&bytes[at..], value) {
                let start = at + offset;
                bytes[start..start + value.len()].fill(b'*');
                at = start + value.len();
                hit = true;
            }
            if hit {
                found.push(name.as_str());
            }
        }
        found
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Masks injected values in the response's headers, recording each secret found.
pub(crate) fn mask_headers(
    response: &mut http::response::Parts,
    injected: &Injected,
    recorder: &Recorder,
) {
    for (name, value) in response.headers.iter_mut() {
        let mut bytes = value.as_bytes().to_vec();
        let found = injected.mask(&mut bytes);
        if found.is_empty() {
            continue;
        }
        for secret in found {
            recorder.record(EvidenceEvent::SecretReflected {
                name: secret.to_owned(),
                channel: "header".to_owned(),
                header: Some(name.as_str().to_owned()),
            });
        }
        // Masking with `*` keeps a valid header value.
        if let Ok(masked) = http::HeaderValue::from_bytes(&bytes) {
            *value = masked;
        }
    }
}

/// The response body with injected values masked as it streams.
pub(crate) fn mask_body(body: WasiBody, injected: Injected, recorder: Recorder) -> WasiBody {
    Masked {
        keep: injected.longest().saturating_sub(1),
        inner: body,
        injected,
        recorder,
        held: BytesMut::new(),
        recorded: Vec::new(),
        next: None,
        done: false,
    }
    .boxed_unsync()
}

struct Masked {
    inner: WasiBody,
    injected: Injected,
    recorder: Recorder,
    /// Bytes held back: a value may continue in the next frame.
    held: BytesMut,
    /// How many bytes to hold back: the longest value less one.
    keep: usize,
    /// Secrets already recorded for this body.
    recorded: Vec<String>,
    /// A non-data frame (trailers) to pass on after the held bytes.
    next: Option<Frame<Bytes>>,
    done: bool,
}

impl Masked {
    /// Masks what is held, records new finds, and takes all but the last `keep` bytes
    /// (all of them when `all`).
    fn release(&mut self, all: bool) -> Bytes {
        let found: Vec<String> = self
            .injected
            .mask(&mut self.held)
            .into_iter()
            .map(str::to_owned)
            .collect();
        for name in found {
            if !self.recorded.contains(&name) {
                self.recorder.record(EvidenceEvent::SecretReflected {
                    name: name.clone(),
                    channel: "body".to_owned(),
                    header: None,
                });
                self.recorded.push(name);
            }
        }
        let ready = if all {
            self.held.len()
        } else {
            self.held.len().saturating_sub(self.keep)
        };
        self.held.split_to(ready).freeze()
    }
}

impl Body for Masked {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        if let Some(frame) = self.next.take() {
            return Poll::Ready(Some(Ok(frame)));
        }
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(error))) => return Poll::Ready(Some(Err(error))),
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        self.held.extend_from_slice(&data);
                        let ready = self.release(false);
                        if !ready.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(ready))));
                        }
                    }
                    Err(other) => {
                        let ready = self.release(true);
                        if ready.is_empty() {
                            return Poll::Ready(Some(Ok(other)));
                        }
                        self.next = Some(other);
                        return Poll::Ready(Some(Ok(Frame::data(ready))));
                    }
                },
                Poll::Ready(None) => {
                    self.done = true;
                    let rest = self.release(true);
                    if !rest.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(rest))));
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.held.is_empty() && self.next.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        // Masking never changes a length.
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_occurrence_is_masked_to_the_same_length() {
        let mut injected = Injected::default();
        injected.add("token", "s3cret");
        injected.add("empty", "");
        let mut bytes = b"a s3cret and s3cret.".to_vec();
        assert_eq!(injected.mask(&mut bytes), ["token"]);
        assert_eq!(bytes, b"a ****** and ******.");
        let mut clean = b"nothing here".to_vec();
        assert!(injected.mask(&mut clean).is_empty());
    }
}
