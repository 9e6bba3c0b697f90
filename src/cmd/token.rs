//! `keyctl token verify` (as each service would, with the reason for every rejection),
//! `keyctl token sign` (a test token from the current signing key) and `keyctl token remint`
//! (API keys signed again where they live, through the write flow; see `fix::Remint`).

use std::io::{BufRead, Write};

use clap::{Args, Subcommand, ValueEnum};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};

use crate::apikey;
use crate::clock;
use crate::cmd::{ApplyArgs, ProjectArgs};
use crate::compose::Role;
use crate::error::{Error, Result};
use crate::fix::Remint;
use crate::flow;
use crate::jws;
use crate::project::Project;
use crate::ui;
use crate::verifier::{self, Known, Verdict, View};

/// Longest line `token verify -` reads; longer ones are reported, not parsed.
const MAX_LINE: usize = 64 * 1024;

/// A service, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ServiceArg {
    /// Auth (GoTrue).
    Auth,
    /// PostgREST.
    Rest,
    /// Realtime.
    Realtime,
    /// Storage.
    Storage,
    /// Edge Functions.
    Functions,
}

impl ServiceArg {
    fn role(self) -> Role {
        match self {
            ServiceArg::Auth => Role::Auth,
            ServiceArg::Rest => Role::Rest,
            ServiceArg::Realtime => Role::Realtime,
            ServiceArg::Storage => Role::Storage,
            ServiceArg::Functions => Role::Functions,
        }
    }
}

/// Roles `token sign` mints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum RoleArg {
    /// `anon`
    Anon,
    /// `authenticated`
    Authenticated,
    /// `service_role`
    #[value(name = "service_role")]
    ServiceRole,
}

impl RoleArg {
    fn as_str(self) -> &'static str {
        match self {
            RoleArg::Anon => "anon",
            RoleArg::Authenticated => "authenticated",
            RoleArg::ServiceRole => "service_role",
        }
    }
}

/// Arguments of `keyctl token`.
#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    #[command(subcommand)]
    action: TokenAction,
}

#[derive(Debug, Subcommand)]
enum TokenAction {
    /// Verify a token the way each service would, and say why it is rejected.
    #[command(
        after_help = "Examples:\n  keyctl token verify eyJhbGciOi… --project /srv/supabase\n  grep -o 'eyJ[A-Za-z0-9._-]*' api.log | keyctl token verify - --project /srv/supabase --service rest --json"
    )]
    Verify(VerifyArgs),
    /// Mint a test token with the current signing key (HS256 while the legacy secret signs).
    #[command(
        after_help = "Examples:\n  keyctl token sign --project /srv/supabase --role authenticated --sub 0b7c… --exp 10m\n  curl -H \"Authorization: Bearer $(keyctl token sign --project . --role service_role)\" …"
    )]
    Sign(SignArgs),
    /// Re-mint API keys with the current signing key, wherever they are held (.env, env_file: files, Kong's file, compose).
    #[command(
        after_help = "Without --var: every API key that is expired, expires within 30 days, or is signed by a key no service trusts.\nA key only some services reject is a wiring fault: refused (exit 3); run keyctl migrate rewire.\n\nExamples:\n  keyctl token remint --project /srv/supabase --dry-run\n  keyctl token remint --project /srv/supabase --var ANON_KEY --var SERVICE_ROLE_KEY --yes"
    )]
    Remint(RemintArgs),
}

/// Arguments of `keyctl token verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The token, or `-` to read tokens from stdin, one per line.
    token: String,
    #[command(flatten)]
    project: ProjectArgs,
    /// Only this service (repeatable); default: every one in the compose file.
    #[arg(long, value_enum)]
    service: Vec<ServiceArg>,
    /// Also require this `role` claim.
    #[arg(long)]
    role: Option<String>,
    /// One JSON object per token (see docs/JSON.md).
    #[arg(long)]
    json: bool,
}

/// Arguments of `keyctl token sign`.
#[derive(Debug, Args)]
pub(crate) struct SignArgs {
    #[command(flatten)]
    project: ProjectArgs,
    /// The `role` claim.
    #[arg(long, value_enum)]
    role: RoleArg,
    /// The `sub` claim.
    #[arg(long)]
    sub: Option<String>,
    /// Lifetime: seconds, or with a unit (`90s`, `10m`, `2h`, `7d`); default JWT_EXPIRY.
    #[arg(long, value_parser = parse_duration)]
    exp: Option<SignedDuration>,
    /// Extra claim `name=value` (value parsed as JSON when it is JSON); repeatable.
    #[arg(long = "claim", value_name = "NAME=VALUE")]
    claims: Vec<String>,
}

