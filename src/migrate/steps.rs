//! Each step of SPEC §3 on a [`Draft`]: publish a new key (dual-verify), switch signing,
//! revoke the previous key (with consent to re-mint the API keys it signed), the two
//! rollbacks and the rewire. Each returns what it changed and the state it records. Pure.

use jiff::{SignedDuration, Timestamp};

use crate::apikey;
use crate::compose::Role;
use crate::error::{Error, Refusal, Result};
use crate::jwk;
use crate::jws;
use crate::key::Alg;
use crate::keyset::{self, legacy_material};
use crate::lifecycle::{self, Phase, Slot, Snapshot};
use crate::phase::Step;
use crate::project::Project;
use crate::state::{Event, Revoked, State};
use crate::trust::{ApiKey, Home, KeyHome};

use super::draft::{Draft, kid_of, legacy_slot, new_slot};
use super::{HEALTHCHECK_VAR, KONG_VARS, Migration, Outcome, referenced_vars, wait};

fn outcome(draft: Draft<'_>, state: State, step: Step, to: Phase) -> Outcome<'_> {
    Outcome {
        draft,
        state,
        step,
        to,
    }
}

fn kid(slot: &Slot) -> Option<&str> {
    slot.kid.as_deref()
}

/// The wait before revoking a key that signed: `JWT_EXPIRY` + 20 minutes.
fn revoke_grace(draft: &Draft<'_>) -> Result<(i64, SignedDuration)> {
    let expiry = draft.project.jwt_expiry()?;
    Ok((
        expiry,
        SignedDuration::from_secs(expiry) + lifecycle::REVOKE_GRACE,
    ))
}

/// Step 1 (and the start of a rotation): a new key published beside the current signer.
pub(super) fn publish<'p>(
    mut draft: Draft<'p>,
    mut state: State,
    snap: &Snapshot,
    m: &Migration,
    now: Timestamp,
) -> Result<Outcome<'p>> {
    let current = match snap.phase {
        Phase::Legacy => legacy_slot(draft.project)?,
        _ => snap
            .signer
            .clone()
            .expect("a revoked-phase project has a signer"),
    };
    if snap.phase == Phase::Legacy
        && let Some(signer) = &snap.signer
        && !keyset::same_key(&signer.material, &current.material)
    {
        return Err(Error::precondition(
            draft.project.place("JWT_KEYS"),
            "the legacy oct key is not JWT_SECRET; fix that first (keyctl jwks --check)",
        ));
    }
    if m.alg == Alg::Hs256 {
        return Err(Error::usage(
            "--alg HS256 would migrate to another shared secret; choose ES256, RS256 or EdDSA",
        ));
    }
    let new = new_slot(m.alg)?;
    let new_kid = new.kid.clone();
    draft.summary.push(format!(
        "publish a new {} key (kid {}) as standby: every verifier trusts it before it signs",
        m.alg,
        new_kid.as_deref().unwrap_or("?")
    ));
    draft
        .summary
        .push(format!("{} keeps signing", current.label()));
    if m.alg == Alg::EdDsa {
        if let Some(f) = draft.compose().with_role(Role::Functions).first() {
            return Err(Error::precondition(
                draft.compose_file.place(Some(f.line)),
                format!(
                    "service {} is Edge Functions, which cannot verify EdDSA tokens: after the switch every function call with a session would get 401. Choose --alg ES256 (verified everywhere), or say --service-is {}=none if it is not Supabase's edge runtime",
                    f.name, f.name
                ),
            ));
        }
        if !m.allow_old_images
            && let Some(crate::images::Finding::TooOld {
                service,
                image,
                need,
                why,
                line,
            }) = crate::images::check_eddsa(draft.compose())
                .into_iter()
                .next()
        {
            return Err(Refusal::ImageTooOld {
                place: draft.compose_file.place(Some(line)),
                service,
                image,
                need,
                why: format!(
                    "{why} (choose --alg ES256, verified by every version keyctl accepts)"
                ),
            }
            .into());
        }
        draft.warnings.push("EdDSA: supabase-js auth.getClaims() cannot verify Ed25519 tokens; ES256 is verified everywhere".into());
    }
    let signer_kid = current.kid.clone();
    draft.set_keys(&lifecycle::publish(current, new))?;
    draft.wire_verifiers()?;
    draft.allow_alg(m.alg)?;
    state.events.push(Event::new(
        Step::DualVerify,
        now,
        Phase::DualVerify,
        new_kid.as_deref(),
        signer_kid.as_deref(),
    ));
    Ok(outcome(draft, state, Step::DualVerify, Phase::DualVerify))
}

