//! Which key each service verifies a token with, as its source does it: how it reads the
//! header (`kid` of any JSON type, `typ`, `crit`), where it falls back to its HS256 secret, and
//! what it refuses. docs/VERIFIER.md names the upstream files.

use serde_json::Value;

use super::{Known, SigCache, TrustedKey, Verdict, View, json_kind, label, shown};
use crate::compose::Role;
use crate::jws::Decoded;
use crate::key::{Alg, Material};
use crate::verifykey::VerifyKey;

/// The header's `kid` as the services can meet it.
#[derive(Clone, Copy)]
enum Kid<'a> {
    Absent,
    Null,
    Str(&'a str),
    /// A number, a boolean, an array or an object.
    Other(&'a Value),
}

impl<'a> Kid<'a> {
    fn of(token: &'a Decoded<'_>) -> Kid<'a> {
        match token.header.get("kid") {
            None => Kid::Absent,
            Some(Value::Null) => Kid::Null,
            Some(Value::String(s)) => Kid::Str(s),
            Some(v) => Kid::Other(v),
        }
    }

    fn string(self) -> Option<&'a str> {
        match self {
            Kid::Str(s) => Some(s),
            _ => None,
        }
    }

    /// JavaScript's truthiness of `header.kid` (Storage tests `!header.kid`).
    fn truthy(self) -> bool {
        match self {
            Kid::Absent | Kid::Null => false,
            Kid::Str(s) => !s.is_empty(),
            Kid::Other(Value::Bool(b)) => *b,
            Kid::Other(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
            Kid::Other(_) => true,
        }
    }

    /// The kid as a message names it.
    fn shown(self) -> String {
        match self {
            Kid::Absent => "the token has no kid".into(),
            Kid::Null => "the token's kid is null".into(),
            Kid::Str(s) => format!("the token's kid is {s}"),
            Kid::Other(v) => not_a_string(v),
        }
    }
}

fn not_a_string(v: &Value) -> String {
    format!(
        "the token's kid is {} ({}), not a string",
        json_kind(v),
        shown(v)
    )
}

/// A rejection a service makes from the header alone, before it looks for a key.
pub(super) fn header_verdict(view: &View, token: &Decoded<'_>) -> Option<Verdict> {
    match view.role {
        // jose-jwt reads the header into its JwsHeader: kid, typ and cty must be strings (or
        // null), and a header with an `enc` member is read as a JWE's.
        Role::Rest => {
            if let Kid::Other(v) = Kid::of(token) {
                return Some(Verdict::reject(
                    "unknown_kid",
                    format!(
                        "{}: {} (jose-jwt) cannot read the header",
                        not_a_string(v),
                        view.service
                    ),
                ));
            }
            for name in ["typ", "cty"] {
                if let Some(v) = token.header.get(name)
                    && !matches!(v, Value::String(_) | Value::Null)
                {
                    return Some(Verdict::reject(
                        "bad_header",
                        format!(
                            "the header's {name} is {} ({}), not a string: {} (jose-jwt) cannot read the header",
                            json_kind(v),
                            shown(v),
                            view.service
                        ),
                    ));
                }
            }
            token.header.contains_key("enc").then(|| {
                Verdict::reject(
                    "bad_header",
                    format!(
                        "the header has an enc member: {} (jose-jwt) reads the token as encrypted (JWE) and cannot decode it",
                        view.service
                    ),
                )
            })
        }
        // jose refuses a critical extension it does not implement; the only one it knows is
        // b64, and b64: false would leave the payload undecoded.
        Role::Storage | Role::Functions => {
            let crit = token.header.get("crit")?;
            let understood = match crit {
                Value::Array(items) if !items.is_empty() => {
                    items.iter().all(|i| i.as_str() == Some("b64"))
                        && token.header.get("b64") == Some(&Value::Bool(true))
                }
                _ => false,
            };
            (!understood).then(|| {
                Verdict::reject(
                    "bad_header",
                    format!(
                        "the header has crit {}: {} (jose) rejects a critical extension it does not implement",
                        shown(crit),
                        view.service
                    ),
                )
            })
        }
        _ => None,
    }
}

