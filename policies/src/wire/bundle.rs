//! The bundle as it travels: ledger and policy texts with a version, signed by the collector.
//!
//! The collector signs the JSON of a [`BundleDocument`] with its Ed25519 key; the agent learns
//! the public key at enrollment and verifies every bundle before using or caching it, so a cached
//! copy can be trusted after a restart without asking the server. The signature covers a
//! domain-separation prefix and the exact payload bytes, which travel base64-encoded so that no
//! JSON re-serialisation can change what was signed.
//!
//! On the wire (`GET /api/v1/bundle`):
//!
//! ```json
//! {"version": 7, "payload": "<base64 of the document's JSON>", "signature": "<base64, 64 bytes>"}
//! ```

use crate::{Bundle, Diagnostic, LoadError};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use ring::signature::{Ed25519KeyPair, UnparsedPublicKey, ED25519};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// What the signature covers before the payload, so that a bundle signature can never be
/// replayed as a signature over anything else the same key might sign.
const DOMAIN: &[u8] = b"infoledger-bundle-v1\0";

/// The largest signed bundle accepted, in bytes of payload: far above any real ledger, far below
/// what would hurt an agent.
pub const MAX_PAYLOAD_BYTES: usize = 16 * 1024 * 1024;

/// One source file of the bundle: its name (whose extension says how to parse it, e.g.
/// `ledger.csv`) and its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceText {
    /// The file name it was imported from; `.csv` selects the CSV ledger reader.
    pub name: String,
    /// The file's text.
    pub text: String,
}

/// Ledger and policy as one versioned document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleDocument {
    /// Increases with every change of the ledger or the policy.
    pub version: u64,
    /// When this version was made.
    pub issued_at: DateTime<Utc>,
    /// The policy (TOML).
    pub policy: SourceText,
    /// The ledger (TOML, or CSV when its name ends in `.csv`).
    pub ledger: SourceText,
}

impl BundleDocument {
    /// Parses and validates both texts, as the agent's `validate` would.
    pub fn load(&self) -> Result<(Bundle, Vec<Diagnostic>), LoadError> {
        Bundle::from_texts(
            &self.policy.text,
            Path::new(&self.policy.name),
            &self.ledger.text,
            Path::new(&self.ledger.name),
        )
    }

    /// Signs the document with the collector's key.
    pub fn sign(&self, key: &Ed25519KeyPair) -> Result<SignedBundle, BundleError> {
        let payload =
            serde_json::to_vec(self).map_err(|e| BundleError::Malformed(e.to_string()))?;
        let signature = key.sign(&signed_bytes(&payload));
        Ok(SignedBundle {
            version: self.version,
            payload: BASE64.encode(&payload),
            signature: BASE64.encode(signature.as_ref()),
        })
    }
}

/// A signed bundle as the collector serves it and the agent caches it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedBundle {
    /// The document's version, readable without verifying (for logs and ETags only: trust the
    /// version inside the verified payload).
    pub version: u64,
    /// Base64 of the [`BundleDocument`]'s JSON.
    pub payload: String,
    /// Base64 of the Ed25519 signature over the domain prefix and the payload bytes.
    pub signature: String,
}

impl SignedBundle {
    /// Checks the signature against the collector's public key (32 raw bytes) and returns the
    /// document. Nothing in the payload is parsed before the signature checks out.
    pub fn verify(&self, public_key: &[u8]) -> Result<BundleDocument, BundleError> {
        if self.payload.len() > MAX_PAYLOAD_BYTES / 3 * 4 + 4 {
            return Err(BundleError::TooLarge);
        }
        let payload = BASE64
            .decode(&self.payload)
            .map_err(|e| BundleError::Malformed(format!("payload is not base64: {e}")))?;
        let signature = BASE64
            .decode(&self.signature)
            .map_err(|e| BundleError::Malformed(format!("signature is not base64: {e}")))?;
        UnparsedPublicKey::new(&ED25519, public_key)
            .verify(&signed_bytes(&payload), &signature)
            .map_err(|_| BundleError::BadSignature)?;
        let document: BundleDocument = serde_json::from_slice(&payload)
            .map_err(|e| BundleError::Malformed(format!("payload: {e}")))?;
        if document.version != self.version {
            return Err(BundleError::Malformed(format!(
                "outer version {} differs from the signed version {}",
                self.version, document.version
            )));
        }
        Ok(document)
    }
}