/// Step 2: the new key signs, 20 minutes after it was published.
pub(super) fn switch<'p>(
    mut draft: Draft<'p>,
    mut state: State,
    snap: &Snapshot,
    m: &Migration,
    now: Timestamp,
) -> Result<Outcome<'p>> {
    let (new, previous) = (
        snap.new_key.clone().expect("dual-verify has a new key"),
        snap.previous.clone().expect("and a previous one"),
    );
    let published = state.last(Step::DualVerify, kid(&new)).map(|e| e.at);
    wait(
        published,
        lifecycle::PUBLISH_WAIT,
        now,
        m.force,
        &format!(
            "switching to kid {}: its publication must reach every JWKS cache (20 minutes)",
            kid(&new).unwrap_or("?")
        ),
        &mut draft.warnings,
    )?;
    draft
        .summary
        .push(format!("sign with {} from now on", new.label()));
    draft.summary.push(format!(
        "{} keeps verifying the tokens it issued until they expire",
        previous.label()
    ));
    draft.mint_kong_keys(&new, now)?;
    let new_kid = new.kid.clone();
    draft.set_keys(&lifecycle::switch(previous, new))?;
    state.events.push(Event::new(
        Step::Switched,
        now,
        Phase::Switched,
        new_kid.as_deref(),
        new_kid.as_deref(),
    ));
    Ok(outcome(draft, state, Step::Switched, Phase::Switched))
}

/// Step 3: the previous key leaves both sets once every token it signed has expired.
pub(super) fn revoke<'p>(
    mut draft: Draft<'p>,
    mut state: State,
    snap: &Snapshot,
    m: &Migration,
    now: Timestamp,
) -> Result<Outcome<'p>> {
    let (signer, previous) = (
        snap.signer.clone().expect("switched has a signer"),
        snap.previous.clone().expect("and a previous key"),
    );
    let switched = state.last(Step::Switched, kid(&signer)).map(|e| e.at);
    let (expiry, grace) = revoke_grace(&draft)?;
    wait(
        switched,
        grace,
        now,
        m.force,
        &format!(
            "revoking {}: every token it signed must expire first (JWT_EXPIRY {expiry}s + 20 minutes)",
            previous.label()
        ),
        &mut draft.warnings,
    )?;
    remint_api_keys(&mut draft, &signer, &previous, (m.remint, m.preview), now)?;
    draft.summary.push(format!(
        "revoke {}: it leaves JWT_KEYS and JWT_JWKS",
        previous.label()
    ));
    draft.set_keys(&lifecycle::alone(signer.clone()))?;
    if previous.kid.is_none() {
        retire_secret(&mut draft, &previous, now)?;
        state.revoked.push(Revoked {
            kid: None,
            at: now,
            public_jwk: None,
        });
    } else {
        state.revoked.push(Revoked {
            kid: previous.kid.clone(),
            at: now,
            public_jwk: Some(jwk::public_json(&previous.material, kid(&previous))),
        });
    }
    state.events.push(Event::new(
        Step::Revoked,
        now,
        Phase::Revoked,
        kid(&previous),
        kid(&signer),
    ));
    Ok(outcome(draft, state, Step::Revoked, Phase::Revoked))
}

/// API keys signed by the key being revoked stop working: re-mint them, with consent, where
/// they live (`.env`, `env_file:` files, Kong's declarative file, the compose file). Every
/// key any client holds counts, whatever its variable is called.
fn remint_api_keys(
    draft: &mut Draft<'_>,
    signer: &Slot,
    previous: &Slot,
    (consent, preview): (bool, bool),
    now: Timestamp,
) -> Result<()> {
    let signed_by_previous: Vec<ApiKey> = draft
        .project
        .sources()
        .api_keys()
        .into_iter()
        .filter(|k| issued_by(&k.token, previous))
        .collect();
    if !signed_by_previous.is_empty() && !consent && preview {
        let names: Vec<String> = signed_by_previous
            .iter()
            .flat_map(|k| k.homes.iter().map(KeyHome::describe))
            .collect();
        draft.warnings.push(format!(
            "this step needs consent: {} are signed by {} and are re-minted as shown; run it with --remint-api-keys (or answer yes at the prompt)",
            names.join(", "),
            previous.label()
        ));
    } else if !signed_by_previous.is_empty() && !consent {
        return Err(Refusal::NeedsConsent {
            vars: signed_by_previous
                .iter()
                .flat_map(|k| k.homes.iter().map(KeyHome::describe))
                .collect(),
            key: previous.label(),
            signer: signer.label(),
        }
        .into());
    }
    for key in signed_by_previous {
        let token = apikey::mint(&signer.material, kid(signer), &key.role, now)
            .map_err(|e| Error::bad(key.name(), e.0))?;
        for home in &key.homes {
            draft.replace_key(home, &key.token, &token)?;
        }
        let places: Vec<String> = key.homes.iter().map(KeyHome::describe).collect();
        draft.summary.push(format!(
            "re-mint the {} key ({}) with {} (a client-visible change)",
            key.role,
            places.join(", "),
            signer.label()
        ));
        draft
            .afterwards
            .push(apikey::handout(&key.role, &places[0]));
        draft.consented.push(key.token);
    }
    Ok(())
}

