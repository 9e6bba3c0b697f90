//! The encrypted key backup written by `keyctl export --encrypt` and read by `keyctl import`.
//!
//! # Format
//! The file is one **JWE in compact serialization** (RFC 7516) and a newline, encrypted with a
//! password:
//!
//! - `alg` **`PBES2-HS256+A128KW`** (RFC 7518 §4.8): PBKDF2-HMAC-SHA256 over the password with
//!   the salt `"PBES2-HS256+A128KW" || 0x00 || p2s` (16 random bytes in `p2s`) and
//!   [`ITERATIONS`] (600,000, OWASP's figure for PBKDF2-HMAC-SHA256) in `p2c` derives a
//!   128-bit key that wraps (AES-KW, RFC 3394) a random content key;
//! - `enc` **`A256GCM`**: the payload is encrypted with that 256-bit content key and a random
//!   96-bit IV, the protected header as additional data;
//! - the protected header holds `alg`, `enc`, `p2s`, `p2c`, `typ: "keyctl-backup"` and
//!   `cty: "json"`, nothing else: no key material, no kid, no path.
//!
//! Why JWE and not encrypted PKCS#8: the backup must carry the whole `JWT_KEYS` array (kids,
//! `key_ops`, which key signs) and `JWT_SECRET`, and neither an HMAC key nor that metadata has
//! a PKCS#8 form. Any JOSE library opens a JWE with the password alone, so an operator can
//! get the keys back without keyctl, for example with node `jose`:
//! `compactDecrypt(jwe, new TextEncoder().encode(password), { maxPBES2Count: 1e6 })` (jose
//! refuses more than 10,000 iterations unless told otherwise).
//!
//! # Payload
//! The plaintext is a JSON object, members in this order:
//!
//! ```json
//! {"format":"keyctl-key-backup","version":1,"created":"2026-11-30T12:00:00Z",
//!  "phase":"dual-verify","new_kid":"…","JWT_KEYS":[…private JWKs…],"JWT_SECRET":"…"}
//! ```
//!
//! `JWT_KEYS` is the array itself (not a string), exactly Auth's `JWT_KEYS`; it is absent for
//! a legacy project, which has only `JWT_SECRET`. `JWT_SECRET` is absent when the project has
//! none. At least one of the two is present. `phase` and `new_kid` (both optional) record the
//! migration phase and the key being introduced, as keyctl saw them when exporting: a project
//! restored on a new machine has no state file, and two asymmetric keys alone do not say which
//! one is new. `JWT_JWKS` is not stored: it is derived from `JWT_KEYS` on import. Unknown
//! members and other versions are refused, so a file is never half understood.
//!
//! # Reading
//! [`Sealed::parse`] checks the structure and the header before any password is asked for:
//! only `PBES2-HS256+A128KW`, `A256GCM` or `A128GCM` (a file re-encrypted by another JOSE
//! client), no `zip`, no `crit`, `p2c` from [`MIN_ITERATIONS`] to [`MAX_ITERATIONS`] (a huge
//! count would be a denial of service), `p2s` of 8 bytes or more. A wrong password and a
//! damaged file are indistinguishable by design (AES-KW and GCM both fail their integrity
//! check) and give one error, [`BackupError::Decrypt`].
//!
//! # Secrets
//! Pure: no files, no printing; randomness from the system source. The password, the content
//! key, the derived key and the plaintext live in [`Zeroizing`] buffers. `serde_json`'s own
//! temporary values while parsing the payload are not zeroized (as everywhere in keyctl).
//! Errors name members, never values.

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes128Gcm, Aes256Gcm, Nonce, Tag};
use aes_kw::KwAes128;
use jiff::Timestamp;
use serde_json::{Map, Value, json};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::b64;

