//! `keyctl jwks`: build `JWT_JWKS` (and `JWT_KEYS`) from a project or from key files, check
//! a project's sets against SPEC §1, or repair a `JWT_JWKS` that disagrees with `JWT_KEYS`
//! (through the write flow; see `fix::JwksRepair`).

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use serde_json::{Map, Value};

use crate::clock;
use crate::envfile::quote_value;
use crate::error::{Error, Result};
use crate::fix::JwksRepair;
use crate::flow::{self, Mode};
use crate::fsio::read_text;
use crate::jwk::{self, Jwk};
use crate::key::Material;
use crate::keyset::{self, Inputs, Problem, derive_jwks, legacy_material};
use crate::project::{Locator, Project};
use crate::ui;

/// Output form of `jwks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum JwksFormat {
    /// `NAME='value'` lines, ready for `.env`.
    Env,
    /// One JSON object keyed by variable name.
    Json,
}

/// Arguments of `keyctl jwks`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  keyctl jwks --project /srv/supabase            # JWT_JWKS derived from JWT_KEYS\n  keyctl jwks --check --project /srv/supabase    # exit 1 and one line per problem\n  keyctl jwks --repair --project /srv/supabase   # rewrite JWT_JWKS from JWT_KEYS (asks first)\n  JWT_SECRET=… keyctl jwks --key new.pem --legacy-secret-env JWT_SECRET --signing-kid legacy"
)]
pub(crate) struct JwksArgs {
    /// Project directory holding `.env`.
    #[arg(long, value_name = "DIR")]
    pub project: Option<PathBuf>,
    /// The env file to read (default: DIR/.env).
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// Build the sets from key files instead of a project (JWK, JWK set or PEM); repeatable.
    #[arg(long = "key", value_name = "FILE", conflicts_with_all = ["project", "env_file", "check"])]
    pub keys: Vec<PathBuf>,
    /// With --key: the kid of the signing key, or `legacy` for the JWT_SECRET key.
    #[arg(long, value_name = "KID", requires = "keys")]
    pub signing_kid: Option<String>,
    /// With --key: add the legacy HS256 key, reading JWT_SECRET from this environment variable.
    #[arg(long, value_name = "NAME", requires = "keys")]
    pub legacy_secret_env: Option<String>,
    /// Check the project's JWT_KEYS, JWT_JWKS and JWT_SECRET; exit 1 on any problem.
    #[arg(long)]
    pub check: bool,
    /// Output form.
    #[arg(long, value_enum, default_value_t = JwksFormat::Env)]
    pub format: JwksFormat,
    /// Shorthand for --format json.
    #[arg(long)]
    pub json: bool,
    /// With --project: print JWT_KEYS (private keys) too.
    #[arg(long)]
    pub private: bool,
    /// Rewrite the project's JWT_JWKS to what JWT_KEYS derives, when they disagree.
    #[arg(long, conflicts_with_all = ["check", "keys", "private"])]
    pub repair: bool,
    /// With --repair: apply without asking (for CI); never prompts.
    #[arg(long, short = 'y', requires = "repair")]
    pub yes: bool,
    /// With --repair: show the plan and the diff, write nothing.
    #[arg(long, requires = "repair")]
    pub dry_run: bool,
    /// With --repair: restart the services that read JWT_JWKS and confirm they run the new set.
    #[arg(long, requires = "repair")]
    pub restart: bool,
}

impl JwksArgs {
    /// Runs the command.
    ///
    /// # Errors
    /// Problems found by --check (exit 1), bad input (exit 2), a refused repair (exit 3),
    /// I/O (exit 4).
    pub(crate) fn run(self) -> Result<()> {
        if self.check {
            return self.check_project();
        }
        if self.repair {
            if self.project.is_none() && self.env_file.is_none() {
                return Err(Error::usage(
                    "--repair needs the project: --project DIR (or --env-file FILE)",
                ));
            }
            let mode = Mode {
                yes: self.yes,
                dry_run: self.dry_run,
                restart: self.restart,
                json: self.json,
            };
            return flow::run(&self.locator(), mode, &mut JwksRepair);
        }
        if !self.keys.is_empty() {
            return self.build_from_files();
        }
        if self.project.is_none() && self.env_file.is_none() {
            return Err(Error::usage(
                "name a project with --project DIR (or --env-file FILE), or key files with --key FILE",
            ));
        }
        self.derive_from_project()
    }

