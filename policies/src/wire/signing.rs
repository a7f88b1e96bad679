//! Agent↔collector request signing (HMAC-SHA256), replay protection and secrets at rest.
//!
//! This is a protocol: the agent signs with [`sign`], the collector checks with [`verify`], and
//! both link this module. Anyone reimplementing either side must follow the text below exactly.
//!
//! # Scheme `INFOLEDGER-HMAC-SHA256-V1`
//!
//! Every agent request carries five headers:
//!
//! | header | value |
//! |---|---|
//! | `X-Infoledger-Agent` | the agent id issued at enrollment |
//! | `X-Infoledger-Timestamp` | the signing time in unix seconds, decimal, no sign, no leading zeros |
//! | `X-Infoledger-Nonce` | 16–64 characters of `[A-Za-z0-9_-]`, unique per agent within the skew window (the agent uses 16 random bytes, base64url without padding: 22 characters) |
//! | `X-Infoledger-Content-SHA256` | SHA-256 of the exact body bytes, 64 lowercase hex digits (an empty body hashes to `e3b0c442…b855`) |
//! | `X-Infoledger-Signature` | HMAC-SHA256 of the canonical string below, 64 lowercase hex digits |
//!
//! The HMAC key is the agent's secret exactly as issued at enrollment (the bytes of its
//! base64url text, not their decoding). The **canonical string** is these seven lines joined
//! by a single `\n` (0x0A), with no trailing newline:
//!
//! ```text
//! INFOLEDGER-HMAC-SHA256-V1
//! <method>           uppercase, as sent: POST
//! <path-and-query>   the request target exactly as sent, undecoded: /api/v1/events?batch=1
//! <timestamp>        the X-Infoledger-Timestamp value: 1700000000
//! <nonce>            the X-Infoledger-Nonce value
//! <agent id>         the X-Infoledger-Agent value
//! <body sha-256>     lowercase hex of SHA-256 of the body, recomputed by the verifier
//! ```
//!
//! The first line names the scheme so that a later version can never be confused with this one.
//! No field may contain a newline (every field is restricted to visible ASCII), so the string is
//! unambiguous. The path is the raw request target (`http::Uri::path_and_query`), not a decoded or
//! normalised form; a proxy that rewrites paths must be configured to forward them unchanged.
//!
//! Field limits: method 1–16 characters `A-Z`; path 1–8192 bytes of visible ASCII
//! (0x21–0x7E) starting with `/`; agent id 1–128 bytes of visible ASCII; timestamp 0 ≤ t < 2⁶³.
//!
//! # Verification order
//!
//! [`verify`] checks, and fails at the first problem with a stable code
//! ([`SignatureError::code`]):
//!
//! 1. all five headers present (`missing_header`) and well formed (`malformed_header`);
//! 2. the header's agent is the agent the request is checked for (`agent_mismatch`);
//! 3. `|now − timestamp| ≤ max_skew`, both directions, whole seconds, equality accepted
//!    (`stale_timestamp`);
//! 4. the body's SHA-256 equals the content header (`body_mismatch`);
//! 5. the MAC, compared in constant time by `ring::hmac::verify` (`bad_signature`);
//! 6. the `(agent, nonce)` pair was not accepted before (`replayed`), or the replay guard can no
//!    longer tell (`replay_unverifiable`).
//!
//! The replay guard is consulted last so that only authenticated requests can occupy it. A
//! client that gets `stale_timestamp` or `replay_unverifiable` should re-sign with a fresh
//! timestamp and nonce and retry.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use ring::{digest, hmac, rand::SecureRandom};

/// The scheme name, the first line of the canonical string.
pub const SCHEME: &str = "INFOLEDGER-HMAC-SHA256-V1";
/// Header naming the signing agent.
pub const HEADER_AGENT: &str = "X-Infoledger-Agent";
/// Header carrying the signing time (unix seconds).
pub const HEADER_TIMESTAMP: &str = "X-Infoledger-Timestamp";
/// Header carrying the per-request nonce.
pub const HEADER_NONCE: &str = "X-Infoledger-Nonce";
/// Header carrying the hex SHA-256 of the body.
pub const HEADER_CONTENT_SHA256: &str = "X-Infoledger-Content-SHA256";
/// Header carrying the hex HMAC-SHA256 signature.
pub const HEADER_SIGNATURE: &str = "X-Infoledger-Signature";
/// The skew the collector should accept unless configured otherwise.
pub const DEFAULT_MAX_SKEW: Duration = Duration::from_secs(300);

const MAX_METHOD_LEN: usize = 16;
const MAX_PATH_LEN: usize = 8192;
const MAX_AGENT_ID_LEN: usize = 128;
const MIN_NONCE_LEN: usize = 16;
const MAX_NONCE_LEN: usize = 64;
/// Random bytes in a generated nonce: 128 bits make a collision within a window negligible.
const NONCE_BYTES: usize = 16;
/// Random bytes in a generated agent secret.
const SECRET_BYTES: usize = 32;