/// Arguments of `keyctl token remint`.
#[derive(Debug, Args)]
pub(crate) struct RemintArgs {
    #[command(flatten)]
    project: ProjectArgs,
    /// Re-mint the API key held in this variable, whatever its state (repeatable); default: the keys that need it.
    #[arg(long = "var", value_name = "NAME")]
    vars: Vec<String>,
    /// Lifetime of the new keys: seconds, or with a unit (`90d`, `3650d`); default 3650d.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    exp: Option<SignedDuration>,
    #[command(flatten)]
    apply: ApplyArgs,
}

impl RemintArgs {
    fn run(self) -> Result<()> {
        let mut planner = Remint {
            vars: self.vars,
            lifetime: self.exp.unwrap_or(apikey::API_KEY_LIFETIME),
        };
        flow::run(&self.project.locator(), self.apply.mode(), &mut planner)
    }
}

fn parse_duration(s: &str) -> std::result::Result<SignedDuration, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 3600, 90s, 10m, 2h, 7d)"))?;
    let secs = match unit {
        "" | "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86400),
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (s, m, h, d)")),
    };
    let secs = secs
        .filter(|s| (1..=10 * crate::project::MAX_EXPIRY).contains(s))
        .ok_or("the lifetime must be positive and at most 100 years")?;
    Ok(SignedDuration::from_secs(secs))
}

impl TokenArgs {
    /// Runs the command.
    ///
    /// # Errors
    /// A rejected token (exit 1), bad input (2), a refused re-mint (3), I/O (4).
    pub(crate) fn run(self) -> Result<()> {
        match self.action {
            TokenAction::Verify(a) => a.run(),
            TokenAction::Sign(a) => a.run(),
            TokenAction::Remint(a) => a.run(),
        }
    }
}

fn describe(d: &jws::Decoded<'_>) -> Value {
    json!({
        "alg": d.alg(),
        "kid": d.kid(),
        "role": d.claims.get("role"),
        "sub": d.claims.get("sub"),
        "exp": d.claims.get("exp"),
    })
}