/// The key management algorithm keyctl writes and reads.
pub(crate) const ALG: &str = "PBES2-HS256+A128KW";
/// The content encryption keyctl writes.
pub(crate) const ENC: &str = "A256GCM";
/// PBKDF2 iterations keyctl writes (OWASP 2023 for PBKDF2-HMAC-SHA256).
pub(crate) const ITERATIONS: u32 = 600_000;
/// Fewest iterations accepted on import (RFC 7518 §4.8.1.2 recommends at least 1000).
pub(crate) const MIN_ITERATIONS: u32 = 1_000;
/// Most iterations accepted on import: more would keep the CPU busy for minutes.
pub(crate) const MAX_ITERATIONS: u32 = 10_000_000;
/// Shortest password `export` accepts, in characters.
pub(crate) const MIN_PASSWORD_CHARS: usize = 12;
/// The `format` member of the payload.
pub(crate) const FORMAT: &str = "keyctl-key-backup";
/// The payload version keyctl writes and reads.
pub(crate) const VERSION: u64 = 1;
/// The `typ` header member keyctl writes (not required on import).
pub(crate) const TYP: &str = "keyctl-backup";

/// Largest backup file accepted (a few kilobytes in practice; RSA-4096 sets stay far below).
pub(crate) const MAX_FILE_LEN: usize = 1024 * 1024;

const SALT_LEN: usize = 16;
const IV_LEN: usize = 12;
const TAG_LEN: usize = 16;
const KEK_LEN: usize = 16;

/// Why a backup cannot be read. Never holds key material or the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BackupError {
    /// Not a backup keyctl can read (structure, header, payload).
    #[error("{0}")]
    Malformed(String),
    /// The password does not open it, or the file was changed.
    #[error("wrong password or damaged file")]
    Decrypt,
}

fn malformed(msg: impl Into<String>) -> BackupError {
    BackupError::Malformed(msg.into())
}

/// The content encryption of a backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Enc {
    /// AES-128-GCM.
    A128Gcm,
    /// AES-256-GCM (what keyctl writes).
    A256Gcm,
}

impl Enc {
    fn key_len(self) -> usize {
        match self {
            Enc::A128Gcm => 16,
            Enc::A256Gcm => 32,
        }
    }
}

/// A parsed, still encrypted backup: the header is checked, nothing is decrypted.
#[derive(Debug, Clone)]
pub(crate) struct Sealed {
    protected: String,
    /// The content encryption.
    pub enc: Enc,
    /// PBKDF2 iterations (`p2c`).
    pub iterations: u32,
    salt_input: Vec<u8>,
    encrypted_key: Vec<u8>,
    iv: Vec<u8>,
    ciphertext: Vec<u8>,
    tag: Vec<u8>,
}

/// The PBES2 salt: the algorithm name, a zero byte, then `p2s` (RFC 7518 §4.8.1.1).
fn pbes2_salt(p2s: &[u8]) -> Vec<u8> {
    let mut salt = Vec::with_capacity(ALG.len() + 1 + p2s.len());
    salt.extend_from_slice(ALG.as_bytes());
    salt.push(0);
    salt.extend_from_slice(p2s);
    salt
}

fn derive_kek(password: &[u8], p2s: &[u8], iterations: u32) -> Zeroizing<[u8; KEK_LEN]> {
    let mut kek = Zeroizing::new([0u8; KEK_LEN]);
    pbkdf2::pbkdf2_hmac::<Sha256>(password, &pbes2_salt(p2s), iterations, kek.as_mut());
    kek
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("the system random source is available");
    b
}

/// Encrypts `plaintext` with `password`: the compact JWE text, without a newline.
///
/// `iterations` is [`ITERATIONS`] for every file keyctl writes; unit tests pass fewer.
#[must_use]
pub(crate) fn seal(plaintext: &[u8], password: &[u8], iterations: u32) -> String {
    let p2s: [u8; SALT_LEN] = random();
    let header = json!({
        "alg": ALG,
        "enc": ENC,
        "p2s": b64::encode(&p2s),
        "p2c": iterations,
        "typ": TYP,
        "cty": "json",
    });
    let protected = b64::encode(header.to_string().as_bytes());
    let kek = derive_kek(password, &p2s, iterations);
    let cek = Zeroizing::new(random::<32>());
    let mut wrapped = [0u8; 40];
    KwAes128::new_from_slice(&kek[..])
        .expect("a 16-byte key")
        .wrap_key(cek.as_ref(), &mut wrapped)
        .expect("a 32-byte key wraps into 40 bytes");
    let iv: [u8; IV_LEN] = random();
    let mut buffer = Zeroizing::new(plaintext.to_vec());
    let tag = Aes256Gcm::new_from_slice(&cek[..])
        .expect("a 32-byte key")
        .encrypt_inout_detached(
            &Nonce::from(iv),
            protected.as_bytes(),
            buffer.as_mut_slice().into(),
        )
        .expect("a backup is far below GCM's message limit");
    format!(
        "{protected}.{}.{}.{}.{}",
        b64::encode(&wrapped),
        b64::encode(&iv),
        b64::encode(&buffer),
        b64::encode(&tag)
    )
}