    fn locator(&self) -> Locator {
        Locator {
            dir: self.project.clone(),
            env_file: self.env_file.clone(),
            compose_file: None,
            services: Vec::new(),
            project_name: None,
            helm: None,
        }
    }

    fn load(&self) -> Result<Project> {
        Project::load(&self.locator(), clock::now()?)
    }

    /// The output form: `--json` is `--format json`.
    fn output(&self) -> JwksFormat {
        if self.json {
            JwksFormat::Json
        } else {
            self.format
        }
    }

    fn check_project(&self) -> Result<()> {
        // A check that cannot parse what it checks has found a problem (SPEC §5): exit 1.
        let project = match self.load() {
            Err(Error::BadInput { place, message }) => {
                ui::out(&ui::clean(&format!("{place}: {message}")));
                ui::note("1 problem(s) found");
                return Err(Error::Problems { count: 1 });
            }
            other => other?,
        };
        let problems = keyset::check(&project.key_inputs());
        if problems.is_empty() {
            let summary = match project.env.get_nonempty("JWT_KEYS") {
                None => {
                    "no JWT_KEYS: the project verifies with JWT_SECRET only (legacy)".to_owned()
                }
                Some(text) => {
                    let keys = keyset::parse_private_set(text, "JWT_KEYS").unwrap_or_default();
                    let signer = keys.iter().find(|k| k.can_sign());
                    format!(
                        "{} key(s), signing with {}; JWT_JWKS in step",
                        keys.len(),
                        signer.map_or("?".into(), describe)
                    )
                }
            };
            ui::out(&format!("ok: {}: {summary}", project.env_path.display()));
            return Ok(());
        }
        report(&problems);
        Err(Error::Problems {
            count: problems.len(),
        })
    }

    fn derive_from_project(&self) -> Result<()> {
        let project = self.load()?;
        let (text, place) = project.value("JWT_KEYS").filter(|(v, _)| !v.trim().is_empty()).ok_or_else(|| {
            Error::bad(
                project.place("JWT_KEYS"),
                "is empty or not set: the project still uses only JWT_SECRET (start the migration with keyctl migrate, or create a key with keyctl generate --format env)",
            )
        })?;
        let keys = keyset::parse_private_set(text, &place).map_err(|p| keyset::as_error(&p))?;
        let jwks = derive_jwks(&keys).to_string();
        let mut inputs = project.key_inputs();
        inputs.jwt_jwks = Some((&jwks, "derived JWT_JWKS".into()));
        let problems = keyset::check(&inputs);
        if !problems.is_empty() {
            return Err(keyset::as_error(&problems));
        }
        let mut vars = Vec::new();
        if self.private {
            vars.push(("JWT_KEYS", text.to_owned()));
        }
        vars.push(("JWT_JWKS", jwks));
        print_vars(&vars, self.output())
    }

    fn build_from_files(&self) -> Result<()> {
        let mut keys: Vec<(Material, Option<String>, bool)> = Vec::new();
        let mut secret = None;
        if let Some(name) = &self.legacy_secret_env {
            let value = std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    Error::bad(
                        format!("--legacy-secret-env {name}"),
                        "the environment variable is not set",
                    )
                })?;
            keys.push((legacy_material(&value), None, false));
            secret = Some(value);
        }
        for path in &self.keys {
            for k in load_key_file(path)? {
                if !k.material.is_private() {
                    return Err(Error::bad(
                        path.display().to_string(),
                        "holds a public key only; JWT_KEYS needs the private key (Auth signs with it)",
                    ));
                }
                let kid = k.kid.clone().or_else(|| Some(jwk::thumbprint(&k.material)));
                let signs = k.can_sign();
                keys.push((k.material, kid, signs));
            }
        }
        let signer = self.pick_signer(&keys)?;
        let list: Vec<(Material, Option<String>)> =
            keys.into_iter().map(|(m, kid, _)| (m, kid)).collect();
        let private = keyset::render_private_set(&list, signer).to_string();
        let parsed =
            keyset::parse_private_set(&private, "JWT_KEYS").map_err(|p| keyset::as_error(&p))?;
        let jwks = derive_jwks(&parsed).to_string();
        let problems = keyset::check(&Inputs {
            jwt_keys: Some((&private, "JWT_KEYS".into())),
            jwt_jwks: Some((&jwks, "JWT_JWKS".into())),
            jwt_secret: secret.as_deref().map(|s| (s, "JWT_SECRET".to_owned())),
        });
        if !problems.is_empty() {
            return Err(keyset::as_error(&problems));
        }
        print_vars(&[("JWT_KEYS", private), ("JWT_JWKS", jwks)], self.output())
    }

    fn pick_signer(&self, keys: &[(Material, Option<String>, bool)]) -> Result<usize> {
        if let Some(want) = &self.signing_kid {
            if want == "legacy" {
                return keys
                    .iter()
                    .position(|(_, kid, _)| kid.is_none())
                    .ok_or_else(|| {
                        Error::usage("--signing-kid legacy needs --legacy-secret-env NAME")
                    });
            }
            return keys
                .iter()
                .position(|(_, kid, _)| kid.as_deref() == Some(want.as_str()))
                .ok_or_else(|| {
                    Error::bad(format!("--signing-kid {want}"), "no key file has this kid")
                });
        }
        let marked: Vec<usize> = (0..keys.len()).filter(|i| keys[*i].2).collect();
        if let [one] = marked.as_slice() {
            return Ok(*one);
        }
        let asymmetric: Vec<usize> = (0..keys.len()).filter(|i| keys[*i].1.is_some()).collect();
        match asymmetric.as_slice() {
            [one] => Ok(*one),
            [] => Err(Error::usage("no key to sign with: pass --key FILE")),
            _ => Err(Error::usage(
                "several keys could sign: name the signing key with --signing-kid KID",
            )),
        }
    }
}