/// Whether `token` was signed by `slot` (kid-less HS256 for the legacy secret).
fn issued_by(token: &str, slot: &Slot) -> bool {
    jws::decode(token)
        .is_ok_and(|d| d.kid() == slot.kid.as_deref() && d.verifies_with(&slot.material))
}

/// Revoking the legacy secret: a fresh value in every variable that held it (so no service
/// resolves the retired secret), and realtime's healthcheck pointed at an HS256 token its
/// management endpoint accepts.
fn retire_secret(draft: &mut Draft<'_>, previous: &Slot, now: Timestamp) -> Result<()> {
    let secret = apikey::fresh_secret();
    let held = draft.project.secret();
    let homes = held.as_ref().map(|s| s.homes.clone()).unwrap_or_default();
    if homes.is_empty() {
        draft.set_env("JWT_SECRET", &secret)?;
    }
    for home in &homes {
        draft.set_home(home, &secret)?;
    }
    let names: Vec<String> = if homes.is_empty() {
        vec![".env JWT_SECRET".into()]
    } else {
        homes.iter().map(Home::describe).collect()
    };
    draft.summary.push(format!(
        "replace the HS256 secret ({}) with a fresh random value, so no service trusts the retired one and no HS256 token held by a client verifies anywhere",
        names.join(", ")
    ));
    let token = apikey::mint(&legacy_material(&secret), None, "anon", now)
        .map_err(|e| Error::bad(HEALTHCHECK_VAR, e.0))?;
    draft.set_env(HEALTHCHECK_VAR, &token)?;
    for s in draft.compose().with_role(Role::Realtime) {
        let test = draft
            .compose()
            .healthcheck_test(&s.name)
            .unwrap_or_default();
        let Some(var) = healthcheck_key_var(draft.project, &test, previous) else {
            continue;
        };
        let Some(form) = rewritable_form(&test, &var) else {
            return Err(Error::precondition(
                draft.compose_file.path.display().to_string(),
                unrewritable_healthcheck(&var),
            ));
        };
        if let Err(e) = draft.compose_mut().replace_in_healthcheck(
            &s.name,
            &form,
            &format!("${{{HEALTHCHECK_VAR}}}"),
        ) {
            return Err(draft.compose_error(&e));
        }
        draft.summary.push(format!("point realtime's healthcheck at {HEALTHCHECK_VAR}, an HS256 token its management endpoint accepts"));
    }
    draft.afterwards.push("storage signed URLs and any HS256 token minted with the old secret stop working; the old secret stays only in keyctl's backup".into());
    Ok(())
}

/// The variable realtime's healthcheck sends that holds an API key signed by `previous`.
pub(super) fn healthcheck_key_var(
    project: &Project,
    test: &str,
    previous: &Slot,
) -> Option<String> {
    referenced_vars(test).into_iter().find(|v| {
        v != HEALTHCHECK_VAR
            && project
                .env
                .get_nonempty(v)
                .is_some_and(|t| issued_by(t, previous))
    })
}

