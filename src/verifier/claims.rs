//! The claim checks each service makes once the signature is good, as its source makes them:
//! which JSON types it takes for `exp`, `nbf`, `iat` and `aud` (for Auth, for every claim its
//! Go struct declares), how it turns a value into a time, and how much clock skew it allows.
//! The arithmetic never overflows here, and reproduces the services' own where theirs does.
//! docs/VERIFIER.md names the upstream files.

use jiff::{SignedDuration, Timestamp};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{Number, Value};

use super::{Verdict, View, json_kind, shown};
use crate::compose::Role;
use crate::jws::Decoded;

/// The service's rejection of the token's claims at `now`, if any.
pub(super) fn verdict(view: &View, token: &Decoded<'_>, now: Timestamp) -> Option<Verdict> {
    let now = now.as_second();
    match view.role {
        Role::Auth => go(view, token, now),
        Role::Rest => aeson(view, token, now),
        Role::Realtime => joken(view, token, now),
        Role::Storage | Role::Functions => jose(view, token, now),
        Role::Kong => None,
    }
}

fn bad_claim(view: &View, name: &str, value: &Value, wants: &str) -> Verdict {
    Verdict::reject(
        "bad_claim",
        format!(
            "{name} is {} ({}): {} wants {wants}",
            json_kind(value),
            shown(value),
            view.service
        ),
    )
}

/// A time in seconds as a message shows it.
fn at(secs: i128) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| Timestamp::from_second(s).ok())
        .map_or_else(|| secs.to_string(), |t| t.to_string())
}

fn human(secs: i128) -> String {
    let secs = i64::try_from(secs.max(0)).unwrap_or(i64::MAX);
    crate::lifecycle::human(SignedDuration::from_secs(secs))
}

fn skew(view: &View) -> String {
    match view.leeway() {
        0 => format!("{} allows no clock skew", view.service),
        n => format!("{} allows {n}s of clock skew", view.service),
    }
}

fn expired(view: &View, exp: i128, now: i64, note: &str) -> Verdict {
    Verdict::reject(
        "expired",
        format!(
            "expired at {} ({} ago; {}){note}",
            at(exp),
            human(i128::from(now) - exp),
            skew(view)
        ),
    )
}

fn not_yet(view: &View, nbf: i128, now: i64, note: &str) -> Verdict {
    Verdict::reject(
        "not_yet_valid",
        format!(
            "not valid before {} (in {}; {}){note}",
            at(nbf),
            human(nbf - i128::from(now)),
            skew(view)
        ),
    )
}

/// A float's whole seconds, floored, saturating.
fn floor(f: f64) -> i128 {
    // `as` saturates on overflow and maps NaN to 0 (serde_json has no NaN).
    f.floor() as i128
}

// --- Auth: golang-jwt v5 `ParseWithClaims` into `AccessTokenClaims` (encoding/json) ---------

/// 2⁶³, the first float past int64's range (exact in binary).
const TWO_63: f64 = 9_223_372_036_854_775_808.0;

/// Go's seconds from year 1 to 1970 (`unixToInternal` in package time).
const UNIX_TO_INTERNAL: i64 = 62_135_596_800;

/// The claims of Auth's `AccessTokenClaims` (internal/tokens/service.go; `jwt.RegisteredClaims`
/// embedded) and the JSON types encoding/json lets into them.
#[derive(Clone, Copy)]
enum GoField {
    /// `*jwt.NumericDate`: a number, a string holding a JSON number, or null.
    Date(&'static str),
    /// `string`: a string or null.
    Str,
    /// `jwt.ClaimStrings`: a string, an array of strings, or null.
    Aud,
    /// `map[string]interface{}`: an object or null.
    Map,
    /// `bool`: a boolean or null.
    Bool,
    /// `AMRClaim` (from v2.186.0; `[]models.AMREntry` before).
    Amr,
}

impl GoField {
    fn wants(self) -> &'static str {
        match self {
            GoField::Date(_) => "a number (or a string holding one)",
            GoField::Str => "a string",
            GoField::Aud => "a string or an array of strings",
            GoField::Map => "an object",
            GoField::Bool => "a boolean",
            GoField::Amr => "an array of methods",
        }
    }
}

/// encoding/json matches an object key to a field case-insensitively: Go 1.21's fold
/// (`unicode.ToUpper(unicode.ToLower(r))`), of which only these non-ASCII letters reach ASCII.
fn go_fold(key: &str) -> String {
    key.chars()
        .map(|c| match c {
            'a'..='z' => c.to_ascii_uppercase(),
            '\u{17F}' => 'S',
            '\u{212A}' => 'K',
            '\u{130}' | '\u{131}' => 'I',
            c => c,
        })
        .collect()
}