fn describe(k: &Jwk) -> String {
    match &k.kid {
        Some(kid) => format!("{} kid {kid}", k.material.alg()),
        None => "the legacy JWT_SECRET (HS256)".into(),
    }
}

fn report(problems: &[Problem]) {
    for p in problems {
        ui::out(&ui::clean(&p.to_string()));
    }
    ui::note(&format!("{} problem(s) found", problems.len()));
}

fn print_vars(vars: &[(&str, String)], format: JwksFormat) -> Result<()> {
    match format {
        JwksFormat::Env => {
            let mut text = String::new();
            for (name, value) in vars {
                let quoted = quote_value(value).map_err(|e| Error::bad(*name, e))?;
                text.push_str(&format!("{name}={quoted}\n"));
            }
            ui::out(&text);
        }
        JwksFormat::Json => {
            let mut obj = Map::new();
            for (name, value) in vars {
                let v: Value = serde_json::from_str(value).expect("keyctl renders valid JSON");
                obj.insert((*name).to_owned(), v);
            }
            ui::out(&serde_json::to_string_pretty(&Value::Object(obj)).expect("JSON renders"));
        }
    }
    Ok(())
}

/// Reads a key file: a JWK, a JWK array, a `{"keys":[…]}` set, or a PEM key.
fn load_key_file(path: &Path) -> Result<Vec<Jwk>> {
    let text = read_text(path)?;
    let place = path.display().to_string();
    let trimmed = text.trim_start();
    if !(trimmed.starts_with('{') || trimmed.starts_with('[')) {
        let material = Material::from_pem(&text).map_err(|e| Error::bad(&place, e.0))?;
        return Ok(vec![Jwk {
            kid: None,
            alg: Some(material.alg().as_str().into()),
            key_ops: None,
            material,
        }]);
    }
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| Error::bad(format!("{place}:{}", e.line()), "not valid JSON"))?;
    if let Some(name) = keyset::duplicate_member(&text) {
        return Err(Error::bad(
            &place,
            format!(
                "a JSON object has a duplicate member {name}; parsers disagree on which one counts"
            ),
        ));
    }
    let items = match value {
        Value::Array(items) => items,
        Value::Object(mut o) if o.contains_key("keys") => match o.remove("keys") {
            Some(Value::Array(items)) => items,
            _ => return Err(Error::bad(&place, "\"keys\" must be an array")),
        },
        v @ Value::Object(_) => vec![v],
        _ => {
            return Err(Error::bad(
                &place,
                "expected a JWK, a JWK array or {\"keys\":[…]}",
            ));
        }
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let who = item
                .get("kid")
                .and_then(Value::as_str)
                .map_or_else(|| format!("key #{}", i + 1), |k| format!("kid {k}"));
            let key =
                Jwk::from_json(item).map_err(|e| Error::bad(format!("{place} {who}"), e.0))?;
            let implied = key.material.alg().as_str();
            match key.alg.as_deref() {
                Some(alg) if alg != implied => Err(Error::bad(
                    format!("{place} {who}"),
                    format!(
                        "has \"alg\":\"{alg}\" but its kty {} needs \"{implied}\"",
                        key.material.alg().kty()
                    ),
                )),
                _ => Ok(key),
            }
        })
        .collect()
}
