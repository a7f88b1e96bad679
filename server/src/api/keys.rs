//! The server key and the agents' signing secrets derived from it.
//!
//! An agent signs every request with a per-agent secret that the collector must be able to use,
//! so a one-way hash of it cannot be all the server keeps. Instead of storing the secret, the
//! collector derives it: `secret = base64url(HMAC-SHA256(server key, DOMAIN ‖ agent id))`. The
//! database therefore holds nothing that can sign (its `secret_hash` column keeps
//! `hash_secret(secret)`, a verification value only), and the server key lives outside the
//! database (a file readable by the service only, once the binary exists).
//!
//! The bundle signing key (Ed25519) is derived the same way, from a seed
//! `HMAC-SHA256(server key, BUNDLE_DOMAIN)`: one secret file to protect and back up, and agents
//! keep verifying cached bundles across restarts of the collector.
//!
//! Agent ids are 128-bit random values issued at enrollment and never reused, so they also serve
//! as the per-agent salt: re-enrolling a host yields a new id and thereby a new secret. Rotating
//! the server key changes every agent's secret at once; that is a re-enrollment of the fleet.

use base64::Engine as _;
use ring::hmac;
use ring::rand::SecureRandom;
use ring::signature::Ed25519KeyPair;
use std::fmt;
use std::sync::Arc;

/// Separates this use of the server key from any other use it may get later.
const DOMAIN: &[u8] = b"infoledger agent secret v1\0";
/// Separates the bundle signing key's seed from the agent secrets.
const BUNDLE_DOMAIN: &[u8] = b"infoledger bundle signing key v1\0";
/// The shortest server key accepted: a full HMAC-SHA256 key's worth of entropy.
pub const MIN_SERVER_KEY_LEN: usize = 32;

/// The collector's secret key from which agent secrets are derived. Its `Debug` output hides it.
#[derive(Clone)]
pub struct ServerKey {
    key: hmac::Key,
    bundle: Arc<Ed25519KeyPair>,
}

/// A server key shorter than [`MIN_SERVER_KEY_LEN`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("server key has {len} bytes, at least {MIN_SERVER_KEY_LEN} are required")]
pub struct ShortServerKey {
    /// The length given.
    pub len: usize,
}

impl ServerKey {
    /// A key from raw bytes (at least [`MIN_SERVER_KEY_LEN`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<ServerKey, ShortServerKey> {
        if bytes.len() < MIN_SERVER_KEY_LEN {
            return Err(ShortServerKey { len: bytes.len() });
        }
        Ok(ServerKey::new(hmac::Key::new(hmac::HMAC_SHA256, bytes)))
    }

    fn new(key: hmac::Key) -> ServerKey {
        let seed = hmac::sign(&key, BUNDLE_DOMAIN);
        // A 32-byte seed always makes a key pair; the HMAC output is exactly 32 bytes.
        let bundle = Ed25519KeyPair::from_seed_unchecked(seed.as_ref())
            .expect("an HMAC-SHA256 output is a valid Ed25519 seed");
        ServerKey {
            key,
            bundle: Arc::new(bundle),
        }
    }

    /// The key that signs bundles.
    pub fn bundle_key(&self) -> &Ed25519KeyPair {
        &self.bundle
    }

    /// The bundle key's public half, base64, as given to agents at enrollment.
    pub fn bundle_public_key(&self) -> String {
        infoledger_policies::wire::bundle::encode_public_key(&self.bundle)
    }

    /// A fresh random key (32 bytes) and its bytes, to be saved by the caller.
    pub fn generate(
        rng: &dyn SecureRandom,
    ) -> Result<(ServerKey, [u8; MIN_SERVER_KEY_LEN]), ring::error::Unspecified> {
        let mut bytes = [0u8; MIN_SERVER_KEY_LEN];
        rng.fill(&mut bytes)?;
        let key = ServerKey::new(hmac::Key::new(hmac::HMAC_SHA256, &bytes));
        Ok((key, bytes))
    }

    /// The signing secret of `agent_id`, in the form issued at enrollment: 43 characters of
    /// base64url, the same shape as `wire::signing::generate_secret`.
    pub fn agent_secret(&self, agent_id: &str) -> String {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(DOMAIN);
        ctx.update(agent_id.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(ctx.sign().as_ref())
    }
}

impl fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_per_agent_per_key_and_stable() {
        let a = ServerKey::from_bytes(&[1; 32]).unwrap();
        let b = ServerKey::from_bytes(&[2; 32]).unwrap();
        let s = a.agent_secret("agent-1");
        assert_eq!(s, a.agent_secret("agent-1"));
        assert_eq!(s.len(), 43);
        assert_ne!(s, a.agent_secret("agent-2"));
        assert_ne!(s, b.agent_secret("agent-1"));
        assert_eq!(format!("{a:?}"), "ServerKey(..)");
        assert_eq!(
            a.bundle_public_key(),
            ServerKey::from_bytes(&[1; 32]).unwrap().bundle_public_key()
        );
        assert_ne!(a.bundle_public_key(), b.bundle_public_key());
    }

    #[test]
    fn short_keys_are_refused() {
        assert_eq!(
            ServerKey::from_bytes(&[0; 31]).unwrap_err(),
            ShortServerKey { len: 31 }
        );
    }
}