impl Sealed {
    /// Reads a compact JWE and checks its header, without decrypting anything.
    ///
    /// # Errors
    /// Anything but five base64url parts with a header keyctl accepts (see the module docs).
    pub(crate) fn parse(text: &str) -> Result<Sealed, BackupError> {
        let text = text.trim_end_matches(['\n', '\r']);
        if text.len() > MAX_FILE_LEN {
            return Err(malformed("is too large for a key backup"));
        }
        let parts: Vec<&str> = text.split('.').collect();
        if parts.len() != 5 {
            return Err(malformed(format!(
                "is not a keyctl key backup (a compact JWE has 5 dot-separated parts, this has {})",
                parts.len()
            )));
        }
        let part = |i: usize, name: &str| {
            b64::decode(parts[i])
                .ok_or_else(|| malformed(format!("the JWE {name} is not base64url")))
        };
        let header_bytes = part(0, "header")?;
        let header: Value = serde_json::from_slice(&header_bytes)
            .map_err(|_| malformed("the JWE header is not JSON"))?;
        let header = header
            .as_object()
            .ok_or_else(|| malformed("the JWE header is not a JSON object"))?;
        let text_member = |name: &str| header.get(name).and_then(Value::as_str);
        match text_member("alg") {
            Some(ALG) => {}
            Some(other) => {
                return Err(malformed(format!(
                    "the JWE uses \"alg\":{other:?}; keyctl backups use {ALG:?}"
                )));
            }
            None => return Err(malformed("the JWE header has no \"alg\"")),
        }
        let enc = match text_member("enc") {
            Some("A256GCM") => Enc::A256Gcm,
            Some("A128GCM") => Enc::A128Gcm,
            Some(other) => {
                return Err(malformed(format!(
                    "the JWE uses \"enc\":{other:?}; keyctl reads A256GCM and A128GCM"
                )));
            }
            None => return Err(malformed("the JWE header has no \"enc\"")),
        };
        if header.contains_key("zip") {
            return Err(malformed(
                "the JWE is compressed (\"zip\"); keyctl reads uncompressed backups only",
            ));
        }
        if header.contains_key("crit") {
            return Err(malformed(
                "the JWE header has \"crit\" extensions keyctl does not understand",
            ));
        }
        let iterations = header
            .get("p2c")
            .and_then(Value::as_u64)
            .ok_or_else(|| malformed("the JWE header has no whole-number \"p2c\""))?;
        if !(u64::from(MIN_ITERATIONS)..=u64::from(MAX_ITERATIONS)).contains(&iterations) {
            return Err(malformed(format!(
                "the JWE header asks for {iterations} PBKDF2 iterations; keyctl accepts {MIN_ITERATIONS} to {MAX_ITERATIONS}"
            )));
        }
        let iterations = u32::try_from(iterations).expect("bounded above");
        let p2s = text_member("p2s")
            .and_then(b64::decode)
            .ok_or_else(|| malformed("the JWE header has no base64url \"p2s\""))?;
        if p2s.len() < 8 {
            return Err(malformed(
                "the JWE salt (\"p2s\") is shorter than 8 bytes (RFC 7518 §4.8.1.1)",
            ));
        }
        let encrypted_key = part(1, "encrypted key")?;
        if encrypted_key.len() != enc.key_len() + 8 {
            return Err(malformed(format!(
                "the JWE encrypted key is {} bytes; {} wraps a {}-byte key into {}",
                encrypted_key.len(),
                ALG,
                enc.key_len(),
                enc.key_len() + 8
            )));
        }
        let iv = part(2, "IV")?;
        if iv.len() != IV_LEN {
            return Err(malformed(format!(
                "the JWE IV is {} bytes; GCM uses {IV_LEN}",
                iv.len()
            )));
        }
        let ciphertext = part(3, "ciphertext")?;
        let tag = part(4, "tag")?;
        if tag.len() != TAG_LEN {
            return Err(malformed(format!(
                "the JWE tag is {} bytes; GCM uses {TAG_LEN}",
                tag.len()
            )));
        }
        Ok(Sealed {
            protected: parts[0].to_owned(),
            enc,
            iterations,
            salt_input: p2s,
            encrypted_key,
            iv,
            ciphertext,
            tag,
        })
    }