/// Why a request was refused. Each variant has a stable [`code`](SignatureError::code) that the
/// collector puts into its JSON error body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// A signing header is absent.
    #[error("missing header {header}")]
    MissingHeader {
        /// The header's name.
        header: &'static str,
    },
    /// A signing header is present but not in the documented form.
    #[error("malformed header {header}: {reason}")]
    MalformedHeader {
        /// The header's name.
        header: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A request part handed to this module cannot be signed (e.g. a path with a space).
    #[error("invalid request {field}: {reason}")]
    InvalidRequest {
        /// The offending part.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The request names another agent than the one it is checked for.
    #[error("request signed as agent {claimed} but checked for agent {expected}")]
    AgentMismatch {
        /// The agent in the header.
        claimed: String,
        /// The agent the caller expected.
        expected: String,
    },
    /// The timestamp is further than `max_skew` from `now`, in either direction.
    #[error("timestamp {timestamp} is more than {max_skew_secs}s away from now ({now})")]
    StaleTimestamp {
        /// The request's timestamp (unix seconds).
        timestamp: i64,
        /// The verifier's clock (unix seconds).
        now: i64,
        /// The accepted skew in seconds.
        max_skew_secs: u64,
    },
    /// The body does not hash to the content header.
    #[error("body does not match its content hash")]
    BodyMismatch,
    /// The MAC does not match (wrong key, or a signed field was altered).
    #[error("bad signature")]
    BadSignature,
    /// This agent already used this nonce within the window.
    #[error("nonce {nonce} of agent {agent} was already used")]
    Replayed {
        /// The agent.
        agent: String,
        /// The reused nonce.
        nonce: String,
    },
    /// The replay guard had to forget requests this old, so it cannot prove this one is new.
    #[error("cannot prove request with timestamp {timestamp} is not a replay; re-sign and retry")]
    ReplayUnverifiable {
        /// The request's timestamp (unix seconds).
        timestamp: i64,
    },
}

impl SignatureError {
    /// The stable, machine-readable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            SignatureError::MissingHeader { .. } => "missing_header",
            SignatureError::MalformedHeader { .. } => "malformed_header",
            SignatureError::InvalidRequest { .. } => "invalid_request",
            SignatureError::AgentMismatch { .. } => "agent_mismatch",
            SignatureError::StaleTimestamp { .. } => "stale_timestamp",
            SignatureError::BodyMismatch => "body_mismatch",
            SignatureError::BadSignature => "bad_signature",
            SignatureError::Replayed { .. } => "replayed",
            SignatureError::ReplayUnverifiable { .. } => "replay_unverifiable",
        }
    }
}

/// The parts of an HTTP request that the signature covers, checked against the field limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestParts<'a> {
    method: &'a str,
    path_and_query: &'a str,
    agent_id: &'a str,
    body: &'a [u8],
}

impl<'a> RequestParts<'a> {
    /// Checks the parts. `agent_id` is the signer when signing, and the agent the request must
    /// come from when verifying (for example the agent owning the secret that was looked up).
    pub fn new(
        method: &'a str,
        path_and_query: &'a str,
        agent_id: &'a str,
        body: &'a [u8],
    ) -> Result<RequestParts<'a>, SignatureError> {
        let invalid = |field, reason| SignatureError::InvalidRequest { field, reason };
        if method.is_empty()
            || method.len() > MAX_METHOD_LEN
            || !method.bytes().all(|b| b.is_ascii_uppercase())
        {
            return Err(invalid("method", "must be 1-16 uppercase letters"));
        }
        if !path_and_query.starts_with('/') || path_and_query.len() > MAX_PATH_LEN {
            return Err(invalid(
                "path",
                "must start with / and be at most 8192 bytes",
            ));
        }
        if !is_visible_ascii(path_and_query.as_bytes()) {
            return Err(invalid("path", "must be visible ASCII"));
        }
        if !is_agent_id(agent_id.as_bytes()) {
            return Err(invalid("agent id", "must be 1-128 bytes of visible ASCII"));
        }
        Ok(RequestParts {
            method,
            path_and_query,
            agent_id,
            body,
        })
    }

    /// The agent these parts are signed by or checked for.
    pub fn agent_id(&self) -> &'a str {
        self.agent_id
    }
}

/// The per-request freshness values: when it was signed and a nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    timestamp: i64,
    nonce: String,
}

impl Stamp {
    /// A stamp for a request signed at `now` with a fresh random nonce.
    pub fn generate(
        now: DateTime<Utc>,
        rng: &dyn SecureRandom,
    ) -> Result<Stamp, ring::error::Unspecified> {
        let mut bytes = [0u8; NONCE_BYTES];
        rng.fill(&mut bytes)?;
        let nonce = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        // Timestamps before 1970 only come from a broken clock; sign them as 0 and let the
        // server's skew check refuse them with a clear error.
        Ok(Stamp {
            timestamp: now.timestamp().max(0),
            nonce,
        })
    }

    /// A stamp from given values (for tests and for re-sending with a chosen nonce).
    pub fn new(timestamp: i64, nonce: &str) -> Result<Stamp, SignatureError> {
        if timestamp < 0 {
            return Err(SignatureError::InvalidRequest {
                field: "timestamp",
                reason: "must not be negative",
            });
        }
        if !is_nonce(nonce.as_bytes()) {
            return Err(SignatureError::InvalidRequest {
                field: "nonce",
                reason: "must be 16-64 characters of A-Z a-z 0-9 _ -",
            });
        }
        Ok(Stamp {
            timestamp,
            nonce: nonce.to_owned(),
        })
    }

    /// The signing time in unix seconds.
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// The nonce.
    pub fn nonce(&self) -> &str {
        &self.nonce
    }
}

/// The header values [`sign`] produces, to be sent with the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeaders {
    /// `X-Infoledger-Agent`.
    pub agent: String,
    /// `X-Infoledger-Timestamp`.
    pub timestamp: String,
    /// `X-Infoledger-Nonce`.
    pub nonce: String,
    /// `X-Infoledger-Content-SHA256`.
    pub content_sha256: String,
    /// `X-Infoledger-Signature`.
    pub signature: String,
}

impl SignatureHeaders {
    /// `(name, value)` pairs, ready to add to a request.
    pub fn pairs(&self) -> [(&'static str, &str); 5] {
        [
            (HEADER_AGENT, &self.agent),
            (HEADER_TIMESTAMP, &self.timestamp),
            (HEADER_NONCE, &self.nonce),
            (HEADER_CONTENT_SHA256, &self.content_sha256),
            (HEADER_SIGNATURE, &self.signature),
        ]
    }

    /// The same values viewed as received headers (what the server would see).
    pub fn as_received(&self) -> ReceivedHeaders<'_> {
        ReceivedHeaders::from_lookup(|name| {
            self.pairs()
                .into_iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_bytes())
        })
    }
}

