//! Which algorithms a key from an issuer's JWKS may verify: bound to the key's type, so a
//! token cannot choose a weaker check than its issuer's key allows.
//!
//! - RSA: RS256/384/512 and PS256/384/512 (or only the JWK's own `alg`, if it names one);
//! - EC: ES256 on P-256, ES384 on P-384 (other curves are left out);
//! - OKP: EdDSA on Ed25519;
//! - `oct` (a shared secret) and anything else: never loaded. A JWKS is public, so an HMAC
//!   key from it would let anyone sign; and `alg: none` names no algorithm this crate parses.
//!
//! A key without a `kid` is left out: tokens must name their key (no trying every key), and
//! a key whose `use` is not `sig` is left out too.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

/// A key the verifier may use, with the algorithms it may check.
pub struct VerifyingKey {
    pub key: DecodingKey,
    pub algorithms: Vec<Algorithm>,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifyingKey({:?})", self.algorithms)
    }
}

const RSA: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

/// The algorithms a JWK of this type may verify, or `None` if the key is not accepted.
fn family(jwk: &Jwk) -> Option<Vec<Algorithm>> {
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Some(RSA.to_vec()),
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => Some(vec![Algorithm::ES256]),
            EllipticCurve::P384 => Some(vec![Algorithm::ES384]),
            _ => None,
        },
        AlgorithmParameters::OctetKeyPair(okp) => {
            (okp.curve == EllipticCurve::Ed25519).then(|| vec![Algorithm::EdDSA])
        }
        // `oct` (a shared secret), and any type a later version adds.
        _ => None,
    }
}

/// The key `jwk` describes, with its algorithms; `None` if it is not accepted.
pub fn verifying_key(jwk: &Jwk) -> Option<(String, VerifyingKey)> {
    let kid = jwk.common.key_id.clone().filter(|k| !k.is_empty())?;
    if jwk
        .common
        .public_key_use
        .as_ref()
        .is_some_and(|u| *u != PublicKeyUse::Signature)
    {
        return None;
    }
    let mut algorithms = family(jwk)?;
    if let Some(named) = jwk.common.key_algorithm {
        let named: Algorithm = named.to_string().parse().ok()?;
        if !algorithms.contains(&named) {
            return None;
        }
        algorithms = vec![named];
    }
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some((kid, VerifyingKey { key, algorithms }))
}

/// Every accepted key of a JWKS, by `kid` (a repeated `kid` keeps its first key).
pub fn verifying_keys(set: &JwkSet) -> std::collections::HashMap<String, VerifyingKey> {
    let mut keys = std::collections::HashMap::new();
    for jwk in &set.keys {
        if let Some((kid, key)) = verifying_key(jwk) {
            keys.entry(kid).or_insert(key);
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(json: serde_json::Value) -> JwkSet {
        serde_json::from_value(json).expect("a JWKS")
    }

    const EC_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
    const EC_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";

    #[test]
    fn keys_get_the_algorithms_of_their_type_and_no_others() {
        let keys = verifying_keys(&set(serde_json::json!({"keys": [
            {"kty": "EC", "crv": "P-256", "x": EC_X, "y": EC_Y, "kid": "ec", "use": "sig"},
            {"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQ", "kid": "hmac"},
            {"kty": "EC", "crv": "P-256", "x": EC_X, "y": EC_Y},
            {"kty": "EC", "crv": "P-256", "x": EC_X, "y": EC_Y, "kid": "enc", "use": "enc"},
            {"kty": "EC", "crv": "P-256", "x": EC_X, "y": EC_Y, "kid": "mislabelled", "alg": "RS256"},
        ]})));
        assert_eq!(keys.len(), 1, "{keys:?}");
        assert_eq!(keys["ec"].algorithms, vec![Algorithm::ES256]);
    }
}
