//! `keyctl generate`: a new key pair (or a converted PEM) in the forms Supabase reads.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use serde_json::{Value, json};

use crate::envfile::quote_value;
use crate::error::{Error, Result};
use crate::fsio::{self, NewFile, Privacy};
use crate::jwk;
use crate::key::{Alg, Material, check_rsa_bits, new_uuid};
use crate::keyset::{self, derive_jwks};
use crate::{fsio::read_text, ui};

/// How the kid of a new key is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum KidFormat {
    /// A random UUID (what upstream and hosted Supabase use; hosted import requires one).
    Uuid,
    /// The RFC 7638 JWK thumbprint (base64url SHA-256): the same key always gets the same kid.
    Thumbprint,
}

/// What `generate` prints or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// The private JWK, exactly as Auth reads it in JWT_KEYS.
    Jwk,
    /// The public JWK, as the other services read it in JWT_JWKS.
    PublicJwk,
    /// PKCS#8 private key and SPKI public key PEM.
    Pem,
    /// `JWT_KEYS=` and `JWT_JWKS=` lines for a one-key set.
    Env,
    /// One JSON object with all of the above, for scripts.
    Json,
}

/// Arguments of `keyctl generate`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  keyctl generate                       # ES256 private JWK on stdout\n  keyctl generate --format env >> .env  # JWT_KEYS= and JWT_JWKS= for a new project\n  keyctl generate --alg RS256 --rsa-bits 3072 --format pem --out keys/\n  keyctl generate --from-pem old.pem --format jwk"
)]
pub(crate) struct GenerateArgs {
    /// Algorithm: ES256 (default, verified by every Supabase service), RS256, EdDSA or HS256.
    #[arg(long, value_parser = parse_alg)]
    pub alg: Option<Alg>,
    /// RSA modulus size for RS256: 2048 (default), 3072 or 4096.
    #[arg(long, value_parser = parse_rsa_bits, conflicts_with = "from_pem")]
    pub rsa_bits: Option<usize>,
    /// How to choose the kid [default: uuid for a new key, thumbprint for --from-pem, so the
    /// same key always gets the same kid].
    #[arg(long, value_enum)]
    pub kid_format: Option<KidFormat>,
    /// Use this kid instead of generating one.
    #[arg(long, conflicts_with = "kid_format")]
    pub kid: Option<String>,
    /// Output form [default: jwk].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Shorthand for --format json.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// Write files into this directory instead of printing (private files get mode 0600).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// With --out: replace files that already exist.
    #[arg(long, requires = "out")]
    pub force: bool,
    /// Convert this key instead of generating one: a PEM (PKCS#8, SEC1 EC, PKCS#1 RSA, SPKI
    /// public) or a JWK file; `-` reads it from stdin. A JWK keeps its kid.
    #[arg(long, value_name = "FILE", conflicts_with = "alg", alias = "from-key")]
    pub from_pem: Option<PathBuf>,
}

fn parse_alg(s: &str) -> std::result::Result<Alg, String> {
    s.parse()
}

fn parse_rsa_bits(s: &str) -> std::result::Result<usize, String> {
    let bits: usize = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    check_rsa_bits(bits).map_err(|e| e.0)?;
    if ![2048, 3072, 4096].contains(&bits) {
        return Err(format!("RSA-{bits}: choose 2048, 3072 or 4096"));
    }
    Ok(bits)
}

const ALG_CHOICES: [&str; 4] = [
    "ES256  (recommended: every Supabase service, Edge Functions and supabase-js getClaims verify it; small, fast keys)",
    "RS256  (widest support outside Supabase; large keys, slow signing)",
    "EdDSA  (fast and small, but Edge Functions and supabase-js cannot verify it)",
    "HS256  (a new shared secret: every verifier must hold it; not published)",
];

const FORMAT_CHOICES: [&str; 5] = [
    "jwk         private JWK for JWT_KEYS",
    "public-jwk  public JWK for JWT_JWKS",
    "pem         PKCS#8 + SPKI PEM",
    "env         JWT_KEYS= / JWT_JWKS= lines",
    "json        everything, as one JSON object",
];