/// The one expression `test` uses for `var` when keyctl can replace it: `${VAR}`, `$VAR`, or
/// `${VAR:-default}` / `${VAR-default}` with a plain default (keyctl sets the variable it
/// points the healthcheck at, so the default never applies).
pub(super) fn rewritable_form(test: &str, var: &str) -> Option<String> {
    let mut forms = vec![format!("${{{var}}}"), format!("${var}")];
    for op in [":-", "-"] {
        let start = format!("${{{var}{op}");
        if let Some(i) = test.find(&start) {
            let rest = &test[i + start.len()..];
            if let Some(end) = rest.find('}') {
                let default = &rest[..end];
                if !default.contains(['$', '{']) {
                    forms.push(format!("{start}{default}}}"));
                }
            }
        }
    }
    forms.into_iter().find(|f| {
        test.contains(f.as_str())
            && test.match_indices(f.as_str()).all(|(i, m)| {
                !test[i + m.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            })
            && referenced_count(test, var) == test.matches(f.as_str()).count()
    })
}

fn referenced_count(test: &str, var: &str) -> usize {
    test.match_indices('$')
        .filter(|(i, _)| {
            let rest = test[i + 1..].trim_start_matches('{');
            rest.starts_with(var)
                && !rest[var.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        })
        .count()
}

/// The refusal for a healthcheck keyctl cannot rewrite.
pub(super) fn unrewritable_healthcheck(var: &str) -> String {
    format!(
        "realtime's healthcheck sends {var} in a form keyctl does not rewrite (a nested default or another expression), and {var} stops being an HS256 token at the last step, while realtime accepts only HS256 there. Make the healthcheck send plain ${{{var}}} (keyctl then points it at {HEALTHCHECK_VAR} when it revokes the legacy secret), then run again"
    )
}

/// Rollback from dual-verify: the standby key leaves (after its tokens expired, if it ever
/// signed before an earlier rollback).
pub(super) fn withdraw_standby<'p>(
    mut draft: Draft<'p>,
    mut state: State,
    snap: &Snapshot,
    m: &Migration,
    now: Timestamp,
) -> Result<Outcome<'p>> {
    let (new, previous) = (
        snap.new_key.clone().expect("new"),
        snap.previous.clone().expect("previous"),
    );
    let back = if previous.kid.is_none() {
        Phase::Legacy
    } else {
        Phase::Revoked
    };
    // If the new key was signing before a rollback from `switched`, tokens it issued may
    // still be alive: withdrawing it must wait like any revocation.
    let signed = state
        .events
        .iter()
        .any(|e| e.step == Step::Switched && e.kid == new.kid);
    if signed {
        let since = state
            .events
            .iter()
            .rev()
            .find(|e| e.step == Step::Rollback && e.kid == new.kid)
            .map(|e| e.at);
        let (expiry, grace) = revoke_grace(&draft)?;
        wait(
            since,
            grace,
            now,
            m.force,
            &format!(
                "withdrawing {}: it signed tokens before the rollback, and they must expire first (JWT_EXPIRY {expiry}s + 20 minutes)",
                new.label()
            ),
            &mut draft.warnings,
        )?;
        state.revoked.push(Revoked {
            kid: new.kid.clone(),
            at: now,
            public_jwk: Some(jwk::public_json(&new.material, kid(&new))),
        });
        draft.summary.push(format!("withdraw {} (it signed before the rollback; its tokens have expired) and keep {} alone", new.label(), previous.label()));
        remint_withdrawn_kong_keys(&mut draft, &new, &previous, now)?;
    } else {
        draft.summary.push(format!(
            "withdraw the standby {} (it never signed) and keep {} alone",
            new.label(),
            previous.label()
        ));
    }
    let signer_kid = previous.kid.clone();
    draft.set_keys(&lifecycle::alone(previous))?;
    draft.afterwards.push("the compose wiring stays in place; JWT_KEYS and JWT_JWKS keep the remaining key, so nothing is written empty".into());
    state.events.push(Event::new(
        Step::Rollback,
        now,
        back,
        kid(&new),
        signer_kid.as_deref(),
    ));
    Ok(outcome(draft, state, Step::Rollback, back))
}

/// Kong's `*_ASYMMETRIC` keys signed by a withdrawn key are re-minted with the remaining one.
fn remint_withdrawn_kong_keys(
    draft: &mut Draft<'_>,
    withdrawn: &Slot,
    remaining: &Slot,
    now: Timestamp,
) -> Result<()> {
    for (var, role) in [
        ("ANON_KEY_ASYMMETRIC", "anon"),
        ("SERVICE_ROLE_KEY_ASYMMETRIC", "service_role"),
    ] {
        let signed_by_withdrawn = draft
            .env()
            .get_nonempty(var)
            .and_then(kid_of)
            .is_some_and(|k| k == withdrawn.kid);
        if !signed_by_withdrawn {
            continue;
        }
        let token = apikey::mint(&remaining.material, kid(remaining), role, now)
            .map_err(|e| Error::bad(var, e.0))?;
        // Only Kong holds these (it swaps the opaque keys for them): no client loses a key.
        if let Some(old) = draft.env().get(var).map(str::to_owned) {
            draft.consented.push(old);
        }
        draft.set_env(var, &token)?;
        draft.summary.push(format!(
            "re-mint {var} with {}, so Kong's opaque keys keep working",
            remaining.label()
        ));
    }
    Ok(())
}

