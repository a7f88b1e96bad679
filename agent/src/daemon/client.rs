//! The collector's HTTP client: enrollment, the signed bundle and signed event batches.
//!
//! One blocking `reqwest` client (rustls, the system's trust store plus `tls_ca_file`) is reused
//! for every request. Every request after enrollment is signed with
//! [`infoledger_policies::wire::signing`] over the exact path and body sent.

use std::io::Read;
use std::time::Duration;

use chrono::Utc;
use infoledger_policies::wire::bundle::{SignedBundle, MAX_PAYLOAD_BYTES};
use infoledger_policies::wire::events::{
    EnrollRequest, EnrollResponse, Event, EventsRequest, EventsResponse,
};
use infoledger_policies::wire::signing::{sign, RequestParts, Stamp};
use reqwest::blocking::{Client as Http, RequestBuilder, Response};
use reqwest::header::{HeaderValue, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use reqwest::{StatusCode, Url};

use super::config::ServerConfig;
use super::identity::Identity;

/// The enrollment endpoint.
pub const ENROLL_PATH: &str = "/api/v1/enroll";
/// The bundle endpoint.
pub const BUNDLE_PATH: &str = "/api/v1/bundle";
/// The events endpoint.
pub const EVENTS_PATH: &str = "/api/v1/events";
/// The largest answer body read (a bundle's base64 payload and its envelope).
const MAX_ANSWER_BYTES: u64 = (MAX_PAYLOAD_BYTES as u64) / 3 * 4 + 64 * 1024;

/// Why a request to the collector failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The client could not be built (a bad CA file).
    #[error("cannot set up the collector client: {0}")]
    Setup(String),
    /// The collector could not be reached or did not answer in time.
    #[error("collector unreachable: {0}")]
    Unreachable(String),
    /// The collector answered with an error.
    #[error("collector refused {what} ({status}, {code}): {message}")]
    Refused {
        /// What was asked.
        what: &'static str,
        /// The HTTP status.
        status: u16,
        /// The error's stable code.
        code: String,
        /// Its message.
        message: String,
    },
    /// The answer is not what the protocol says.
    #[error("unexpected answer to {what}: {reason}")]
    Protocol {
        /// What was asked.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl ClientError {
    /// The collector's error code, when it answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Refused { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// What the bundle endpoint said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleAnswer {
    /// The bundle the agent has is current (304).
    NotModified,
    /// The collector has no bundle (404 `no_bundle`, or a collector without the endpoint).
    NoBundle,
    /// A bundle (not yet verified).
    Bundle(SignedBundle),
}

/// The collector client.
#[derive(Debug)]
pub struct Client {
    http: Http,
    base: Url,
    rng: ring::rand::SystemRandom,
}

#[derive(serde::Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(serde::Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

impl Client {
    /// A client for the collector in `config`.
    pub fn new(config: &ServerConfig) -> Result<Client, ClientError> {
        let mut builder = Http::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("infoledger-agent/", env!("CARGO_PKG_VERSION")))
            .tls_built_in_root_certs(config.tls_system_roots);
        if let Some(ca) = &config.tls_ca_file {
            let pem = std::fs::read(ca).map_err(|e| {
                ClientError::Setup(format!("cannot read tls_ca_file {}: {e}", ca.display()))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| ClientError::Setup(format!("tls_ca_file {}: {e}", ca.display())))?;
            if certs.is_empty() {
                return Err(ClientError::Setup(format!(
                    "tls_ca_file {} holds no PEM certificate",
                    ca.display()
                )));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder
            .build()
            .map_err(|e| ClientError::Setup(error_chain(&e)))?;
        Ok(Client {
            http,
            base: config.url.clone(),
            rng: ring::rand::SystemRandom::new(),
        })
    }

    /// The URL of an endpoint under the base URL (which may have a path prefix).
    fn url(&self, endpoint: &str) -> Url {
        let mut url = self.base.clone();
        let prefix = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{prefix}{endpoint}"));
        url
    }

    /// Trades the enrollment token for an identity.
    pub fn enroll(&self, token: &str, hostname: &str) -> Result<EnrollResponse, ClientError> {
        let what = "enrollment";
        let body = serde_json::to_vec(&EnrollRequest {
            token: token.to_owned(),
            hostname: hostname.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        })
        .map_err(|e| ClientError::Protocol {
            what,
            reason: e.to_string(),
        })?;
        let response = self.send(
            self.http
                .post(self.url(ENROLL_PATH))
                .header(CONTENT_TYPE, "application/json")
                .body(body),
        )?;
        let response = expect_success(what, response)?;
        json_body(what, response)
    }

    /// Asks for the current bundle; `have` is the version the agent already holds.
    pub fn fetch_bundle(
        &self,
        identity: &Identity,
        have: Option<u64>,
    ) -> Result<BundleAnswer, ClientError> {
        let what = "the bundle request";
        let url = self.url(BUNDLE_PATH);
        let mut request = self.signed(identity, reqwest::Method::GET, &url, Vec::new())?;
        if let Some(v) = have {
            let etag =
                HeaderValue::from_str(&format!("\"{v}\"")).map_err(|e| ClientError::Protocol {
                    what,
                    reason: e.to_string(),
                })?;
            request = request.header(IF_NONE_MATCH, etag);
        }
        let response = self.send(request)?;
        match response.status() {
            StatusCode::NOT_MODIFIED => return Ok(BundleAnswer::NotModified),
            StatusCode::NOT_FOUND => {
                let error = error_of(what, response);
                // `no_bundle`: none yet; `not_found`: a collector that predates the endpoint.
                return match error.code() {
                    Some("no_bundle" | "not_found") => Ok(BundleAnswer::NoBundle),
                    _ => Err(error),
                };
            }
            _ => {}
        }
        let etag = response
            .headers()
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let response = expect_success(what, response)?;
        let signed: SignedBundle = json_body(what, response)?;
        if let Some(etag) = etag {
            if etag.trim_matches('"') != signed.version.to_string() {
                tracing::debug!(%etag, version = signed.version, "bundle ETag differs from its version");
            }
        }
        Ok(BundleAnswer::Bundle(signed))
    }

    /// Sends a batch of events; returns the collector's `stored_through`.
    pub fn send_events(
        &self,
        identity: &Identity,
        events: &[Event],
        timeout: Option<Duration>,
    ) -> Result<u64, ClientError> {
        let what = "the event batch";
        let body = serde_json::to_vec(&EventsRequest {
            agent: Some(identity.agent_id.clone()),
            events: events.to_vec(),
        })
        .map_err(|e| ClientError::Protocol {
            what,
            reason: e.to_string(),
        })?;
        let url = self.url(EVENTS_PATH);
        let mut request = self
            .signed(identity, reqwest::Method::POST, &url, body)?
            .header(CONTENT_TYPE, "application/json");
        if let Some(t) = timeout {
            request = request.timeout(t);
        }
        let response = expect_success(what, self.send(request)?)?;
        let answer: EventsResponse = json_body(what, response)?;
        Ok(answer.stored_through)
    }

    /// A request signed as `identity` over `url`'s path and `body`.
    fn signed(
        &self,
        identity: &Identity,
        method: reqwest::Method,
        url: &Url,
        body: Vec<u8>,
    ) -> Result<RequestBuilder, ClientError> {
        let protocol = |reason: String| ClientError::Protocol {
            what: "signing",
            reason,
        };
        let mut target = url.path().to_owned();
        if let Some(q) = url.query() {
            target.push('?');
            target.push_str(q);
        }
        let parts = RequestParts::new(method.as_str(), &target, &identity.agent_id, &body)
            .map_err(|e| protocol(e.to_string()))?;
        let stamp = Stamp::generate(Utc::now(), &self.rng)
            .map_err(|_| protocol("secure random source failed".to_owned()))?;
        let headers = sign(identity.secret.as_bytes(), &parts, &stamp);
        let mut request = self.http.request(method, url.clone());
        for (name, value) in headers.pairs() {
            request = request.header(name, value);
        }
        Ok(request.body(body))
    }

    fn send(&self, request: RequestBuilder) -> Result<Response, ClientError> {
        request
            .send()
            .map_err(|e| ClientError::Unreachable(error_chain(&e)))
    }
}

/// The whole source chain of an error in one line (reqwest's own message is only the top).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

fn expect_success(what: &'static str, response: Response) -> Result<Response, ClientError> {
    if response.status().is_success() {
        Ok(response)
    } else {
        Err(error_of(what, response))
    }
}

/// The collector's JSON error, or a protocol error when the answer is not one.
fn error_of(what: &'static str, response: Response) -> ClientError {
    let status = response.status().as_u16();
    let body = read_capped(response, 64 * 1024).unwrap_or_default();
    match serde_json::from_slice::<ErrorBody>(&body) {
        Ok(e) => ClientError::Refused {
            what,
            status,
            code: e.error.code,
            message: e.error.message,
        },
        Err(_) => ClientError::Refused {
            what,
            status,
            code: "http".to_owned(),
            message: format!("status {status} without an error body (a proxy in the way?)"),
        },
    }
}

fn read_capped(response: Response, limit: u64) -> Result<Vec<u8>, std::io::Error> {
    let mut body = Vec::new();
    response.take(limit + 1).read_to_end(&mut body)?;
    if body.len() as u64 > limit {
        return Err(std::io::Error::other(format!(
            "answer larger than {limit} bytes"
        )));
    }
    Ok(body)
}

fn json_body<T: serde::de::DeserializeOwned>(
    what: &'static str,
    response: Response,
) -> Result<T, ClientError> {
    let body = read_capped(response, MAX_ANSWER_BYTES)
        .map_err(|e| ClientError::Unreachable(e.to_string()))?;
    serde_json::from_slice(&body).map_err(|e| ClientError::Protocol {
        what,
        reason: e.to_string(),
    })
}