    /// Decrypts with `password`.
    ///
    /// # Errors
    /// [`BackupError::Decrypt`] for a wrong password or a changed file.
    pub(crate) fn open(&self, password: &[u8]) -> Result<Zeroizing<Vec<u8>>, BackupError> {
        let kek = derive_kek(password, &self.salt_input, self.iterations);
        let mut cek = Zeroizing::new(vec![0u8; self.enc.key_len()]);
        KwAes128::new_from_slice(&kek[..])
            .expect("a 16-byte key")
            .unwrap_key(&self.encrypted_key, &mut cek)
            .map_err(|_| BackupError::Decrypt)?;
        let mut buffer = Zeroizing::new(self.ciphertext.clone());
        let nonce = Nonce::try_from(self.iv.as_slice()).map_err(|_| BackupError::Decrypt)?;
        let tag = Tag::try_from(self.tag.as_slice()).map_err(|_| BackupError::Decrypt)?;
        let aad = self.protected.as_bytes();
        let opened = match self.enc {
            Enc::A256Gcm => Aes256Gcm::new_from_slice(&cek)
                .map_err(|_| BackupError::Decrypt)?
                .decrypt_inout_detached(&nonce, aad, buffer.as_mut_slice().into(), &tag),
            Enc::A128Gcm => Aes128Gcm::new_from_slice(&cek)
                .map_err(|_| BackupError::Decrypt)?
                .decrypt_inout_detached(&nonce, aad, buffer.as_mut_slice().into(), &tag),
        };
        opened.map_err(|_| BackupError::Decrypt)?;
        Ok(buffer)
    }
}

