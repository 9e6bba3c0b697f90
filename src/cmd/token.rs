//! `keyctl token verify` (as each service would, with the reason for every rejection),
//! `keyctl token sign` (a test token from the current signing key) and `keyctl token remint`
//! (API keys signed again where they live, through the write flow; see `fix::Remint`).

mod stream;

use std::io::Write;

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
use crate::verifier::{self, Known, Signatures, Verdict, View};

use stream::Line;

/// Longest line `token verify -` reads: the longest token keyctl decodes, and room for the
/// blanks around it. A longer line is reported as one rejected input and skipped unread.
const MAX_LINE: usize = jws::MAX_TOKEN_LEN + 1024;

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
    /// One JSON object per token (the shape: `keyctl man`, JSON OUTPUT; docs/JSON.md in the source).
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
        "alg": d.header.get("alg"),
        "kid": d.header.get("kid"),
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
        let judge = Judge {
            views: &views,
            known: &known,
            now,
            role: self.role.as_deref(),
            json: self.json,
        };
        let mut out = ui::output();
        let rejected = if self.token == "-" {
            stream::run(
                &stream::Pipeline::for_this_machine(),
                &mut ui::input(),
                &mut out,
                &|sigs: &mut Signatures, index, line| judge.line(sigs, index, line),
            )
            .map_err(|e| Error::io(std::path::Path::new("stdin"), &e))?
        } else {
            let (value, ok) = judge.one(self.token.trim(), None, &mut Signatures::default());
            let _ = writeln!(out, "{}", judge.render(&value));
            usize::from(!ok)
        };
        let _ = out.flush();
        if rejected > 0 {
            return Err(Error::Problems { count: rejected });
        }
        Ok(())
    }
}

/// What `token verify` checks every token against, shared by the threads of `token verify -`.
struct Judge<'a> {
    views: &'a [View],
    known: &'a [Known],
    now: Timestamp,
    role: Option<&'a str>,
    json: bool,
}

impl Judge<'_> {
    /// The output for line `index` of stdin and whether every service accepted it; `None`
    /// for a blank line, which says nothing.
    fn line(&self, sigs: &mut Signatures, index: usize, line: Line) -> Option<(String, bool)> {
        let (value, ok) = match line {
            Line::Text(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                if text.trim().is_empty() {
                    return None;
                }
                self.one(text.trim(), Some(index), sigs)
            }
            Line::TooLong => {
                let reason = format!(
                    "the line is longer than {MAX_LINE} bytes, so it is no token (skipped unread)"
                );
                (not_a_token(Some(index), &reason), false)
            }
        };
        Some((self.render(&value), ok))
    }

    /// One verdict as its output line(s): JSON, or text.
    fn render(&self, value: &Value) -> String {
        if self.json {
            value.to_string()
        } else {
            render_text(value)
        }
    }

    /// The verdicts on one token: a JSON value and whether every service accepted it.
    fn one(&self, token: &str, index: Option<usize>, sigs: &mut Signatures) -> (Value, bool) {
        let mut v = Map::new();
        if let Some(i) = index {
            v.insert("line".into(), json!(i));
        }
        let decoded = match jws::decode(token) {
            Ok(d) => d,
            Err(e) => return (not_a_token(index, &e.0), false),
        };
        v.insert("token".into(), describe(&decoded));
        let mut notes = Vec::new();
        if let Some(kid) = decoded
            .header
            .get("kid")
            .filter(|k| !k.is_string() && !k.is_null())
        {
            notes.push(format!("the header's kid is {kid}, not a string: each service reads that its own way (see each result)"));
        }
        for h in ["jku", "jwk", "x5u", "x5c"] {
            if decoded.header.contains_key(h) {
                notes.push(format!("the header carries {h}: no Supabase service follows it, and keyctl never fetches it"));
            }
        }
        let mut all = true;
        let mut cache = sigs.token(&decoded);
        let results: Vec<Value> = self
            .views
            .iter()
            .map(|view| {
                let verdict = verifier::verify_cached(view, &decoded, self.now, self.known, self.role, &mut cache);
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

/// What `token verify` says about input that is no token.
fn not_a_token(index: Option<usize>, reason: &str) -> Value {
    let mut v = Map::new();
    if let Some(i) = index {
        v.insert("line".into(), json!(i));
    }
    v.insert("valid".into(), json!(false));
    v.insert(
        "error".into(),
        json!({"code": "malformed", "reason": reason}),
    );
    v.insert("results".into(), json!([]));
    Value::Object(v)
}

/// The text form of one verdict. Every value that comes from the token (alg, kid, role, the
/// reasons that quote them) is escaped before it is placed on its line, so a newline or an
/// escape sequence in a token can neither add a line nor drive the terminal.
fn render_text(v: &Value) -> String {
    let s = |v: &Value| match v {
        Value::String(s) => ui::clean(s),
        Value::Null => String::new(),
        other => ui::clean(&other.to_string()),
    };
    let prefix = v
        .get("line")
        .map_or(String::new(), |l| format!("line {}: ", s(l)));
    if let Some(e) = v.get("error") {
        return format!("{prefix}rejected: not a token: {}", s(&e["reason"]));
    }
    let t = &v["token"];
    let mut out = format!(
        "{prefix}{} token{}{}",
        if t["alg"].is_null() {
            "?".into()
        } else {
            s(&t["alg"])
        },
        if t["kid"].is_null() {
            String::new()
        } else {
            format!(" kid {}", s(&t["kid"]))
        },
        t["role"]
            .as_str()
            .map_or(String::new(), |r| format!(" role {}", ui::clean(r)))
    );
    for r in v["results"].as_array().into_iter().flatten() {
        let line = if r["valid"] == true {
            format!("valid ({})", s(&r["key"]))
        } else {
            format!("REJECTED: {}", s(&r["reason"]))
        };
        out.push_str(&format!("\n  {:<10} {line}", s(&r["service"])));
    }
    for n in v
        .get("notes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.push_str(&format!("\n  note: {}", s(n)));
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
            // --role says which role the token carries; a --claim that says otherwise would
            // silently mint another role (a service_role token from `--role anon`).
            if name == "role" && claims.get("role") != Some(&value) {
                return Err(Error::usage(format!(
                    "--claim role={} contradicts --role {}: say the role once, with --role",
                    value,
                    claims
                        .get("role")
                        .map_or_else(String::new, |r| r.to_string())
                )));
            }
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