/// The signing headers as a server received them: raw bytes, `None` when absent.
///
/// Raw bytes rather than `&str` so that a non-UTF-8 value is reported as malformed instead of
/// missing. A server should pass `None` (or refuse the request) when a header occurs twice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceivedHeaders<'a> {
    /// `X-Infoledger-Agent`.
    pub agent: Option<&'a [u8]>,
    /// `X-Infoledger-Timestamp`.
    pub timestamp: Option<&'a [u8]>,
    /// `X-Infoledger-Nonce`.
    pub nonce: Option<&'a [u8]>,
    /// `X-Infoledger-Content-SHA256`.
    pub content_sha256: Option<&'a [u8]>,
    /// `X-Infoledger-Signature`.
    pub signature: Option<&'a [u8]>,
}

impl<'a> ReceivedHeaders<'a> {
    /// Collects the five headers through `lookup(name)`, called with the canonical names above
    /// (HTTP header names are case-insensitive; `http::HeaderMap::get` handles that).
    pub fn from_lookup(lookup: impl Fn(&'static str) -> Option<&'a [u8]>) -> ReceivedHeaders<'a> {
        ReceivedHeaders {
            agent: lookup(HEADER_AGENT),
            timestamp: lookup(HEADER_TIMESTAMP),
            nonce: lookup(HEADER_NONCE),
            content_sha256: lookup(HEADER_CONTENT_SHA256),
            signature: lookup(HEADER_SIGNATURE),
        }
    }
}

/// The canonical string of the scheme (see the module documentation) for `req` and `stamp`.
pub fn canonical_string(req: &RequestParts<'_>, stamp: &Stamp) -> String {
    canonical(
        req,
        stamp.timestamp,
        &stamp.nonce,
        &body_sha256_hex(req.body),
    )
}

/// Signs a request: the headers to send with it.
pub fn sign(secret: &[u8], req: &RequestParts<'_>, stamp: &Stamp) -> SignatureHeaders {
    let content_sha256 = body_sha256_hex(req.body);
    let text = canonical(req, stamp.timestamp, &stamp.nonce, &content_sha256);
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(&key, text.as_bytes());
    SignatureHeaders {
        agent: req.agent_id.to_owned(),
        timestamp: stamp.timestamp.to_string(),
        nonce: stamp.nonce.clone(),
        content_sha256,
        signature: hex(tag.as_ref()),
    }
}

/// Verifies a signed request received at `now`; on success the nonce is recorded in `replay`.
///
/// `req` holds what the server observed (method, raw path and query, body) and the agent the
/// request must come from; `secret` is that agent's secret. See the module documentation for
/// the order of the checks.
pub fn verify(
    secret: &[u8],
    req: &RequestParts<'_>,
    headers: &ReceivedHeaders<'_>,
    now: DateTime<Utc>,
    max_skew: Duration,
    replay: &mut dyn ReplayGuard,
) -> Result<(), SignatureError> {
    let agent = parse_agent(headers.agent)?;
    let timestamp = parse_timestamp(headers.timestamp)?;
    let nonce = parse_nonce(headers.nonce)?;
    let content_sha256 = parse_hex32(headers.content_sha256, HEADER_CONTENT_SHA256)?;
    let signature = parse_hex32(headers.signature, HEADER_SIGNATURE)?;

    if agent != req.agent_id {
        return Err(SignatureError::AgentMismatch {
            claimed: agent.to_owned(),
            expected: req.agent_id.to_owned(),
        });
    }

    let now_secs = now.timestamp();
    let max_skew_secs = max_skew.as_secs();
    let skew = (i128::from(now_secs) - i128::from(timestamp)).unsigned_abs();
    if skew > u128::from(max_skew_secs) {
        return Err(SignatureError::StaleTimestamp {
            timestamp,
            now: now_secs,
            max_skew_secs,
        });
    }

    // Both values are public (the hash travels in clear), so an ordinary comparison is fine.
    let body_hash = digest::digest(&digest::SHA256, req.body);
    if body_hash.as_ref() != content_sha256.as_slice() {
        return Err(SignatureError::BodyMismatch);
    }

    let text = canonical(req, timestamp, nonce, &hex(body_hash.as_ref()));
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hmac::verify(&key, text.as_bytes(), &signature).map_err(|_| SignatureError::BadSignature)?;

    let skew_window = i64::try_from(max_skew_secs).unwrap_or(i64::MAX);
    replay
        .check_and_record(agent, nonce, timestamp, now_secs, skew_window)
        .map_err(|rejection| match rejection {
            ReplayRejection::Seen => SignatureError::Replayed {
                agent: agent.to_owned(),
                nonce: nonce.to_owned(),
            },
            ReplayRejection::Unverifiable => SignatureError::ReplayUnverifiable { timestamp },
        })
}

/// Why a [`ReplayGuard`] refused a nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayRejection {
    /// The `(agent, nonce)` pair was recorded before.
    Seen,
    /// The guard forgot requests at least this old, so it cannot tell.
    Unverifiable,
}

/// Remembers which `(agent, nonce)` pairs were accepted, for as long as a replay could pass the
/// timestamp check.
///
/// A request stamped `t` passes the skew check while `now ≤ t + max_skew`, so a pair only needs
/// to be remembered until then. An implementation that forgets a pair earlier (to bound its
/// memory) must from then on refuse every request stamped at or before the forgotten one, so that
/// forgetting never lets a replay through. A collector with several instances implements this
/// trait over its shared database.
pub trait ReplayGuard {
    /// Records that `agent_id` used `nonce` on a request stamped `timestamp`, verified at `now`
    /// (unix seconds) under a skew of `max_skew_secs`; refuses a pair it has seen or cannot rule
    /// out.
    fn check_and_record(
        &mut self,
        agent_id: &str,
        nonce: &str,
        timestamp: i64,
        now: i64,
        max_skew_secs: i64,
    ) -> Result<(), ReplayRejection>;
}