/// What a backup holds.
#[derive(Clone)]
pub(crate) struct Contents {
    /// When the backup was made.
    pub created: Timestamp,
    /// The migration phase keyctl saw when exporting, if it could tell.
    pub phase: Option<String>,
    /// The key being introduced in that phase (dual-verify, switched), if any.
    pub new_kid: Option<String>,
    /// `JWT_KEYS` as compact JSON text (an array), if the project had one.
    pub jwt_keys: Option<Zeroizing<String>>,
    /// `JWT_SECRET`, if the project had one.
    pub jwt_secret: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for Contents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Contents")
            .field("created", &self.created)
            .field("phase", &self.phase)
            .field("new_kid", &self.new_kid)
            .field("jwt_keys", &self.jwt_keys.as_ref().map(|_| "[redacted]"))
            .field(
                "jwt_secret",
                &self.jwt_secret.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// The payload members, in the order keyctl writes them.
const MEMBERS: [&str; 7] = [
    "format",
    "version",
    "created",
    "phase",
    "new_kid",
    "JWT_KEYS",
    "JWT_SECRET",
];

impl Contents {
    /// The plaintext JSON (see the module docs). `jwt_keys` must be a JSON array; it is
    /// spliced in as it is, so its text is never copied into an unzeroized value.
    ///
    /// # Errors
    /// `jwt_keys` that is not a JSON array, or neither value present.
    pub(crate) fn render(&self) -> Result<Zeroizing<String>, BackupError> {
        if self.jwt_keys.is_none() && self.jwt_secret.is_none() {
            return Err(malformed("a backup needs JWT_KEYS or JWT_SECRET"));
        }
        let mut head = Map::new();
        head.insert("format".into(), json!(FORMAT));
        head.insert("version".into(), json!(VERSION));
        head.insert("created".into(), json!(self.created.to_string()));
        if let Some(p) = &self.phase {
            head.insert("phase".into(), json!(p));
        }
        if let Some(k) = &self.new_kid {
            head.insert("new_kid".into(), json!(k));
        }
        let head = Value::Object(head).to_string();
        let mut out = Zeroizing::new(String::with_capacity(head.len() + 4096));
        out.push_str(head.trim_end_matches('}'));
        if let Some(keys) = &self.jwt_keys {
            let is_array = serde_json::from_str::<Value>(keys).is_ok_and(|v| v.is_array());
            if !is_array {
                return Err(malformed("JWT_KEYS is not a JSON array"));
            }
            out.push_str(",\"JWT_KEYS\":");
            out.push_str(keys.trim());
        }
        if let Some(secret) = &self.jwt_secret {
            let quoted = Zeroizing::new(
                serde_json::to_string(secret.as_str()).expect("a string renders as JSON"),
            );
            out.push_str(",\"JWT_SECRET\":");
            out.push_str(&quoted);
        }
        out.push('}');
        Ok(out)
    }

    /// Reads a decrypted payload strictly.
    ///
    /// # Errors
    /// Not JSON, another format or version, unknown or mistyped members, neither
    /// `JWT_KEYS` nor `JWT_SECRET`.
    pub(crate) fn parse(plaintext: &[u8]) -> Result<Contents, BackupError> {
        let value: Value = serde_json::from_slice(plaintext)
            .map_err(|_| malformed("the decrypted payload is not JSON"))?;
        let Value::Object(obj) = value else {
            return Err(malformed("the decrypted payload is not a JSON object"));
        };
        if let Some(unknown) = obj.keys().find(|k| !MEMBERS.contains(&k.as_str())) {
            return Err(malformed(format!(
                "the payload has an unknown member {unknown:?}"
            )));
        }
        if obj.get("format").and_then(Value::as_str) != Some(FORMAT) {
            return Err(malformed(format!(
                "the payload is not a keyctl key backup (\"format\" is not {FORMAT:?})"
            )));
        }
        match obj.get("version").and_then(Value::as_u64) {
            Some(VERSION) => {}
            Some(v) => {
                return Err(malformed(format!(
                    "backup format version {v}; this keyctl reads version {VERSION}"
                )));
            }
            None => return Err(malformed("the payload has no whole-number \"version\"")),
        }
        let created = obj
            .get("created")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<Timestamp>().ok())
            .ok_or_else(|| malformed("the payload has no RFC 3339 \"created\" time"))?;
        let optional_text = |name: &str| -> Result<Option<String>, BackupError> {
            match obj.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(malformed(format!("the payload's {name:?} is not a string"))),
            }
        };
        let phase = optional_text("phase")?;
        if phase
            .as_deref()
            .is_some_and(|p| !["legacy", "dual-verify", "switched", "revoked"].contains(&p))
        {
            return Err(malformed(
                "the payload's \"phase\" is not a phase keyctl knows",
            ));
        }
        let new_kid = optional_text("new_kid")?;
        if new_kid
            .as_deref()
            .is_some_and(|k| k.is_empty() || k.chars().any(char::is_control))
        {
            return Err(malformed("the payload's \"new_kid\" is not a valid kid"));
        }
        let jwt_keys = match obj.get("JWT_KEYS") {
            None | Some(Value::Null) => None,
            Some(v @ Value::Array(_)) => Some(Zeroizing::new(v.to_string())),
            Some(_) => return Err(malformed("the payload's \"JWT_KEYS\" is not an array")),
        };
        let jwt_secret = optional_text("JWT_SECRET")?.map(Zeroizing::new);
        if jwt_keys.is_none() && jwt_secret.is_none() {
            return Err(malformed(
                "the payload holds neither JWT_KEYS nor JWT_SECRET",
            ));
        }
        Ok(Contents {
            created,
            phase,
            new_kid,
            jwt_keys,
            jwt_secret,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWORD: &[u8] = b"correct horse battery staple";

    fn contents() -> Contents {
        Contents {
            created: "2026-11-30T12:00:00Z".parse().unwrap(),
            phase: Some("dual-verify".into()),
            new_kid: Some("k2".into()),
            jwt_keys: Some(Zeroizing::new(
                r#"[{"kty":"oct","k":"c2VjcmV0","alg":"HS256","key_ops":["sign","verify"]}]"#
                    .into(),
            )),
            jwt_secret: Some(Zeroizing::new("it's a \"secret\"".into())),
        }
    }

    fn header_of(jwe: &str) -> Value {
        let h = b64::decode(jwe.split('.').next().unwrap()).unwrap();
        serde_json::from_slice(&h).unwrap()
    }

    fn replace_header(jwe: &str, edit: impl FnOnce(&mut Value)) -> String {
        let mut h = header_of(jwe);
        edit(&mut h);
        let mut parts: Vec<String> = jwe.split('.').map(str::to_owned).collect();
        parts[0] = b64::encode(h.to_string().as_bytes());
        parts.join(".")
    }

    #[test]
    fn seal_then_open_round_trips_and_the_header_says_how() {
        let plain = contents().render().unwrap();
        let jwe = seal(plain.as_bytes(), PASSWORD, MIN_ITERATIONS);
        let h = header_of(&jwe);
        assert_eq!(h["alg"], ALG);
        assert_eq!(h["enc"], ENC);
        assert_eq!(h["p2c"], MIN_ITERATIONS);
        assert_eq!(b64::decode(h["p2s"].as_str().unwrap()).unwrap().len(), 16);
        let sealed = Sealed::parse(&format!("{jwe}\n")).unwrap();
        let opened = sealed.open(PASSWORD).unwrap();
        assert_eq!(opened.as_slice(), plain.as_bytes());
        let back = Contents::parse(&opened).unwrap();
        assert_eq!(
            back.jwt_secret.as_deref().unwrap().as_str(),
            "it's a \"secret\""
        );
        assert_eq!(back.phase.as_deref(), Some("dual-verify"));
        assert_eq!(back.new_kid.as_deref(), Some("k2"));
        let keys: Value = serde_json::from_str(back.jwt_keys.as_deref().unwrap()).unwrap();
        assert_eq!(keys[0]["k"], "c2VjcmV0");
    }

    #[test]
    fn two_seals_of_one_payload_share_nothing_random() {
        let a = seal(b"{}", PASSWORD, MIN_ITERATIONS);
        let b = seal(b"{}", PASSWORD, MIN_ITERATIONS);
        let (pa, pb): (Vec<&str>, Vec<&str>) = (a.split('.').collect(), b.split('.').collect());
        for i in 0..5 {
            assert_ne!(pa[i], pb[i], "part {i} repeated");
        }
    }

    #[test]
    fn wrong_password_and_any_changed_part_fail_as_one_error() {
        let jwe = seal(b"{\"x\":1}", PASSWORD, MIN_ITERATIONS);
        let sealed = Sealed::parse(&jwe).unwrap();
        assert_eq!(sealed.open(b"wrong password!!"), Err(BackupError::Decrypt));
        // A header change (here: the content type) breaks the GCM tag: the header is the AAD.
        let other = replace_header(&jwe, |h| h["cty"] = json!("text"));
        assert_eq!(
            Sealed::parse(&other).unwrap().open(PASSWORD),
            Err(BackupError::Decrypt)
        );
        for i in 1..5 {
            let mut parts: Vec<String> = jwe.split('.').map(str::to_owned).collect();
            let mut bytes = b64::decode(&parts[i]).unwrap();
            if bytes.is_empty() {
                continue;
            }
            bytes[0] ^= 1;
            parts[i] = b64::encode(&bytes);
            let changed = parts.join(".");
            assert_eq!(
                Sealed::parse(&changed).unwrap().open(PASSWORD),
                Err(BackupError::Decrypt),
                "part {i}"
            );
        }
    }

    #[test]
    fn headers_keyctl_does_not_write_are_refused_before_any_work() {
        let jwe = seal(b"{}", PASSWORD, MIN_ITERATIONS);
        type Edit = fn(&mut Value);
        let cases: [(Edit, &str); 7] = [
            (|h| h["alg"] = json!("dir"), "\"dir\""),
            (|h| h["enc"] = json!("A128CBC-HS256"), "A128CBC-HS256"),
            (
                |h| h["p2c"] = json!(100_000_000),
                "100000000 PBKDF2 iterations",
            ),
            (|h| h["p2c"] = json!(10), "10 PBKDF2 iterations"),
            (|h| h["p2s"] = json!("AAAA"), "shorter than 8 bytes"),
            (|h| h["zip"] = json!("DEF"), "compressed"),
            (|h| h["crit"] = json!(["b64"]), "crit"),
        ];
        for (edit, want) in cases {
            let e = Sealed::parse(&replace_header(&jwe, edit)).unwrap_err();
            assert!(e.to_string().contains(want), "{e} lacks {want}");
        }
        for garbage in ["", "not a jwe", "a.b.c", "a.b.c.d.e", "....."] {
            assert!(matches!(
                Sealed::parse(garbage),
                Err(BackupError::Malformed(_))
            ));
        }
    }

    #[test]
    fn a128gcm_files_from_other_clients_open_too() {
        // Build an A128GCM JWE by hand, as another JOSE client would.
        let p2s = [7u8; 16];
        let header = json!({"alg": ALG, "enc": "A128GCM", "p2s": b64::encode(&p2s), "p2c": 1000});
        let protected = b64::encode(header.to_string().as_bytes());
        let kek = derive_kek(PASSWORD, &p2s, 1000);
        let cek = [9u8; 16];
        let mut wrapped = [0u8; 24];
        KwAes128::new_from_slice(&kek[..])
            .expect("a 16-byte key")
            .wrap_key(&cek, &mut wrapped)
            .unwrap();
        let iv = [1u8; 12];
        let mut buf = b"{\"a\":1}".to_vec();
        let tag = Aes128Gcm::new((&cek).into())
            .encrypt_inout_detached(
                &Nonce::from(iv),
                protected.as_bytes(),
                buf.as_mut_slice().into(),
            )
            .unwrap();
        let jwe = format!(
            "{protected}.{}.{}.{}.{}",
            b64::encode(&wrapped),
            b64::encode(&iv),
            b64::encode(&buf),
            b64::encode(&tag)
        );
        let opened = Sealed::parse(&jwe).unwrap().open(PASSWORD).unwrap();
        assert_eq!(opened.as_slice(), b"{\"a\":1}");
    }

    #[test]
    fn payload_is_read_strictly() {
        let ok = contents().render().unwrap();
        assert!(Contents::parse(ok.as_bytes()).is_ok());
        let bad = [
            (r#"[1]"#, "not a JSON object"),
            (r#"{"format":"x","version":1}"#, "not a keyctl key backup"),
            (
                r#"{"format":"keyctl-key-backup","version":2,"created":"2026-01-01T00:00:00Z","JWT_SECRET":"s"}"#,
                "version 2",
            ),
            (
                r#"{"format":"keyctl-key-backup","version":1,"created":"2026-01-01T00:00:00Z","JWT_SECRET":"s","extra":1}"#,
                "unknown member \"extra\"",
            ),
            (
                r#"{"format":"keyctl-key-backup","version":1,"created":"2026-01-01T00:00:00Z"}"#,
                "neither",
            ),
            (
                r#"{"format":"keyctl-key-backup","version":1,"created":"2026-01-01T00:00:00Z","JWT_KEYS":"[]"}"#,
                "not an array",
            ),
            (
                r#"{"format":"keyctl-key-backup","version":1,"JWT_SECRET":"s"}"#,
                "created",
            ),
        ];
        for (text, want) in bad {
            let e = Contents::parse(text.as_bytes()).unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
            assert!(!e.contains("\"s\""), "an error echoed a value: {e}");
        }
    }

    #[test]
    fn render_refuses_an_empty_backup_and_a_non_array_set() {
        let mut c = contents();
        c.jwt_keys = Some(Zeroizing::new("{\"keys\":[]}".into()));
        assert!(c.render().is_err());
        c.jwt_keys = None;
        c.jwt_secret = None;
        assert!(c.render().is_err());
    }

    #[test]
    fn debug_hides_the_keys_and_the_secret() {
        let shown = format!("{:?}", contents());
        assert!(!shown.contains("c2VjcmV0") && !shown.contains("it's a"));
        assert!(shown.contains("[redacted]"));
    }
}