/// Why a bundle was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// The signature does not match the payload under the collector's key.
    #[error("bundle signature does not verify with the collector's key")]
    BadSignature,
    /// The envelope or payload is not what a collector produces.
    #[error("malformed bundle: {0}")]
    Malformed(String),
    /// Over [`MAX_PAYLOAD_BYTES`].
    #[error("bundle larger than {MAX_PAYLOAD_BYTES} bytes")]
    TooLarge,
}

fn signed_bytes(payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(DOMAIN.len() + payload.len());
    bytes.extend_from_slice(DOMAIN);
    bytes.extend_from_slice(payload);
    bytes
}

/// Base64 of a key pair's public key, as handed to agents at enrollment.
pub fn encode_public_key(key: &Ed25519KeyPair) -> String {
    use ring::signature::KeyPair as _;
    BASE64.encode(key.public_key().as_ref())
}

/// Reads a public key written by [`encode_public_key`].
pub fn decode_public_key(text: &str) -> Result<Vec<u8>, BundleError> {
    let bytes = BASE64
        .decode(text.trim())
        .map_err(|e| BundleError::Malformed(format!("public key is not base64: {e}")))?;
    if bytes.len() != 32 {
        return Err(BundleError::Malformed(format!(
            "public key has {} bytes, Ed25519 needs 32",
            bytes.len()
        )));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EXAMPLE_LEDGER, EXAMPLE_POLICY};
    use ring::rand::SystemRandom;

    fn key() -> Ed25519KeyPair {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
    }

    fn document() -> BundleDocument {
        BundleDocument {
            version: 3,
            issued_at: "2026-05-01T12:00:00Z".parse().unwrap(),
            policy: SourceText {
                name: "policy.toml".into(),
                text: EXAMPLE_POLICY.into(),
            },
            ledger: SourceText {
                name: "ledger.toml".into(),
                text: EXAMPLE_LEDGER.into(),
            },
        }
    }

    #[test]
    fn a_signed_bundle_verifies_and_loads() {
        let key = key();
        let public = decode_public_key(&encode_public_key(&key)).unwrap();
        let signed = document().sign(&key).unwrap();
        let json = serde_json::to_string(&signed).unwrap();
        let back: SignedBundle = serde_json::from_str(&json).unwrap();
        let doc = back.verify(&public).unwrap();
        assert_eq!(doc, document());
        let (bundle, _) = doc.load().unwrap();
        assert!(!bundle.ledger.assets().is_empty());
    }

    #[test]
    fn tampering_or_another_key_is_refused() {
        let key = key();
        let public = decode_public_key(&encode_public_key(&key)).unwrap();
        let signed = document().sign(&key).unwrap();

        let mut other = document();
        other.ledger.text.push_str("\n# sneaked in\n");
        let mut swapped = signed.clone();
        swapped.payload = BASE64.encode(serde_json::to_vec(&other).unwrap());
        assert_eq!(swapped.verify(&public), Err(BundleError::BadSignature));

        let stranger = decode_public_key(&encode_public_key(&super::tests::key())).unwrap();
        assert_eq!(signed.verify(&stranger), Err(BundleError::BadSignature));

        let mut relabeled = signed.clone();
        relabeled.version = 99;
        assert!(matches!(
            relabeled.verify(&public),
            Err(BundleError::Malformed(_))
        ));

        let mut garbage = signed;
        garbage.signature = "***".into();
        assert!(matches!(
            garbage.verify(&public),
            Err(BundleError::Malformed(_))
        ));
        assert!(decode_public_key("AAAA").is_err());
    }
}