/// An in-memory [`ReplayGuard`] holding at most `capacity` pairs.
///
/// Memory bound: at most `capacity` entries, each holding the agent id (≤ 128 bytes) and nonce
/// (≤ 64 bytes) twice (hash index and time index) plus about 100 bytes of overhead: under
/// 50 MB for 100 000 entries in the worst case, about 20 MB with generated nonces and 36-byte
/// ids. An entry lives at most `2 × max_skew` (a request may be stamped up to `max_skew` in the
/// future), so size `capacity` for at least peak requests per second × 2 × `max_skew` (100
/// requests/s with the default 300 s skew: 60 000).
///
/// Entries leave when they expire (`timestamp < now − max_skew`) or, when the guard is full, the
/// oldest one is evicted to make room. Either way the guard remembers the newest timestamp it
/// has forgotten and refuses requests stamped at or before it as
/// [`ReplayRejection::Unverifiable`]; expired ones would fail the skew check anyway, so in normal
/// operation this refuses nothing legitimate. Under a flood it fails closed: the agent re-signs
/// with a fresh timestamp and retries.
#[derive(Debug)]
pub struct InMemoryReplayGuard {
    capacity: usize,
    seen: HashMap<String, i64>,
    by_time: BTreeSet<(i64, String)>,
    forgotten_up_to: Option<i64>,
}

impl InMemoryReplayGuard {
    /// A guard remembering at most `capacity` pairs (at least one).
    pub fn new(capacity: usize) -> InMemoryReplayGuard {
        InMemoryReplayGuard {
            capacity: capacity.max(1),
            seen: HashMap::new(),
            by_time: BTreeSet::new(),
            forgotten_up_to: None,
        }
    }

    /// The most pairs this guard holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many pairs it holds now.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether it holds no pair.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    fn forget_oldest(&mut self) {
        if let Some((timestamp, key)) = self.by_time.pop_first() {
            self.seen.remove(&key);
            self.forgotten_up_to =
                Some(self.forgotten_up_to.map_or(timestamp, |f| f.max(timestamp)));
        }
    }
}

impl ReplayGuard for InMemoryReplayGuard {
    fn check_and_record(
        &mut self,
        agent_id: &str,
        nonce: &str,
        timestamp: i64,
        now: i64,
        max_skew_secs: i64,
    ) -> Result<(), ReplayRejection> {
        let expired_before = now.saturating_sub(max_skew_secs);
        while self
            .by_time
            .first()
            .is_some_and(|(t, _)| *t < expired_before)
        {
            self.forget_oldest();
        }

        // Length-prefixed so that no two (agent, nonce) pairs share a key.
        let key = format!("{}:{agent_id}{nonce}", agent_id.len());
        if self.seen.contains_key(&key) {
            return Err(ReplayRejection::Seen);
        }
        if self.forgotten_up_to.is_some_and(|f| timestamp <= f) {
            return Err(ReplayRejection::Unverifiable);
        }
        if self.seen.len() >= self.capacity {
            // Evicting an entry newer than this request would refuse more than needed later;
            // refusing this one (never accepted, so not remembered) costs the agent one retry.
            if self.by_time.first().is_some_and(|(t, _)| timestamp <= *t) {
                return Err(ReplayRejection::Unverifiable);
            }
            self.forget_oldest();
        }
        self.seen.insert(key.clone(), timestamp);
        self.by_time.insert((timestamp, key));
        Ok(())
    }
}

/// Hashes a secret for storage: `v1:` followed by 64 lowercase hex digits.
///
/// HMAC-SHA256 under a fixed, public domain-separation key, without salt or stretching. That is
/// enough because every secret hashed here is a high-entropy random token (256 bits from
/// [`generate_secret`]): salts and slow hashes defend guessable passwords against precomputed
/// tables and brute force, and neither is feasible against 2²⁵⁶ candidates. Being deterministic,
/// the hash can also serve as the lookup key of a token's row. HMAC rather than bare SHA-256 so
/// that [`verify_secret`] can compare through `ring::hmac::verify`, ring's supported
/// constant-time comparison. Do not use this for human-chosen passwords.
///
/// A collector cannot check an HMAC against a one-way hash of its key, so this is for secrets
/// that are *presented* (enrollment tokens, API tokens). The agent's request-signing secret must
/// stay usable by the server: keep it encrypted under a server key outside the database, or
/// derive it as HMAC(server key, agent id ‖ per-agent salt) so that the database holds nothing
/// that lets anyone sign.
pub fn hash_secret(secret: &str) -> String {
    let tag = hmac::sign(&at_rest_key(), secret.as_bytes());
    format!("{AT_REST_PREFIX}{}", hex(tag.as_ref()))
}

/// Whether `secret` hashes to `stored` (a [`hash_secret`] value), compared in constant time.
pub fn verify_secret(secret: &str, stored: &str) -> bool {
    let Some(digits) = stored.strip_prefix(AT_REST_PREFIX) else {
        return false;
    };
    let Some(tag) = unhex32(digits.as_bytes()) else {
        return false;
    };
    hmac::verify(&at_rest_key(), secret.as_bytes(), &tag).is_ok()
}

/// A new agent secret: 32 random bytes, base64url without padding (43 characters).
pub fn generate_secret(rng: &dyn SecureRandom) -> Result<String, ring::error::Unspecified> {
    let mut bytes = [0u8; SECRET_BYTES];
    rng.fill(&mut bytes)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

const AT_REST_PREFIX: &str = "v1:";
const AT_REST_KEY: &[u8] = b"infoledger secret at rest v1";

fn at_rest_key() -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, AT_REST_KEY)
}

fn canonical(req: &RequestParts<'_>, timestamp: i64, nonce: &str, body_sha256_hex: &str) -> String {
    format!(
        "{SCHEME}\n{}\n{}\n{timestamp}\n{nonce}\n{}\n{body_sha256_hex}",
        req.method, req.path_and_query, req.agent_id
    )
}

fn body_sha256_hex(body: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, body).as_ref())
}