/// The key of `view`'s service that verifies the token's signature (its label), chosen from
/// the header the way that service chooses it.
pub(super) fn verifying_key(
    view: &View,
    token: &Decoded<'_>,
    alg: Alg,
    known: &[Known],
    cache: &mut SigCache<'_, '_>,
) -> Result<String, Verdict> {
    let kid = Kid::of(token);
    let c = Check { view, alg, known };
    match view.role {
        Role::Auth => c.auth(kid, cache),
        Role::Rest => c.rest(kid, cache),
        Role::Realtime => c.realtime(kid, cache),
        Role::Storage => c.storage(kid, cache),
        Role::Functions => c.functions(kid, cache),
        Role::Kong => Err(Verdict::reject(
            "alg_not_accepted",
            "kong verifies no token",
        )),
    }
}

/// One token at one service (the token itself is the one `cache` checks).
struct Check<'v> {
    view: &'v View,
    alg: Alg,
    known: &'v [Known],
}

impl Check<'_> {
    /// Verifies with the one key the service chose.
    fn with(
        &self,
        label: String,
        key: &VerifyKey,
        cache: &mut SigCache<'_, '_>,
    ) -> Result<String, Verdict> {
        let (view, alg) = (self.view, self.alg);
        if key.alg() != alg {
            return Err(Verdict::reject(
                "alg_mismatch",
                format!(
                    "{} chose {label} for this token, an {} key, but the token says {alg}",
                    view.service,
                    key.alg()
                ),
            ));
        }
        if cache.check(key) {
            return Ok(label);
        }
        Err(Verdict::reject(
            "bad_signature",
            format!(
                "signature does not match {label}, the key {} verifies this token with ({}){}",
                view.service,
                view.source,
                cache.signed_with(self.known, alg)
            ),
        ))
    }

    /// Verifies with the service's HS256 secret; `why` says why that key, when it is a
    /// fallback.
    fn with_secret(&self, why: &str, cache: &mut SigCache<'_, '_>) -> Result<String, Verdict> {
        let Some(secret) = &self.view.secret else {
            return Err(Verdict::reject(
                "bad_signature",
                format!(
                    "{} checks this token against its HS256 secret{why}, and it has none ({}){}",
                    self.view.service,
                    self.view.source,
                    cache.signed_with(self.known, self.alg)
                ),
            ));
        };
        self.with(format!("the shared HS256 secret{why}"), secret, cache)
    }

    /// No key of the service has the token's kid.
    fn unknown_kid(&self, kid: &str, tail: &str) -> Verdict {
        let view = self.view;
        let have: Vec<String> = view.keys.iter().filter_map(|k| k.kid.clone()).collect();
        let mut reason = format!(
            "unknown kid {kid}: {} knows {}",
            view.service,
            if have.is_empty() {
                "no kids (it is not wired to a JWKS)".into()
            } else {
                have.join(", ")
            }
        );
        if let Some(k) = self.known.iter().find(|k| k.kid.as_deref() == Some(kid)) {
            reason.push_str(&format!("; kid {kid} is {}", k.label));
        }
        reason.push_str(tail);
        Verdict::reject("unknown_kid", reason)
    }

    /// The token carries no kid the service can use, and it needs one for this algorithm.
    fn no_usable_kid(&self, kid: Kid<'_>, how: &str, cache: &mut SigCache<'_, '_>) -> Verdict {
        Verdict::reject(
            "unknown_kid",
            format!(
                "{}: {} {how}{}",
                kid.shown(),
                self.view.service,
                cache.signed_with(self.known, self.alg)
            ),
        )
    }

    /// Auth (internal/api/auth.go `parseJWTClaims`, internal/conf/jwk.go `FindPublicKeyByKid`):
    /// a string kid is looked up among GOTRUE_JWT_KEYS (keyed by kid, "" for a JWK without
    /// one) and then compared with GOTRUE_JWT_KEY_ID (the secret); from v2.177.0 an unknown
    /// kid falls through, like a missing or non-string one, to GOTRUE_JWT_SECRET when the
    /// token is HS256.
    fn auth(&self, kid: Kid<'_>, cache: &mut SigCache<'_, '_>) -> Result<String, Verdict> {
        if let Kid::Str(k) = kid {
            // A Go map: a later JWK with the same kid replaced an earlier one.
            if let Some(key) = self
                .view
                .keys
                .iter()
                .rev()
                .find(|j| j.kid.as_deref().unwrap_or("") == k)
            {
                return self.with(label(key), &key.key, cache);
            }
            if k == self.view.key_id {
                return self
                    .with_secret(" (its kid is GOTRUE_JWT_KEY_ID's, empty when unset)", cache);
            }
            if !self.view.at_least([2, 177, 0]) {
                return Err(self.unknown_kid(
                    k,
                    " (auth before v2.177.0 does not fall back to GOTRUE_JWT_SECRET)",
                ));
            }
        }
        if self.alg == Alg::Hs256 {
            let why = match kid {
                Kid::Absent | Kid::Null => "",
                Kid::Str(_) => {
                    " (auth falls back to it for an HS256 token whose kid it does not know)"
                }
                Kid::Other(_) => " (auth ignores a kid that is not a string)",
            };
            return self.with_secret(why, cache);
        }
        Err(match kid {
            Kid::Str(k) => self.unknown_kid(
                k,
                " (auth falls back to GOTRUE_JWT_SECRET only for HS256 tokens)",
            ),
            _ => self.no_usable_kid(
                kid,
                &format!(
                    "verifies a token without a string kid only as HS256, with GOTRUE_JWT_SECRET, and this one is {}",
                    self.alg
                ), cache
            ),
        })
    }

    /// PostgREST (src/PostgREST/Auth/Jwt.hs `parseToken` → jose-jwt `Jose.Jwt.decode`): every
    /// key of its set (a plain secret is one key without a kid) whose kid equals the token's
    /// (any key when the token has none), whose `alg` is absent or the token's, and whose
    /// type fits the algorithm; the token is valid when one of them verifies it.
    fn rest(&self, kid: Kid<'_>, cache: &mut SigCache<'_, '_>) -> Result<String, Verdict> {
        let (view, alg) = (self.view, self.alg);
        let want = kid.string();
        let secret = view
            .secret
            .as_ref()
            .map(|m| (None, None, "the shared HS256 secret".to_owned(), m));
        let pool: Vec<(Option<&str>, Option<&str>, String, &VerifyKey)> = view
            .keys
            .iter()
            .map(|k| (k.kid.as_deref(), k.alg.as_deref(), label(k), &k.key))
            .chain(secret)
            .collect();
        let by_kid: Vec<_> = pool
            .iter()
            .filter(|(k, _, _, _)| want.is_none() || *k == want)
            .collect();
        let fit: Vec<_> = by_kid
            .iter()
            .filter(|(_, a, _, m)| a.is_none_or(|a| a == alg.as_str()) && m.alg() == alg)
            .collect();
        if fit.is_empty() {
            return Err(match (want, by_kid.first()) {
                (Some(_), Some((_, _, l, m))) => Verdict::reject(
                    "alg_mismatch",
                    format!(
                        "{l} is an {} key but the token says {alg}",
                        m.alg()
                    ),
                ),
                (Some(k), None) => self.unknown_kid(
                    k,
                    if view.keys.is_empty() && view.secret.is_some() {
                        " (rest reads a plain secret, which has no kid: it rejects every token that has one)"
                    } else {
                        ""
                    },
                ),
                (None, _) => Verdict::reject(
                    "bad_signature",
                    format!(
                        "{} has no {alg} key ({}){}",
                        view.service,
                        view.source,
                        cache.signed_with(self.known, alg)
                    ),
                ),
            });
        }
        if let Some((_, _, l, _)) = fit.iter().find(|(_, _, _, m)| cache.check(m)) {
            return Ok(l.clone());
        }
        Err(Verdict::reject(
            "bad_signature",
            format!(
                "signature matches no key {} trusts ({}){}",
                view.service,
                view.source,
                cache.signed_with(self.known, alg)
            ),
        ))
    }

    /// Realtime (lib/realtime_web/channels/auth/jwt_verification.ex `generate_signer`): an
    /// asymmetric token is verified only by the JWKS key of its (string) kid and type; an
    /// HS256 token by the oct key of its kid, else by API_JWT_SECRET.
    fn realtime(&self, kid: Kid<'_>, cache: &mut SigCache<'_, '_>) -> Result<String, Verdict> {
        let alg = self.alg;
        match (kid, alg) {
            (Kid::Str(k), Alg::Hs256) => {
                match self.view.keys.iter().find(|j| {
                    j.kid.as_deref() == Some(k) && matches!(j.material, Material::Oct(_))
                }) {
                    Some(j) => self.with(label(j), &j.key, cache),
                    None => self.with_secret(
                        " (realtime checks an HS256 token whose kid it does not know against API_JWT_SECRET)",
                        cache,
                    ),
                }
            }
            (Kid::Other(_), Alg::Hs256) => {
                self.with_secret(" (realtime ignores a kid that is not a string)", cache)
            }
            (_, Alg::Hs256) => self.with_secret("", cache),
            (Kid::Str(k), _) => {
                let mine = |j: &&TrustedKey| j.kid.as_deref() == Some(k);
                match self
                    .view
                    .keys
                    .iter()
                    .filter(mine)
                    .find(|j| j.material.alg() == alg)
                {
                    Some(j) => self.with(label(j), &j.key, cache),
                    None => match self.view.keys.iter().find(mine) {
                        Some(j) => self.with(label(j), &j.key, cache),
                        None => Err(self.unknown_kid(k, "")),
                    },
                }
            }
            _ => Err(self.no_usable_kid(
                kid,
                &format!("verifies an {alg} token only through its (string) kid"),
                cache,
            )),
        }
    }

    /// Storage (src/internal/auth/jwt.ts `findJWKFromHeader`): an HS256 token without a kid
    /// (in JavaScript's sense: no kid, "", 0, null) is checked against its secret; with one,
    /// against the first oct key of the JWKS that has no kid or that kid, else the secret.
    /// An asymmetric token against the first key of its type whose kid equals the token's
    /// (or, without a kid on either, the first kid-less key); none: rejected.
    fn storage(&self, kid: Kid<'_>, cache: &mut SigCache<'_, '_>) -> Result<String, Verdict> {
        let (view, alg) = (self.view, self.alg);
        let truthy = kid.truthy();
        let want = kid.string();
        let kidless = |j: &TrustedKey| j.kid.as_deref().is_none_or(str::is_empty);
        let same = |j: &TrustedKey| want.is_some() && j.kid.as_deref() == want;
        if alg == Alg::Hs256 {
            if !truthy {
                return self.with_secret("", cache);
            }
            if let Some(j) = view
                .keys
                .iter()
                .find(|j| (kidless(j) || same(j)) && matches!(j.material, Material::Oct(_)))
            {
                return self.with(label(j), &j.key, cache);
            }
            return self.with_secret(
                " (storage falls back to it when no oct key matches the kid)",
                cache,
            );
        }
        let chosen = view.keys.iter().find(|j| {
            ((kidless(j) && !truthy) || same(j))
                && j.material.alg() == alg
                && j.alg.as_deref().is_none_or(|a| a == alg.as_str())
        });
        match (chosen, kid) {
            (Some(j), _) => self.with(label(j), &j.key, cache),
            (None, Kid::Str(k)) if truthy => Err(self.unknown_kid(k, "")),
            (None, _) => Err(self.no_usable_kid(
                kid,
                &format!(
                    "verifies an {alg} token without a string kid only with a kid-less {alg} key of its JWKS, and has none"
                ), cache
            )),
        }
    }

    /// Edge Functions (supabase/supabase docker/volumes/functions/main/index.ts with
    /// jsr:@panva/jose@6): HS256 against JWT_SECRET whatever the kid; ES256 and RS256 through
    /// `createLocalJWKSet(SUPABASE_JWKS)`, which needs exactly one key that fits (a string kid
    /// selects it; a kid of another type selects none; without a kid, two keys of the type
    /// are an error the main worker does not retry).
    fn functions(&self, kid: Kid<'_>, cache: &mut SigCache<'_, '_>) -> Result<String, Verdict> {
        let (view, alg) = (self.view, self.alg);
        if alg == Alg::Hs256 {
            let why = if matches!(kid, Kid::Absent) {
                ""
            } else {
                " (the main worker ignores the kid of an HS256 token)"
            };
            return self.with_secret(why, cache);
        }
        let fits = |j: &&TrustedKey| {
            j.material.alg() == alg
                && j.alg.as_deref().is_none_or(|a| a == alg.as_str())
                && j.key_ops
                    .as_ref()
                    .is_none_or(|ops| ops.iter().any(|o| o == "verify"))
                && match kid {
                    Kid::Absent => true,
                    Kid::Str(s) => j.kid.as_deref() == Some(s),
                    Kid::Null | Kid::Other(_) => false,
                }
        };
        let candidates: Vec<&TrustedKey> = view.keys.iter().filter(fits).collect();
        match candidates.as_slice() {
            [one] => self.with(label(one), &one.key, cache),
            [] => Err(match kid {
                Kid::Str(k) => self.unknown_kid(k, ""),
                _ => self.no_usable_kid(
                    kid,
                    &format!("(jose) finds no {alg} key of SUPABASE_JWKS for it"), cache
                ),
            }),
            many => Err(self.no_usable_kid(
                kid,
                &format!(
                    "finds {} {alg} keys in SUPABASE_JWKS that fit, and jose refuses to choose (JWKSMultipleMatchingKeys; the main worker does not try each)",
                    many.len()
                ), cache
            )),
        }
    }
}