impl VerifyArgs {
    fn run(self) -> Result<()> {
        let now = clock::now()?;
        let project = Project::load(&self.project.locator(), now)?;
        project.compose_if_present()?;
        let mut views = project.views();
        if !self.service.is_empty() {
            let roles: Vec<Role> = self.service.iter().map(|s| s.role()).collect();
            views.retain(|v| roles.contains(&v.role));
            if views.is_empty() {
                return Err(Error::usage(
                    "none of the named services is in the compose file",
                ));
            }
        }
        let known = project.known();
        let mut rejected = 0usize;
        let mut out = ui::output();
        let mut check = |index: Option<usize>, token: &str, out: &mut dyn Write| -> Result<()> {
            let (value, ok) = self.one(token.trim(), &views, &known, now, index);
            if !ok {
                rejected += 1;
            }
            let text = if self.json {
                value.to_string()
            } else {
                render_text(&value)
                    .lines()
                    .map(ui::clean)
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            writeln!(out, "{text}").map_err(|e| Error::io(std::path::Path::new("stdout"), &e))
        };
        if self.token == "-" {
            let mut reader = ui::input();
            let mut line = Vec::new();
            let mut index = 0;
            loop {
                line.clear();
                let n = std::io::Read::take(&mut reader, MAX_LINE as u64 + 1)
                    .read_until(b'\n', &mut line)
                    .map_err(|e| Error::io(std::path::Path::new("stdin"), &e))?;
                if n == 0 {
                    break;
                }
                index += 1;
                if line.len() > MAX_LINE && !line.ends_with(b"\n") {
                    // Skip the rest of an over-long line.
                    let mut rest = Vec::new();
                    reader
                        .read_until(b'\n', &mut rest)
                        .map_err(|e| Error::io(std::path::Path::new("stdin"), &e))?;
                    line.truncate(MAX_LINE + 1);
                }
                let text = String::from_utf8_lossy(&line);
                if text.trim().is_empty() {
                    continue;
                }
                if check(Some(index), &text, &mut out).is_err() {
                    break; // a closed pipe: stop quietly
                }
            }
        } else {
            let _ = check(None, &self.token, &mut out);
        }
        let _ = out.flush();
        if rejected > 0 {
            return Err(Error::Problems { count: rejected });
        }
        Ok(())
    }

    /// The verdicts on one token: a JSON value and whether every service accepted it.
    fn one(
        &self,
        token: &str,
        views: &[View],
        known: &[Known],
        now: Timestamp,
        index: Option<usize>,
    ) -> (Value, bool) {
        let mut v = Map::new();
        if let Some(i) = index {
            v.insert("line".into(), json!(i));
        }
        let decoded = match jws::decode(token) {
            Ok(d) => d,
            Err(e) => {
                v.insert("valid".into(), json!(false));
                v.insert("error".into(), json!({"code": "malformed", "reason": e.0}));
                v.insert("results".into(), json!([]));
                return (Value::Object(v), false);
            }
        };
        v.insert("token".into(), describe(&decoded));
        let mut notes = Vec::new();
        for h in ["jku", "jwk", "x5u", "x5c"] {
            if decoded.header.contains_key(h) {
                notes.push(format!("the header carries {h}: no Supabase service follows it, and keyctl never fetches it"));
            }
        }
        let mut all = true;
        let mut cache = verifier::SigCache::default();
        let results: Vec<Value> = views
            .iter()
            .map(|view| {
                let verdict = verifier::verify_cached(view, &decoded, now, known, self.role.as_deref(), &mut cache);
                all &= verdict.is_valid();
                match verdict {
                    Verdict::Valid { key } => json!({"service": view.service, "role": view.role.as_str(), "valid": true, "key": key}),
                    Verdict::Rejected { code, reason } => json!({"service": view.service, "role": view.role.as_str(), "valid": false, "code": code, "reason": reason}),
                }
            })
            .collect();
        v.insert("valid".into(), json!(all && !results.is_empty()));
        v.insert("results".into(), Value::Array(results));
        if !notes.is_empty() {
            v.insert("notes".into(), json!(notes));
        }
        (Value::Object(v), all)
    }
}

fn render_text(v: &Value) -> String {
    let prefix = v
        .get("line")
        .map_or(String::new(), |l| format!("line {l}: "));
    if let Some(e) = v.get("error") {
        return format!(
            "{prefix}rejected: not a token: {}",
            e["reason"].as_str().unwrap_or_default()
        );
    }
    let t = &v["token"];
    let mut out = format!(
        "{prefix}{} token{}{}",
        t["alg"].as_str().unwrap_or("?"),
        t["kid"]
            .as_str()
            .map_or(String::new(), |k| format!(" kid {k}")),
        t["role"]
            .as_str()
            .map_or(String::new(), |r| format!(" role {r}"))
    );
    for r in v["results"].as_array().into_iter().flatten() {
        let line = if r["valid"] == true {
            format!("valid ({})", r["key"].as_str().unwrap_or_default())
        } else {
            format!("REJECTED: {}", r["reason"].as_str().unwrap_or_default())
        };
        out.push_str(&format!(
            "\n  {:<10} {line}",
            r["service"].as_str().unwrap_or_default()
        ));
    }
    for n in v
        .get("notes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.push_str(&format!("\n  note: {}", n.as_str().unwrap_or_default()));
    }
    out
}

impl SignArgs {
    fn run(self) -> Result<()> {
        let now = clock::now()?;
        let project = Project::load(&self.project.locator(), now)?;
        let (material, kid) = project.signer()?;
        let lifetime = match self.exp {
            Some(d) => d,
            None => SignedDuration::from_secs(
                project
                    .env
                    .get_nonempty("JWT_EXPIRY")
                    .and_then(|v| v.parse().ok())
                    .filter(|n| (1..=crate::project::MAX_EXPIRY).contains(n))
                    .unwrap_or(3600),
            ),
        };
        let role = self.role.as_str();
        let mut claims = Map::new();
        claims.insert("role".into(), json!(role));
        claims.insert("iss".into(), json!("supabase"));
        if let Some(sub) = &self.sub {
            claims.insert("sub".into(), json!(sub));
        }
        if role == "authenticated" {
            claims.insert("aud".into(), json!("authenticated"));
        }
        claims.insert("iat".into(), json!(now.as_second()));
        claims.insert("exp".into(), json!((now + lifetime).as_second()));
        for c in &self.claims {
            let (name, value) = c
                .split_once('=')
                .ok_or_else(|| Error::usage(format!("--claim {c:?}: expected NAME=VALUE")))?;
            let value =
                serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
            claims.insert(name.to_owned(), value);
        }
        let token = jws::sign(&material, kid.as_deref(), &claims)
            .map_err(|e| Error::bad("signing key", e.0))?;
        ui::out(&token);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap().as_secs(), 90);
        assert_eq!(parse_duration("10m").unwrap().as_secs(), 600);
        assert_eq!(parse_duration("2h").unwrap().as_secs(), 7200);
        assert!(parse_duration("5y").is_err());
        assert!(parse_duration("0").is_err());
    }
}
