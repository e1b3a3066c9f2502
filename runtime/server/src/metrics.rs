//! A small registry of counters, rendered in the Prometheus text format at `/metrics`:
//! requests by route and status, authentication and authorisation refusals by code, and
//! rate-limit hits by limit.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, PoisonError};

/// The server's counters.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    refusals: Mutex<BTreeMap<String, u64>>,
    rate_limited: Mutex<BTreeMap<String, u64>>,
}

fn bump<K: Ord>(map: &Mutex<BTreeMap<K, u64>>, key: K) {
    *map.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(key)
        .or_default() += 1;
}

impl Metrics {
    /// One answered request of `method route` (a path template) with `status`.
    pub(crate) fn request(&self, method: &str, route: &str, status: u16) {
        bump(
            &self.requests,
            (method.to_owned(), route.to_owned(), status),
        );
    }

    /// One refusal with `code`.
    pub(crate) fn refusal(&self, code: &str) {
        bump(&self.refusals, code.to_owned());
    }

    /// One request over `limit`.
    pub(crate) fn rate_limited(&self, limit: &str) {
        bump(&self.rate_limited, limit.to_owned());
    }

    /// The counters in the Prometheus text exposition format (0.0.4).
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP relo_http_requests_total Requests answered, by method, route and status.\n\
             # TYPE relo_http_requests_total counter\n",
        );
        for ((method, route, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "relo_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(method),
                escape(route)
            );
        }
        out.push_str(
            "# HELP relo_auth_refusals_total Refused authentications and authorisations, by code.\n\
             # TYPE relo_auth_refusals_total counter\n",
        );
        for (code, n) in self
            .refusals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "relo_auth_refusals_total{{code=\"{}\"}} {n}",
                escape(code)
            );
        }
        out.push_str(
            "# HELP relo_rate_limited_total Requests refused with 429, by limit.\n\
             # TYPE relo_rate_limited_total counter\n",
        );
        for (limit, n) in self
            .rate_limited
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "relo_rate_limited_total{{limit=\"{}\"}} {n}",
                escape(limit)
            );
        }
        out
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_in_the_text_format() {
        let metrics = Metrics::default();
        metrics.request("GET", "/healthz", 200);
        metrics.request("GET", "/healthz", 200);
        metrics.refusal("forbidden");
        metrics.rate_limited("login-client");
        metrics.request("GET", "a\"b", 404);
        let text = metrics.render();
        assert!(text.contains(
            "relo_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 2\n"
        ));
        assert!(text.contains("route=\"a\\\"b\""));
        assert!(text.contains("relo_auth_refusals_total{code=\"forbidden\"} 1\n"));
        assert!(text.contains("relo_rate_limited_total{limit=\"login-client\"} 1\n"));
        assert!(text.contains("# TYPE relo_rate_limited_total counter\n"));
    }
}
