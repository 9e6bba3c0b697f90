//! keyctl: JWT signing keys, JWKS and the asymmetric-key migration for self-hosted Supabase.
pub mod b64;
pub mod error;
pub mod key;
pub mod jwk;
pub mod envfile;
pub mod jws;