fn go_field(folded: &str, view: &View) -> Option<GoField> {
    Some(match folded {
        "EXP" => GoField::Date("exp"),
        "NBF" => GoField::Date("nbf"),
        "IAT" => GoField::Date("iat"),
        "ISS" | "SUB" | "JTI" | "EMAIL" | "PHONE" | "ROLE" | "AAL" | "SESSION_ID" => GoField::Str,
        "CLIENT_ID" if view.at_least([2, 180, 0]) => GoField::Str,
        "SCOPE" if view.at_least([2, 183, 0]) => GoField::Str,
        "AUD" => GoField::Aud,
        "APP_METADATA" | "USER_METADATA" => GoField::Map,
        "IS_ANONYMOUS" => GoField::Bool,
        "AMR" => GoField::Amr,
        _ => return None,
    })
}

/// The JSON number grammar (encoding/json's `isValidNumber`).
fn is_json_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > start
    };
    if b.first() == Some(&b'-') {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
    }
    i == b.len()
}

/// `NumericDate.UnmarshalJSON`: into a `json.Number` (which takes a string holding a JSON
/// number too), then `Float64`, which refuses a value out of float64's range.
fn go_date(v: &Value) -> Result<Option<f64>, ()> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n.as_f64().map(Some).ok_or(()),
        Value::String(s) if is_json_number(s) => s
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Some)
            .ok_or(()),
        _ => Err(()),
    }
}

/// The time golang-jwt makes of a float (`time.Unix(int64(whole), int64(frac*1e9))
/// .Truncate(time.Second)`), as Go's internal seconds since year 1, which wrap in int64.
fn go_internal(f: f64) -> i64 {
    let whole = f.trunc();
    let nsec = ((f - whole) * 1e9) as i64;
    // Go on amd64 turns a float out of int64's range into the minimum int64 (arm64 saturates;
    // both end up long past once the offset below wraps).
    let mut sec = if (-TWO_63..TWO_63).contains(&whole) {
        whole as i64
    } else {
        i64::MIN
    };
    if nsec < 0 {
        sec = sec.wrapping_sub(1);
    }
    sec.wrapping_add(UNIX_TO_INTERNAL)
}

/// A payload's members in document order, duplicates kept (encoding/json assigns each in
/// turn, so the last one of a field wins).
struct Members(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    out.push(entry);
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V)
    }
}

fn members(token: &Decoded<'_>) -> Vec<(String, Value)> {
    token
        .signing_input
        .split_once('.')
        .and_then(|(_, p)| crate::b64::decode(p))
        .and_then(|bytes| serde_json::from_slice::<Members>(&bytes).ok())
        .map_or_else(
            || {
                token
                    .claims
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            },
            |m| m.0,
        )
}

/// `AMRClaim.UnmarshalJSON` (v2.186.0): null, or an array of strings and `AMREntry` objects;
/// before v2.186.0 `[]models.AMREntry`, where a string is a type error.
fn amr_ok(v: &Value, view: &View) -> bool {
    let strings = view.at_least([2, 186, 0]);
    match v {
        Value::Null => true,
        Value::Array(items) => items.iter().all(|item| match item {
            Value::Null => true,
            Value::String(_) => strings,
            Value::Object(o) => o.iter().all(|(k, v)| match go_fold(k).as_str() {
                "METHOD" | "PROVIDER" => matches!(v, Value::String(_) | Value::Null),
                "TIMESTAMP" => v.is_null() || v.is_i64(),
                _ => true,
            }),
            _ => false,
        }),
        _ => false,
    }
}

fn go_type_ok(field: GoField, v: &Value, view: &View) -> bool {
    match field {
        GoField::Date(_) => go_date(v).is_ok(),
        GoField::Str => matches!(v, Value::String(_) | Value::Null),
        GoField::Aud => match v {
            Value::String(_) | Value::Null => true,
            Value::Array(items) => items.iter().all(Value::is_string),
            _ => false,
        },
        GoField::Map => matches!(v, Value::Object(_) | Value::Null),
        GoField::Bool => matches!(v, Value::Bool(_) | Value::Null),
        GoField::Amr => amr_ok(v, view),
    }
}