impl GenerateArgs {
    /// Runs the command.
    ///
    /// # Errors
    /// Bad input (exit 2), an existing output file (exit 3), I/O (exit 4).
    pub(crate) fn run(self) -> Result<()> {
        let mut alg = self.alg;
        let mut format = if self.json {
            Some(Format::Json)
        } else {
            self.format
        };
        if alg.is_none() && self.from_pem.is_none() && ui::interactive() {
            let i = ui::select("Algorithm", &ALG_CHOICES, 0)
                .ok_or_else(|| Error::usage("cancelled"))?;
            alg = Some(Alg::ALL[i]);
            if format.is_none() && self.out.is_none() {
                let f = ui::select("Output", &FORMAT_CHOICES, 0)
                    .ok_or_else(|| Error::usage("cancelled"))?;
                format = Some(Format::value_variants()[f]);
            }
        }
        let format = format.unwrap_or(Format::Jwk);
        if self.rsa_bits.is_some() && alg.is_some_and(|a| a != Alg::Rs256) {
            return Err(Error::usage(
                "--rsa-bits is for RS256 keys only (add --alg RS256, or drop --rsa-bits)",
            ));
        }
        // Checked before any key is made.
        if let Some(dir) = &self.out
            && !fsio::is_dir(dir)
        {
            return Err(Error::Io {
                path: dir.clone(),
                message: "--out: no such directory (create it first; keyctl does not guess where keys go); no key was generated".into(),
            });
        }
        let mut kept_kid = None;
        let material = match &self.from_pem {
            Some(path) => {
                let text = if path.as_os_str() == "-" {
                    let mut t = String::new();
                    std::io::Read::read_to_string(
                        &mut std::io::Read::take(ui::input(), 1 << 20),
                        &mut t,
                    )
                    .map_err(|e| Error::bad("stdin", e.to_string()))?;
                    t
                } else {
                    read_text(path)?
                };
                let place = path.display().to_string();
                if text.trim_start().starts_with('{') {
                    let value: Value = serde_json::from_str(&text)
                        .map_err(|e| Error::bad(&place, format!("not a JWK: {e}")))?;
                    let k = jwk::Jwk::from_json(&value).map_err(|e| Error::bad(&place, e.0))?;
                    kept_kid = k.kid;
                    k.material
                } else {
                    Material::from_pem(&text).map_err(|e| Error::bad(&place, e.0))?
                }
            }
            None => {
                let alg = alg.unwrap_or(Alg::Es256);
                let bits = self.rsa_bits.unwrap_or(2048);
                let label = format!("generating an RSA-{bits} key");
                ui::with_progress(&label, alg == Alg::Rs256 && bits >= 3072, || {
                    Material::generate(alg, bits)
                })
                .map_err(|e| Error::bad("generate", e.0))?
            }
        };
        if material.alg() == Alg::EdDsa {
            ui::warn(
                "EdDSA: Edge Functions and supabase-js auth.getClaims() cannot verify Ed25519 tokens; ES256 is verified everywhere",
            );
        }
        // The same key in gives the same kid out: a converted key keeps its JWK kid, else
        // gets its thumbprint, unless asked otherwise.
        let converted = self.from_pem.is_some();
        let kid = match (&self.kid, self.kid_format) {
            (Some(k), _) if k.is_empty() => {
                return Err(Error::usage("--kid must not be empty"));
            }
            (Some(k), _) => k.clone(),
            (None, Some(KidFormat::Uuid)) => new_uuid()?,
            (None, Some(KidFormat::Thumbprint)) => jwk::thumbprint(&material),
            (None, None) if converted => kept_kid.unwrap_or_else(|| jwk::thumbprint(&material)),
            (None, None) => new_uuid()?,
        };
        let out = Output::new(&material, &kid)?;
        match &self.out {
            None => ui::out(&out.stdout(format)?),
            Some(dir) => {
                let files = out.files(format, dir)?;
                fsio::write_new_files(&files, self.force)?;
                for f in &files {
                    let mode = if f.privacy == Privacy::Private {
                        " (0600)"
                    } else {
                        ""
                    };
                    ui::note(&format!("wrote {}{mode}", f.path.display()));
                }
            }
        }
        Ok(())
    }
}

/// Every form of one key, computed once.
struct Output<'m> {
    material: &'m Material,
    kid: &'m str,
    private_jwk: Option<Value>,
    public_jwk: Value,
}

impl<'m> Output<'m> {
    fn new(material: &'m Material, kid: &'m str) -> Result<Self> {
        let private_jwk = material
            .is_private()
            .then(|| jwk::private_json(material, Some(kid), true));
        let public_jwk = if material.alg().is_asymmetric() {
            jwk::public_json(material, Some(kid))
        } else {
            keyset::derive_jwks(&[jwk::Jwk::from_json(
                private_jwk.as_ref().expect("oct is private"),
            )
            .map_err(|e| Error::bad("generate", e.0))?])["keys"][0]
                .clone()
        };
        Ok(Output {
            material,
            kid,
            private_jwk,
            public_jwk,
        })
    }

    fn need_private(&self) -> Result<&Value> {
        self.private_jwk.as_ref().ok_or_else(|| {
            Error::usage("the PEM holds a public key only; this output needs the private key")
        })
    }