fn parse_agent(value: Option<&[u8]>) -> Result<&str, SignatureError> {
    let bytes = value.ok_or(SignatureError::MissingHeader {
        header: HEADER_AGENT,
    })?;
    if !is_agent_id(bytes) {
        return Err(SignatureError::MalformedHeader {
            header: HEADER_AGENT,
            reason: "expected 1-128 bytes of visible ASCII",
        });
    }
    // Visible ASCII is valid UTF-8.
    std::str::from_utf8(bytes).map_err(|_| SignatureError::MalformedHeader {
        header: HEADER_AGENT,
        reason: "not UTF-8",
    })
}

fn parse_timestamp(value: Option<&[u8]>) -> Result<i64, SignatureError> {
    let bytes = value.ok_or(SignatureError::MissingHeader {
        header: HEADER_TIMESTAMP,
    })?;
    let malformed = SignatureError::MalformedHeader {
        header: HEADER_TIMESTAMP,
        reason: "expected unix seconds: decimal digits without sign or leading zeros",
    };
    let canonical_digits = !bytes.is_empty()
        && bytes.len() <= 19
        && bytes.iter().all(u8::is_ascii_digit)
        && (bytes[0] != b'0' || bytes.len() == 1);
    if !canonical_digits {
        return Err(malformed);
    }
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or(malformed)
}

fn parse_nonce(value: Option<&[u8]>) -> Result<&str, SignatureError> {
    let bytes = value.ok_or(SignatureError::MissingHeader {
        header: HEADER_NONCE,
    })?;
    let malformed = SignatureError::MalformedHeader {
        header: HEADER_NONCE,
        reason: "expected 16-64 characters of A-Z a-z 0-9 _ -",
    };
    if !is_nonce(bytes) {
        return Err(malformed);
    }
    std::str::from_utf8(bytes).map_err(|_| malformed)
}

fn parse_hex32(value: Option<&[u8]>, header: &'static str) -> Result<[u8; 32], SignatureError> {
    let bytes = value.ok_or(SignatureError::MissingHeader { header })?;
    unhex32(bytes).ok_or(SignatureError::MalformedHeader {
        header,
        reason: "expected 64 lowercase hex digits",
    })
}

fn is_visible_ascii(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| (0x21..=0x7e).contains(b))
}

fn is_agent_id(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.len() <= MAX_AGENT_ID_LEN && is_visible_ascii(bytes)
}