/// Auth: a claim its struct declares, of a type encoding/json cannot put there, fails the
/// whole parse; `exp` must be after now and `nbf` not after now, with no leeway (the parser
/// has no `WithLeeway`, and `iat` is not checked: no `WithIssuedAt`).
fn go(view: &View, token: &Decoded<'_>, now: i64) -> Option<Verdict> {
    let mut exp = None;
    let mut nbf = None;
    for (key, value) in members(token) {
        let Some(field) = go_field(&go_fold(&key), view) else {
            continue;
        };
        if !go_type_ok(field, &value, view) {
            return Some(bad_claim(view, &key, &value, field.wants()));
        }
        match field {
            GoField::Date("exp") => exp = go_date(&value).ok().flatten(),
            GoField::Date("nbf") => nbf = go_date(&value).ok().flatten(),
            _ => {}
        }
    }
    let now_internal = now.wrapping_add(UNIX_TO_INTERNAL);
    let wrapped = |f: f64| i128::from(go_internal(f)) != floor(f) + i128::from(UNIX_TO_INTERNAL);
    let note = |f: f64| {
        if wrapped(f) {
            format!("; {f} is beyond what Go's time holds, and auth reads it as long past")
        } else {
            String::new()
        }
    };
    if let Some(f) = exp
        && now_internal >= go_internal(f)
    {
        return Some(expired(view, floor(f), now, &note(f)));
    }
    if let Some(f) = nbf
        && now_internal < go_internal(f)
    {
        return Some(not_yet(view, floor(f), now, ""));
    }
    None
}

// --- PostgREST: aeson `.:?` and `Scientific.toBoundedInteger` (src/PostgREST/Auth/Jwt.hs) ----

/// The `Int64` PostgREST makes of a number: the number when it is whole and fits, else 0.
fn bounded(n: &Number) -> (i64, bool) {
    if let Some(i) = n.as_i64() {
        return (i, true);
    }
    match n.as_f64() {
        Some(f) if n.is_f64() && f.fract() == 0.0 && (-TWO_63..TWO_63).contains(&f) => {
            (f as i64, true)
        }
        _ => (0, false),
    }
}

/// PostgREST: `exp`, `nbf` and `iat` must be numbers (v14: null is absent; v13: null is a
/// type error), read as whole seconds, with 30 s of skew (v13 adds it in wrapping `Int64`);
/// `iat` may not be in the future; `aud` is a string or an array of strings and, when
/// `PGRST_JWT_AUD` is set, must name it (an empty array names every audience).
fn aeson(view: &View, token: &Decoded<'_>, now: i64) -> Option<Verdict> {
    let v13 = !view.at_least([14, 0, 0]);
    let leeway = view.leeway();
    for name in ["exp", "nbf", "iat"] {
        let Some(value) = token.claims.get(name) else {
            continue;
        };
        let n = match value {
            Value::Null if !v13 => continue,
            Value::Number(n) => n,
            _ => return Some(bad_claim(view, name, value, "a number")),
        };
        let (secs, whole) = bounded(n);
        let mut note = String::new();
        if !whole {
            note = format!(
                "; {} reads {} as 0: it keeps only whole numbers that fit in 64 bits",
                view.service,
                shown(value)
            );
        }
        let (rejected, wraps) = match (name, v13) {
            ("exp", false) => (now - leeway > secs, false),
            ("exp", true) => (
                now > secs.wrapping_add(leeway),
                secs.checked_add(leeway).is_none(),
            ),
            (_, false) => (now + leeway < secs, false),
            (_, true) => (
                now < secs.wrapping_sub(leeway),
                secs.checked_sub(leeway).is_none(),
            ),
        };
        if wraps {
            note.push_str(&format!(
                "; {} before v14 applies its skew in 64-bit arithmetic, which wraps for {secs}",
                view.service
            ));
        }
        if !rejected {
            continue;
        }
        let secs = i128::from(secs);
        return Some(match name {
            "exp" => expired(view, secs, now, &note),
            "nbf" => not_yet(view, secs, now, &note),
            _ => Verdict::reject(
                "not_yet_valid",
                format!(
                    "issued in the future ({}): check the clocks ({}){note}",
                    at(secs),
                    skew(view)
                ),
            ),
        });
    }
    let names = |aud: &str| view.audience.as_deref().is_none_or(|want| want == aud);
    match token.claims.get("aud") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if names(s) => None,
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => (!items.is_empty()
            && !items.iter().filter_map(Value::as_str).any(names))
        .then(|| wrong_audience(view, token)),
        Some(Value::String(_)) => Some(wrong_audience(view, token)),
        Some(other) => Some(bad_claim(
            view,
            "aud",
            other,
            "a string or an array of strings",
        )),
    }
}

fn wrong_audience(view: &View, token: &Decoded<'_>) -> Verdict {
    Verdict::reject(
        "wrong_audience",
        format!(
            "aud is {}, and {} wants {} (PGRST_JWT_AUD)",
            token.claims.get("aud").map_or_else(String::new, shown),
            view.service,
            view.audience.as_deref().unwrap_or_default()
        ),
    )
}

// --- Storage and Edge Functions: jose `validateClaimsSet` (src/lib/jwt_claims_set.ts) -------