    fn pems(&self) -> Result<(Option<String>, String)> {
        let private = self
            .material
            .private_pem()
            .map_err(|e| Error::usage(format!("{e}; use --format jwk or env")))?;
        let public = self.material.public_pem().map_err(|e| Error::usage(e.0))?;
        Ok((private.map(|p| p.to_string()), public))
    }

    /// `JWT_KEYS=` and `JWT_JWKS=` lines, checked by the same validator as everything else.
    fn env_lines(&self) -> Result<String> {
        let keys = Value::Array(vec![self.need_private()?.clone()]).to_string();
        let parsed = keyset::parse_private_set(&keys, "JWT_KEYS")
            .map_err(|p| Error::bad("generate", p[0].to_string()))?;
        let jwks = derive_jwks(&parsed).to_string();
        let q = |v: &str| quote_value(v).map_err(|e| Error::bad("generate", e));
        Ok(format!("JWT_KEYS={}\nJWT_JWKS={}\n", q(&keys)?, q(&jwks)?))
    }

    fn stdout(&self, format: Format) -> Result<String> {
        Ok(match format {
            Format::Jwk => match &self.private_jwk {
                Some(v) => v.to_string(),
                None => self.public_jwk.to_string(),
            },
            Format::PublicJwk => self.public_jwk.to_string(),
            Format::Pem => {
                let (private, public) = self.pems()?;
                format!("{}{public}", private.unwrap_or_default())
            }
            Format::Env => self.env_lines()?,
            Format::Json => serde_json::to_string_pretty(&self.json()?).expect("JSON renders"),
        })
    }

    fn json(&self) -> Result<Value> {
        let (private_pem, public_pem) = if self.material.alg().is_asymmetric() {
            let (a, b) = self.pems()?;
            (a.map_or(Value::Null, Value::String), Value::String(b))
        } else {
            (Value::Null, Value::Null)
        };
        let env = if self.private_jwk.is_some() {
            let lines = self.env_lines()?;
            let mut obj = serde_json::Map::new();
            for line in lines.lines() {
                if let Some((k, v)) = line.split_once('=') {
                    let v = v
                        .strip_prefix('\'')
                        .and_then(|v| v.strip_suffix('\''))
                        .unwrap_or(v);
                    obj.insert(k.to_owned(), Value::String(v.to_owned()));
                }
            }
            Value::Object(obj)
        } else {
            Value::Null
        };
        Ok(json!({
            "kid": self.kid,
            "alg": self.material.alg().as_str(),
            "thumbprint": jwk::thumbprint(self.material),
            "private_jwk": self.private_jwk,
            "public_jwk": self.public_jwk,
            "private_pem": private_pem,
            "public_pem": public_pem,
            "env": env,
        }))
    }

    fn files(&self, format: Format, dir: &std::path::Path) -> Result<Vec<NewFile>> {
        let file = |name: &str, text: String, privacy| NewFile {
            path: dir.join(name),
            contents: text.into_bytes(),
            privacy,
        };
        let mut files = Vec::new();
        match format {
            Format::Jwk => {
                if let Some(p) = &self.private_jwk {
                    files.push(file("private.jwk.json", format!("{p}\n"), Privacy::Private));
                }
                if self.material.alg().is_asymmetric() {
                    files.push(file(
                        "public.jwk.json",
                        format!("{}\n", self.public_jwk),
                        Privacy::Public,
                    ));
                }
            }
            Format::PublicJwk => {
                let privacy = if self.material.alg().is_asymmetric() {
                    Privacy::Public
                } else {
                    Privacy::Private
                };
                files.push(file(
                    "public.jwk.json",
                    format!("{}\n", self.public_jwk),
                    privacy,
                ));
            }
            Format::Pem => {
                let (private, public) = self.pems()?;
                if let Some(p) = private {
                    files.push(file("private.pem", p, Privacy::Private));
                }
                files.push(file("public.pem", public, Privacy::Public));
            }
            Format::Env => files.push(file("keys.env", self.env_lines()?, Privacy::Private)),
            Format::Json => {
                let text = serde_json::to_string_pretty(&self.json()?).expect("JSON renders");
                files.push(file("key.json", text + "\n", Privacy::Private));
            }
        }
        Ok(files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_is_v4_shaped() {
        let u = new_uuid().unwrap();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!("89ab".contains(&u[19..20]));
    }

    #[test]
    fn rsa_bits_parser() {
        assert!(parse_rsa_bits("1024").unwrap_err().contains("too weak"));
        assert_eq!(parse_rsa_bits("3072").unwrap(), 3072);
        assert!(parse_rsa_bits("2056").is_err());
    }
}