fn is_nonce(bytes: &[u8]) -> bool {
    (MIN_NONCE_LEN..=MAX_NONCE_LEN).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Decodes exactly 64 lowercase hex digits.
fn unhex32(digits: &[u8]) -> Option<[u8; 32]> {
    fn nibble(d: u8) -> Option<u8> {
        match d {
            b'0'..=b'9' => Some(d - b'0'),
            b'a'..=b'f' => Some(d - b'a' + 10),
            _ => None,
        }
    }
    if digits.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;
    use proptest::prelude::*;

    const SECRET: &[u8] = b"test-secret";
    const OTHER_SECRET: &[u8] = b"other-secret";
    const NONCE: &str = "AAECAwQFBgcICQoLDA0ODw";
    const T0: i64 = 1_700_000_000;
    const SKEW: Duration = Duration::from_secs(300);

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, 0)
            .single()
            .expect("valid test time")
    }

    /// One request as the server sees it, built from a correctly signed one and then altered.
    #[derive(Debug, Clone)]
    struct Scenario {
        method: &'static str,
        path: String,
        agent: &'static str,
        body: Vec<u8>,
        headers: [Option<Vec<u8>>; 5],
        verify_secret: &'static [u8],
        now: i64,
    }

    impl Scenario {
        fn signed() -> Scenario {
            let body = br#"{"events":[]}"#.to_vec();
            let parts = RequestParts::new("POST", "/api/v1/events?batch=1", "agent-0001", &body)
                .expect("valid parts");
            let stamp = Stamp::new(T0, NONCE).expect("valid stamp");
            let h = sign(SECRET, &parts, &stamp);
            Scenario {
                method: "POST",
                path: "/api/v1/events?batch=1".into(),
                agent: "agent-0001",
                headers: h.pairs().map(|(_, v)| Some(v.as_bytes().to_vec())),
                body,
                verify_secret: SECRET,
                now: T0,
            }
        }

        fn header(&mut self, name: &str) -> &mut Option<Vec<u8>> {
            let i = [
                HEADER_AGENT,
                HEADER_TIMESTAMP,
                HEADER_NONCE,
                HEADER_CONTENT_SHA256,
                HEADER_SIGNATURE,
            ]
            .iter()
            .position(|n| *n == name)
            .expect("known header");
            &mut self.headers[i]
        }

        fn verify_with(&self, guard: &mut dyn ReplayGuard) -> Result<(), SignatureError> {
            let parts = RequestParts::new(self.method, &self.path, self.agent, &self.body)?;
            let received = ReceivedHeaders {
                agent: self.headers[0].as_deref(),
                timestamp: self.headers[1].as_deref(),
                nonce: self.headers[2].as_deref(),
                content_sha256: self.headers[3].as_deref(),
                signature: self.headers[4].as_deref(),
            };
            verify(
                self.verify_secret,
                &parts,
                &received,
                at(self.now),
                SKEW,
                guard,
            )
        }

        fn verify(&self) -> Result<(), SignatureError> {
            self.verify_with(&mut InMemoryReplayGuard::new(16))
        }
    }

    #[test]
    fn canonical_string_and_signature_match_the_documented_protocol() {
        // Known-answer test computed independently (Python hmac/hashlib); it pins the protocol.
        let s = Scenario::signed();
        let parts = RequestParts::new(s.method, &s.path, s.agent, &s.body).expect("valid");
        let stamp = Stamp::new(T0, NONCE).expect("valid");
        let body_hash = "24de1c4a19c43ad41b013f13dcd858c17b0daa7f33a53f19913e5b11366d1c2e";
        assert_eq!(
            canonical_string(&parts, &stamp),
            format!(
                "INFOLEDGER-HMAC-SHA256-V1\nPOST\n/api/v1/events?batch=1\n1700000000\n\
                 {NONCE}\nagent-0001\n{body_hash}"
            )
        );
        let h = sign(SECRET, &parts, &stamp);
        assert_eq!(h.agent, "agent-0001");
        assert_eq!(h.timestamp, "1700000000");
        assert_eq!(h.nonce, NONCE);
        assert_eq!(h.content_sha256, body_hash);
        assert_eq!(
            h.signature,
            "f6d0648fcadb90577356cf7d72ee1a4f1a7f9d067fedc1dc8832ed2c35543b3f"
        );
    }

    #[test]
    fn verification_outcomes() {
        type Alter = fn(&mut Scenario);
        let cases: &[(&str, Alter, Option<&str>)] = &[
            ("valid request", |_| {}, None),
            ("skew exactly max in the past", |s| s.now = T0 + 300, None),
            ("skew exactly max in the future", |s| s.now = T0 - 300, None),
            (
                "tampered body",
                |s| s.body.push(b' '),
                Some("body_mismatch"),
            ),
            (
                "tampered body with recomputed content hash",
                |s| {
                    s.body = b"{}".to_vec();
                    *s.header(HEADER_CONTENT_SHA256) = Some(body_sha256_hex(b"{}").into_bytes());
                },
                Some("bad_signature"),
            ),
            (
                "tampered path",
                |s| s.path = "/api/v1/events?batch=2".into(),
                Some("bad_signature"),
            ),
            (
                "tampered method",
                |s| s.method = "PUT",
                Some("bad_signature"),
            ),
            (
                "wrong key",
                |s| s.verify_secret = OTHER_SECRET,
                Some("bad_signature"),
            ),
            (
                "tampered timestamp header",
                |s| *s.header(HEADER_TIMESTAMP) = Some(b"1700000001".to_vec()),
                Some("bad_signature"),
            ),
            (
                "tampered nonce header",
                |s| *s.header(HEADER_NONCE) = Some(b"BAECAwQFBgcICQoLDA0ODw".to_vec()),
                Some("bad_signature"),
            ),
            (
                "flipped signature digit",
                |s| {
                    let sig = s.header(HEADER_SIGNATURE).as_mut().expect("present");
                    sig[0] = if sig[0] == b'0' { b'1' } else { b'0' };
                },
                Some("bad_signature"),
            ),
            (
                "one second too old",
                |s| s.now = T0 + 301,
                Some("stale_timestamp"),
            ),
            (
                "one second too far in the future",
                |s| s.now = T0 - 301,
                Some("stale_timestamp"),
            ),
            ("far future", |s| s.now = 0, Some("stale_timestamp")),
            (
                "signed for another agent",
                |s| s.agent = "agent-0002",
                Some("agent_mismatch"),
            ),
            (
                "agent header swapped to another agent",
                |s| {
                    // The server looked up agent-0002's secret from the header; the MAC was made
                    // with agent-0001's.
                    *s.header(HEADER_AGENT) = Some(b"agent-0002".to_vec());
                    s.agent = "agent-0002";
                    s.verify_secret = OTHER_SECRET;
                },
                Some("bad_signature"),
            ),
            (
                "missing agent",
                |s| *s.header(HEADER_AGENT) = None,
                Some("missing_header"),
            ),
            (
                "missing timestamp",
                |s| *s.header(HEADER_TIMESTAMP) = None,
                Some("missing_header"),
            ),
            (
                "missing nonce",
                |s| *s.header(HEADER_NONCE) = None,
                Some("missing_header"),
            ),
            (
                "missing content hash",
                |s| *s.header(HEADER_CONTENT_SHA256) = None,
                Some("missing_header"),
            ),
            (
                "missing signature",
                |s| *s.header(HEADER_SIGNATURE) = None,
                Some("missing_header"),
            ),
            (
                "agent with a space",
                |s| *s.header(HEADER_AGENT) = Some(b"agent 0001".to_vec()),
                Some("malformed_header"),
            ),
            (
                "agent not UTF-8",
                |s| *s.header(HEADER_AGENT) = Some(vec![0xff, 0xfe]),
                Some("malformed_header"),
            ),
            (
                "empty agent",
                |s| *s.header(HEADER_AGENT) = Some(Vec::new()),
                Some("malformed_header"),
            ),
            (
                "timestamp with a sign",
                |s| *s.header(HEADER_TIMESTAMP) = Some(b"+1700000000".to_vec()),
                Some("malformed_header"),
            ),
            (
                "timestamp with leading zero",
                |s| *s.header(HEADER_TIMESTAMP) = Some(b"01700000000".to_vec()),
                Some("malformed_header"),
            ),
            (
                "timestamp overflowing i64",
                |s| *s.header(HEADER_TIMESTAMP) = Some(b"9999999999999999999".to_vec()),
                Some("malformed_header"),
            ),
            (
                "timestamp in milliseconds is merely stale",
                |s| *s.header(HEADER_TIMESTAMP) = Some(b"1700000000000".to_vec()),
                Some("stale_timestamp"),
            ),
            (
                "nonce too short",
                |s| *s.header(HEADER_NONCE) = Some(b"short".to_vec()),
                Some("malformed_header"),
            ),
            (
                "nonce with newline",
                |s| *s.header(HEADER_NONCE) = Some(b"AAECAwQFBgcICQoL\nDA0ODw".to_vec()),
                Some("malformed_header"),
            ),
            (
                "content hash in uppercase",
                |s| {
                    let h = s.header(HEADER_CONTENT_SHA256).as_mut().expect("present");
                    h.make_ascii_uppercase();
                },
                Some("malformed_header"),
            ),
            (
                "signature in base64",
                |s| {
                    *s.header(HEADER_SIGNATURE) =
                        Some(b"9tBkj8rbkFdzVs99cu4aTxp/nQZ/7cHciDLtLDVUOz8=".to_vec())
                },
                Some("malformed_header"),
            ),
            (
                "signature truncated",
                |s| {
                    s.header(HEADER_SIGNATURE)
                        .as_mut()
                        .expect("present")
                        .truncate(62)
                },
                Some("malformed_header"),
            ),
            (
                "path with a space",
                |s| s.path = "/api/v1/ev ents".into(),
                Some("invalid_request"),
            ),
        ];
        for (name, alter, expected) in cases {
            let mut s = Scenario::signed();
            alter(&mut s);
            let got = s.verify().map_err(|e| e.code());
            assert_eq!(got, expected.map_or(Ok(()), Err), "case: {name}");
        }
    }

    #[test]
    fn skew_is_measured_in_whole_seconds_of_now() {
        let s = Scenario::signed();
        let parts = RequestParts::new(s.method, &s.path, s.agent, &s.body).expect("valid");
        let h = sign(SECRET, &parts, &Stamp::new(T0, NONCE).expect("valid"));
        let late = Utc
            .timestamp_opt(T0 + 300, 999_999_999)
            .single()
            .expect("valid");
        let mut guard = InMemoryReplayGuard::new(4);
        assert_eq!(
            verify(SECRET, &parts, &h.as_received(), late, SKEW, &mut guard),
            Ok(())
        );
        let skew = Duration::from_millis(300_999);
        let later = at(T0 + 301);
        let got = verify(SECRET, &parts, &h.as_received(), later, skew, &mut guard);
        assert_eq!(got.map_err(|e| e.code()), Err("stale_timestamp"));
    }

    #[test]
    fn replayed_nonce_is_refused_but_a_fresh_one_passes() {
        let mut guard = InMemoryReplayGuard::new(16);
        let s = Scenario::signed();
        assert_eq!(s.verify_with(&mut guard), Ok(()));
        let again = s.verify_with(&mut guard).map_err(|e| e.code());
        assert_eq!(again, Err("replayed"));
        // Replayed later but still inside the window.
        let mut later = s.clone();
        later.now = T0 + 300;
        assert_eq!(
            later.verify_with(&mut guard).map_err(|e| e.code()),
            Err("replayed")
        );
        // The same request re-signed with a new nonce is a new request.
        let mut fresh = s.clone();
        let parts = RequestParts::new(s.method, &s.path, s.agent, &s.body).expect("valid");
        let h = sign(
            SECRET,
            &parts,
            &Stamp::new(T0, "BBECAwQFBgcICQoLDA0ODw").expect("valid"),
        );
        fresh.headers = h.pairs().map(|(_, v)| Some(v.as_bytes().to_vec()));
        assert_eq!(fresh.verify_with(&mut guard), Ok(()));
    }

    #[test]
    fn failed_verification_does_not_consume_the_nonce() {
        let mut guard = InMemoryReplayGuard::new(16);
        let mut forged = Scenario::signed();
        forged.verify_secret = OTHER_SECRET;
        assert!(forged.verify_with(&mut guard).is_err());
        assert!(guard.is_empty());
        assert_eq!(Scenario::signed().verify_with(&mut guard), Ok(()));
    }

    #[test]
    fn nonces_are_per_agent() {
        let mut guard = InMemoryReplayGuard::new(16);
        assert_eq!(guard.check_and_record("a", NONCE, T0, T0, 300), Ok(()));
        assert_eq!(guard.check_and_record("b", NONCE, T0, T0, 300), Ok(()));
        assert_eq!(
            guard.check_and_record("a", NONCE, T0, T0, 300),
            Err(ReplayRejection::Seen)
        );
        // The length prefix keeps ("ab", "c…") and ("a", "bc…") apart.
        assert_eq!(
            guard.check_and_record("ab", "cdefghijklmnopqr", T0, T0, 300),
            Ok(())
        );
        assert_eq!(
            guard.check_and_record("a", "bcdefghijklmnopqr", T0, T0, 300),
            Ok(())
        );
    }

    #[test]
    fn replay_guard_stays_bounded_under_load_and_still_refuses_replays() {
        let capacity = 100;
        let mut guard = InMemoryReplayGuard::new(capacity);
        // Ten requests per second for far longer than the guard can hold, all inside the skew.
        let mut accepted = Vec::new();
        for i in 0..5_000i64 {
            let ts = T0 + i / 10;
            let nonce = format!("nonce-{i:016}");
            assert_eq!(
                guard.check_and_record("agent", &nonce, ts, ts, 300),
                Ok(()),
                "request {i}"
            );
            assert!(guard.len() <= capacity);
            accepted.push((nonce, ts));
        }
        assert_eq!(guard.len(), capacity);
        let now = T0 + 499;
        // A recent request, still held: refused as seen.
        let (nonce, ts) = &accepted[4_999];
        assert_eq!(
            guard.check_and_record("agent", nonce, *ts, now, 300),
            Err(ReplayRejection::Seen)
        );
        // An older one whose entry was evicted while its timestamp is still inside the skew
        // window: refused all the same.
        let (nonce, ts) = &accepted[4_000];
        assert!(now - ts <= 300, "still inside the window");
        assert_eq!(
            guard.check_and_record("agent", nonce, *ts, now, 300),
            Err(ReplayRejection::Unverifiable)
        );
        assert_eq!(guard.len(), capacity);
    }

    #[test]
    fn replay_guard_forgets_expired_entries() {
        let mut guard = InMemoryReplayGuard::new(1_000);
        for i in 0..50 {
            let nonce = format!("nonce-{i:016}");
            assert_eq!(guard.check_and_record("agent", &nonce, T0, T0, 300), Ok(()));
        }
        assert_eq!(guard.len(), 50);
        // One second past the window, everything stamped T0 is gone.
        let now = T0 + 301;
        assert_eq!(
            guard.check_and_record("agent", "fresh-nonce-0001", now, now, 300),
            Ok(())
        );
        assert_eq!(guard.len(), 1);
        // And cannot be replayed even by a verifier whose clock went back.
        assert_eq!(
            guard.check_and_record("agent", "nonce-0000000000000000", T0, T0, 300),
            Err(ReplayRejection::Unverifiable)
        );
    }

    #[test]
    fn replay_guard_refuses_rather_than_evicting_newer_entries_when_full() {
        let mut guard = InMemoryReplayGuard::new(2);
        assert_eq!(
            guard.check_and_record("a", "n1-aaaaaaaaaaaaaa", T0 + 5, T0, 300),
            Ok(())
        );
        assert_eq!(
            guard.check_and_record("a", "n2-aaaaaaaaaaaaaa", T0 + 5, T0, 300),
            Ok(())
        );
        assert_eq!(
            guard.check_and_record("a", "n3-aaaaaaaaaaaaaa", T0, T0, 300),
            Err(ReplayRejection::Unverifiable)
        );
        assert_eq!(
            guard.check_and_record("a", "n1-aaaaaaaaaaaaaa", T0 + 5, T0, 300),
            Err(ReplayRejection::Seen)
        );
        assert_eq!(guard.capacity(), 2);
    }

    #[test]
    fn request_parts_and_stamps_are_checked() {
        assert!(RequestParts::new("post", "/x", "a", b"").is_err());
        assert!(RequestParts::new("POST", "x", "a", b"").is_err());
        assert!(RequestParts::new("POST", "/x\n", "a", b"").is_err());
        assert!(RequestParts::new("POST", "/x", "", b"").is_err());
        assert!(RequestParts::new("POST", "/x", &"a".repeat(129), b"").is_err());
        assert!(RequestParts::new("POST", "/x", &"a".repeat(128), b"").is_ok());
        assert!(Stamp::new(-1, NONCE).is_err());
        assert!(Stamp::new(0, "has space in it!!").is_err());
        assert!(Stamp::new(0, &"a".repeat(65)).is_err());
    }

    #[test]
    fn generated_stamps_and_secrets_have_the_documented_shape() {
        let rng = ring::rand::SystemRandom::new();
        let stamp = Stamp::generate(at(T0), &rng).expect("rng");
        assert_eq!(stamp.timestamp(), T0);
        assert_eq!(stamp.nonce().len(), 22);
        assert!(Stamp::new(stamp.timestamp(), stamp.nonce()).is_ok());
        let other = Stamp::generate(at(T0), &rng).expect("rng");
        assert_ne!(stamp.nonce(), other.nonce());

        let secret = generate_secret(&rng).expect("rng");
        assert_eq!(secret.len(), 43);
        assert!(secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&secret)
            .expect("base64url");
        assert_eq!(decoded.len(), 32);
        assert_ne!(secret, generate_secret(&rng).expect("rng"));
    }

    #[test]
    fn secrets_at_rest() {
        let stored = hash_secret("correct-horse");
        // Known answer: HMAC-SHA256(key = "infoledger secret at rest v1", "correct-horse").
        assert_eq!(
            stored,
            "v1:152b1082dc6289f1a66f0c90157ee9e42bef9544cd59f4f5987a2b1f95c15158"
        );
        assert!(verify_secret("correct-horse", &stored));
        assert!(!verify_secret("correct-horsf", &stored));
        assert!(!verify_secret("", &stored));
        assert!(!verify_secret("correct-horse", &stored.to_uppercase()));
        assert!(!verify_secret("correct-horse", &stored["v1:".len()..]));
        assert!(!verify_secret("correct-horse", "v1:"));
        assert!(!verify_secret("correct-horse", ""));

        let rng = ring::rand::SystemRandom::new();
        let secret = generate_secret(&rng).expect("rng");
        assert!(verify_secret(&secret, &hash_secret(&secret)));
        assert!(!hash_secret(&secret).contains(&secret));
    }

    fn arb_request() -> impl Strategy<Value = (String, String, String, Vec<u8>, i64, String)> {
        (
            prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH"]),
            "/[!-~]{0,200}",
            "[!-~]{1,128}",
            prop::collection::vec(any::<u8>(), 0..4096),
            0..=4_102_444_800i64,
            "[A-Za-z0-9_-]{16,64}",
        )
            .prop_map(|(m, p, a, b, t, n)| (m.to_owned(), p, a, b, t, n))
    }

    proptest! {
        #[test]
        fn sign_then_verify_round_trips(
            (method, path, agent, body, ts, nonce) in arb_request(),
            secret in prop::collection::vec(any::<u8>(), 0..100),
            drift in -300i64..=300,
        ) {
            let parts = RequestParts::new(&method, &path, &agent, &body).expect("valid by construction");
            let stamp = Stamp::new(ts, &nonce).expect("valid by construction");
            let h = sign(&secret, &parts, &stamp);
            let mut guard = InMemoryReplayGuard::new(4);
            let now = Utc.timestamp_opt(ts + drift, 0).single().expect("in range");
            prop_assert_eq!(verify(&secret, &parts, &h.as_received(), now, SKEW, &mut guard), Ok(()));
            prop_assert_eq!(
                verify(&secret, &parts, &h.as_received(), now, SKEW, &mut guard).map_err(|e| e.code()),
                Err("replayed")
            );
        }

        #[test]
        fn any_body_change_is_detected(
            (method, path, agent, body, ts, nonce) in arb_request(),
            flip in any::<prop::sample::Index>(),
        ) {
            prop_assume!(!body.is_empty());
            let parts = RequestParts::new(&method, &path, &agent, &body).expect("valid by construction");
            let h = sign(SECRET, &parts, &Stamp::new(ts, &nonce).expect("valid"));
            let mut tampered = body.clone();
            tampered[flip.index(body.len())] ^= 0x01;
            let parts = RequestParts::new(&method, &path, &agent, &tampered).expect("valid");
            let mut guard = InMemoryReplayGuard::new(4);
            let got = verify(SECRET, &parts, &h.as_received(), at(ts), SKEW, &mut guard);
            prop_assert_eq!(got.map_err(|e| e.code()), Err("body_mismatch"));
        }
    }
}