/// jose without `clockTolerance`: `iat`, `nbf` and `exp`, when present (null included), must
/// be numbers; `nbf` may not be after now, and `exp` must be after now; `aud` is not read.
fn jose(view: &View, token: &Decoded<'_>, now: i64) -> Option<Verdict> {
    let number = |name: &str| -> Result<Option<f64>, Verdict> {
        match token.claims.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(v) => Err(bad_claim(view, name, v, "a number")),
        }
    };
    let now_f = now as f64;
    let checks = || -> Result<(), Verdict> {
        number("iat")?;
        if let Some(nbf) = number("nbf")?
            && nbf > now_f
        {
            return Err(not_yet(view, floor(nbf), now, ""));
        }
        if let Some(exp) = number("exp")?
            && exp <= now_f
        {
            return Err(expired(view, floor(exp), now, ""));
        }
        Ok(())
    };
    checks().err()
}

// --- Realtime: Joken with `exp` and `iat` validators (jwt_verification.ex) ------------------

/// Realtime checks only `exp` (after now) and, from v2.103.1, that `exp` and `iat` are
/// numbers. Before v2.103.1 `exp > now` compares Erlang terms, where a string, null, a
/// boolean, an array or an object is greater than any number: such an `exp` passes.
fn joken(view: &View, token: &Decoded<'_>, now: i64) -> Option<Verdict> {
    let typed = view.at_least([2, 103, 1]);
    if let Some(v) = token.claims.get("exp") {
        match v {
            Value::Number(n) => {
                let later = match (n.as_i64(), n.as_u64()) {
                    (Some(i), _) => i > now,
                    (None, Some(_)) => true,
                    (None, None) => n.as_f64().is_some_and(|f| f > now as f64),
                };
                if !later {
                    let secs = n
                        .as_i64()
                        .map_or_else(|| floor(n.as_f64().unwrap_or(0.0)), i128::from);
                    return Some(expired(view, secs, now, ""));
                }
            }
            _ if typed => return Some(bad_claim(view, "exp", v, "a number")),
            _ => {}
        }
    }
    if typed
        && let Some(v) = token.claims.get("iat")
        && !v.is_number()
    {
        return Some(bad_claim(view, "iat", v, "a number"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_numbers_as_go_reads_them() {
        for ok in ["0", "-1", "1.5", "1e9", "1E+9", "-0.0e-1", "1796130000"] {
            assert!(is_json_number(ok), "{ok}");
        }
        for bad in [
            "", "-", "01", "+1", "1.", ".5", "1e", " 1", "1 ", "0x10", "NaN", "abc",
        ] {
            assert!(!is_json_number(bad), "{bad}");
        }
        assert_eq!(
            go_date(&Value::String("1796130000".into())),
            Ok(Some(1_796_130_000.0))
        );
        assert_eq!(go_date(&Value::String("1e400".into())), Err(()));
        assert_eq!(go_date(&Value::Bool(true)), Err(()));
        assert_eq!(go_date(&Value::Null), Ok(None));
    }

    #[test]
    fn go_time_truncates_and_wraps_like_go() {
        // Values checked against Go 1.19 (`time.Unix(int64(r), int64(f*1e9)).Truncate(time.Second).Unix()`).
        let unix = |f: f64| go_internal(f).wrapping_sub(UNIX_TO_INTERNAL);
        assert_eq!(unix(1_796_130_000.9), 1_796_130_000);
        assert_eq!(unix(-1.5), -2);
        assert_eq!(unix(9.2e18), 9_200_000_000_000_000_000);
        assert_eq!(unix(9_223_372_036_854_775_807.0), i64::MIN);
        assert_eq!(unix(1e19), i64::MIN);
        assert_eq!(unix(-9_223_372_036_854_775_808.0), i64::MIN);
        assert!(go_internal(9_223_372_036_854_775_807.0) < 0);
    }

    #[test]
    fn go_folds_keys_like_encoding_json() {
        assert_eq!(go_fold("eXp"), "EXP");
        assert_eq!(go_fold("\u{17F}ub"), "SUB");
        assert_eq!(go_fold("\u{212A}id"), "KID");
        assert_eq!(go_fold("r\u{f4}le"), "R\u{f4}LE");
    }

    #[test]
    fn postgrest_keeps_whole_numbers_only() {
        let n = |t: &str| serde_json::from_str::<Number>(t).unwrap();
        assert_eq!(bounded(&n("1796130000")), (1_796_130_000, true));
        assert_eq!(bounded(&n("1796130000.0")), (1_796_130_000, true));
        assert_eq!(bounded(&n("1796130000.5")), (0, false));
        assert_eq!(bounded(&n("9223372036854775807")), (i64::MAX, true));
        assert_eq!(bounded(&n("9223372036854775808")), (0, false));
        assert_eq!(bounded(&n("-9223372036854775808")), (i64::MIN, true));
    }
}