/// Rollback from switched: the previous key signs again; the new one keeps verifying.
pub(super) fn unswitch<'p>(
    mut draft: Draft<'p>,
    mut state: State,
    snap: &Snapshot,
    now: Timestamp,
) -> Result<Outcome<'p>> {
    let (new, previous) = (
        snap.signer.clone().expect("signer"),
        snap.previous.clone().expect("previous"),
    );
    draft.summary.push(format!(
        "sign with {} again; {} keeps verifying the tokens it issued",
        previous.label(),
        new.label()
    ));
    let signer_kid = previous.kid.clone();
    let new_kid = new.kid.clone();
    draft.set_keys(&lifecycle::publish(previous, new))?;
    state.events.push(Event::new(
        Step::Rollback,
        now,
        Phase::DualVerify,
        new_kid.as_deref(),
        signer_kid.as_deref(),
    ));
    Ok(outcome(draft, state, Step::Rollback, Phase::DualVerify))
}

/// Services that resolve another HS256 secret than Auth (the split-secret outage), or a
/// secret keyctl retired, are pointed at the `.env` variable Auth reads its secret from.
fn point_at_auth_secret(draft: &mut Draft<'_>) -> Result<()> {
    let project = draft.project;
    let Some(secret) = project.secret() else {
        return Ok(());
    };
    let Some(var) = secret.homes.iter().find_map(|h| match h {
        Home::Env(v) => Some(v.clone()),
        Home::EnvFile { .. } => None,
    }) else {
        return Ok(());
    };
    let sources = project.sources();
    let mut targets: Vec<(String, String)> = sources
        .splits()
        .into_iter()
        .map(|u| (u.service, u.key.to_owned()))
        .collect();
    for (service, key, _) in sources.holders(&|v| project.retired_at(v).is_some()) {
        if !targets.contains(&(service.clone(), key.clone())) {
            targets.push((service, key));
        }
    }
    let wanted = format!("${{{var}}}");
    for (service, key) in targets {
        let w = wanted.clone();
        if let Err(e) = draft
            .compose_mut()
            .set_env(&service, &key, &wanted, &move |v: &str| v == w)
        {
            return Err(draft.compose_error(&e));
        }
        draft.summary.push(format!(
            "point {key} of service {service} at {wanted}, the secret Auth uses"
        ));
    }
    Ok(())
}

/// Puts the compose wiring back; `None` when there is nothing to put back.
pub(super) fn rewire<'p>(
    mut draft: Draft<'p>,
    mut state: State,
    snap: &Snapshot,
    phase: Phase,
    now: Timestamp,
) -> Result<Option<Outcome<'p>>> {
    point_at_auth_secret(&mut draft)?;
    if phase == Phase::Legacy {
        if draft.compose().text() == draft.compose_file.doc.text() {
            return Ok(None);
        }
        return Ok(Some(outcome(draft, state, Step::Rewire, phase)));
    }
    draft.wire_verifiers()?;
    if matches!(phase, Phase::Switched | Phase::Revoked) {
        let kong: Vec<(Role, &str, &str)> = KONG_VARS
            .iter()
            .filter(|v| draft.env().get_nonempty(v).is_some())
            .map(|v| (Role::Kong, *v, *v))
            .collect();
        draft.wire_all(&kong)?;
    }
    if draft.compose().text() == draft.compose_file.doc.text() {
        return Ok(None);
    }
    draft.summary.push(
        "put back the lines that feed JWT_KEYS and JWT_JWKS to the services (no key changes)"
            .into(),
    );
    // Services that now get the key set for the first time have not seen the standby key:
    // its 20-minute wait starts again from here.
    if phase == Phase::DualVerify
        && let (Some(new), Some(signer)) = (&snap.new_key, &snap.signer)
    {
        state.events.push(Event::new(
            Step::DualVerify,
            now,
            Phase::DualVerify,
            kid(new),
            kid(signer),
        ));
        draft.summary.push("restart the 20-minute wait before the switch: the re-wired services see the new key only from their restart".into());
    }
    Ok(Some(outcome(draft, state, Step::Rewire, phase)))
}
