//! Wiring: what each service reads against what `.env` holds, Auth's accepted methods,
//! EdDSA with Edge Functions, realtime's healthcheck, and image versions (SPEC §7).

use crate::apikey;
use crate::compose::Role;
use crate::key::Alg;
use crate::project::ComposeFile;
use crate::verifier::View;

use super::{Finding, Report};

/// Wiring: what each service reads, against `.env`.
pub(super) fn wiring(r: &mut Report<'_>, keys: Option<&Vec<crate::jwk::Jwk>>) {
    let project = r.project;
    let env = &project.env;
    let views = project.views();
    let wired_kids: Vec<String> = env
        .get_nonempty("JWT_JWKS")
        .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
        .and_then(|v| v.get("keys").and_then(|k| k.as_array()).cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|k| k.get("kid").and_then(|k| k.as_str()).map(str::to_owned))
        .collect();
    let past_legacy = keys
        .as_ref()
        .is_some_and(|k| k.iter().any(|k| k.material.alg().is_asymmetric()));
    let Ok(Some(compose_file)) = project.compose_if_present() else {
        return;
    };
    let compose_name = compose_file.path.display().to_string();
    let compose = &compose_file.doc;
    if let Some((line, feature)) = compose.outside_references() {
        r.push(
            Finding::error("compose_include", format!("{compose_name}:{line}")).says(
                format!("the compose file uses {feature}; keyctl does not read the other file"),
                "services defined there are neither checked nor wired by keyctl",
                "merge them into this compose file",
            ),
        );
    }
    for view in &views {
        service_wiring(r, compose_file, view, past_legacy, &wired_kids);
    }
    accepted_methods(r, compose_file, &views, keys);
    eddsa_with_functions(r, compose_file, keys);
    realtime_healthcheck(r, compose_file);
}

/// One service: its configuration problems, an empty Auth key set, and whether it reads the
/// key set `.env` holds (and every kid in it).
fn service_wiring(
    r: &mut Report<'_>,
    compose_file: &ComposeFile,
    view: &View,
    past_legacy: bool,
    wired_kids: &[String],
) {
    let dir = r.dir.clone();
    let env = &r.project.env;
    let compose_name = compose_file.path.display().to_string();
    let compose = &compose_file.doc;
    let (var, wanted) = match view.role {
        Role::Auth => ("GOTRUE_JWT_KEYS", "JWT_KEYS"),
        Role::Rest => ("PGRST_JWT_SECRET", "JWT_JWKS"),
        Role::Realtime => ("API_JWT_JWKS", "JWT_JWKS"),
        Role::Storage => ("JWT_JWKS", "JWT_JWKS"),
        Role::Functions => ("SUPABASE_JWKS", "JWT_JWKS"),
        Role::Kong => return,
    };
    let line = compose.env(&view.service, var);
    let place = |l: Option<usize>| {
        l.map_or_else(|| compose_name.clone(), |l| format!("{compose_name}:{l}"))
    };
    for p in &view.problems {
        r.push(
            Finding::error("service_config", place(line.as_ref().map(|l| l.line)))
                .service(&view.service)
                .variable(var)
                .says(
                    p.clone(),
                    "the service rejects every token",
                    format!("fix {var} of service {}", view.service),
                ),
        );
    }
    if view.role == Role::Auth
        && let Some(l) = &line
        && env.interpolate(&l.value).is_ok_and(|v| v.trim().is_empty())
    {
        r.push(Finding::error("empty_jwt_keys", place(Some(l.line))).service(&view.service).variable(var).says("GOTRUE_JWT_KEYS resolves to an empty string", "Auth does not start", format!("set JWT_KEYS in .env (keyctl migrate {dir}) or use the upstream form ${{JWT_KEYS:-[]}}")));
    }
    if !past_legacy {
        return;
    }
    let reads_wanted = line
        .as_ref()
        .is_some_and(|l| l.value.contains(&format!("${{{wanted}")));
    if !reads_wanted {
        let commented = compose.commented_env(&view.service, var);
        let how = match (&line, &commented) {
            (Some(l), _) => format!("{var} is {} ", l.value),
            (None, Some(c)) => format!("{var} is commented out (line {}) ", c.line),
            (None, None) => format!("{var} is missing "),
        };
        let breaks = if view.role == Role::Auth {
            "Auth keeps signing with JWT_SECRET and does not know the new keys"
        } else {
            "tokens signed with the asymmetric key get 401 from this service"
        };
        r.push(
            Finding::error(
                "not_wired",
                place(line.as_ref().or(commented.as_ref()).map(|l| l.line)),
            )
            .service(&view.service)
            .variable(var)
            .says(
                format!(
                    "{how}while .env holds asymmetric keys: service {} does not read {wanted}",
                    view.service
                ),
                breaks,
                format!(
                    "keyctl migrate {dir} wires it (or set {var}: ${{{wanted}}}), then restart {}",
                    view.service
                ),
            ),
        );
        return;
    }
    if view.role != Role::Auth {
        for kid in wired_kids {
            if !view.keys.iter().any(|k| k.kid.as_deref() == Some(kid)) {
                r.push(
                    Finding::error("kid_missing", place(line.as_ref().map(|l| l.line)))
                        .service(&view.service)
                        .variable(var)
                        .kid_opt(Some(kid))
                        .says(
                            format!("service {} does not get kid {kid}", view.service),
                            "tokens signed with that key get 401 from this service",
                            format!("check {var} of service {}", view.service),
                        ),
                );
            }
        }
    }
}

/// Auth's accepted methods list every algorithm `JWT_KEYS` trusts.
fn accepted_methods(
    r: &mut Report<'_>,
    compose_file: &ComposeFile,
    views: &[View],
    keys: Option<&Vec<crate::jwk::Jwk>>,
) {
    let env = &r.project.env;
    let compose_name = compose_file.path.display().to_string();
    let compose = &compose_file.doc;
    for view in views.iter().filter(|v| v.role == Role::Auth) {
        let read = crate::images::auth_methods_vars(view.version);
        for var in crate::images::AUTH_METHODS_VARS {
            let Some(l) = compose.env(&view.service, var) else {
                continue;
            };
            if !read.contains(&var) {
                let other = read[0];
                r.push(
                    Finding::warning("method_var_ignored", format!("{compose_name}:{}", l.line))
                        .service(&view.service)
                        .variable(var)
                        .says(
                            format!(
                                "{var} is set, but this Auth image reads {other} (the variable was renamed in v2.187.0)"
                            ),
                            "the line has no effect: Auth derives the accepted methods from JWT_KEYS",
                            format!("rename it to {other}, or remove it"),
                        ),
                );
                continue;
            }
            let value = env.interpolate(&l.value).unwrap_or_default();
            if value.trim().is_empty() {
                continue;
            }
            for k in keys.into_iter().flatten() {
                let alg = k.material.alg();
                if !value.split(',').any(|m| m.trim() == alg.as_str()) {
                    r.push(
                        Finding::error("method_not_allowed", format!("{compose_name}:{}", l.line))
                            .service(&view.service)
                            .variable(var)
                            .kid_opt(k.kid.as_deref())
                            .says(
                                format!(
                                    "{var} ({value}) does not list {alg}, which JWT_KEYS trusts"
                                ),
                                "Auth rejects tokens of that algorithm",
                                format!(
                                    "add {alg} to {var}, or remove the line so Auth derives it"
                                ),
                            ),
                    );
                }
            }
        }
    }
}

/// EdDSA signing while the stack has Edge Functions.
fn eddsa_with_functions(
    r: &mut Report<'_>,
    compose_file: &ComposeFile,
    keys: Option<&Vec<crate::jwk::Jwk>>,
) {
    let compose = &compose_file.doc;
    let signer_alg = keys
        .into_iter()
        .flatten()
        .find(|k| k.can_sign())
        .map(|k| k.material.alg());
    let eddsa_in_set = keys
        .into_iter()
        .flatten()
        .any(|k| k.material.alg() == Alg::EdDsa);
    if eddsa_in_set {
        for f in crate::images::check_eddsa(compose) {
            if let crate::images::Finding::TooOld {
                service,
                image,
                need,
                why,
                line,
            } = f
            {
                r.push(
                    Finding::error("image_too_old", compose_file.place(Some(line)))
                        .service(&service)
                        .says(
                            format!("service {service} runs {image}; {need} or newer {why}, and the key sets hold an EdDSA key"),
                            "this service rejects every token signed with the EdDSA key",
                            format!("set the image of {service} to {need} or newer, or rotate to ES256 (keyctl rotate --alg ES256)"),
                        ),
                );
            }
        }
    }
    if signer_alg == Some(Alg::EdDsa) && !compose.with_role(Role::Functions).is_empty() {
        r.push(
            Finding::warning("eddsa_functions", r.env_place("JWT_KEYS"))
                .variable("JWT_KEYS")
                .says(
                    "Auth signs with EdDSA while the stack has Edge Functions",
                    "Edge Functions (and supabase-js getClaims) cannot verify Ed25519 tokens",
                    "rotate to ES256: keyctl migrate --alg ES256",
                ),
        );
    }
}

/// Realtime's healthcheck still sends an `ANON_KEY` that is no longer HS256.
fn realtime_healthcheck(r: &mut Report<'_>, compose_file: &ComposeFile) {
    let env = &r.project.env;
    let compose_name = compose_file.path.display().to_string();
    let compose = &compose_file.doc;
    for s in compose.with_role(Role::Realtime) {
        let test = compose.healthcheck_test(&s.name).unwrap_or_default();
        if test.contains("${ANON_KEY}")
            && env
                .get_nonempty("ANON_KEY")
                .is_some_and(|t| !apikey::is_hs256(t))
        {
            r.push(Finding::error("realtime_healthcheck", compose_name.clone()).service(&s.name).variable("ANON_KEY").says("realtime's healthcheck sends ANON_KEY, which is no longer an HS256 token", "realtime's management endpoint accepts only HS256: the container is reported unhealthy", format!("point the healthcheck at an HS256 token signed with JWT_SECRET (keyctl migrate sets {} when it revokes the legacy key)", crate::migrate::HEALTHCHECK_VAR)));
        }
    }
}

/// Images older than the version that understands asymmetric keys (SPEC §7): an error once
/// the project uses them, a warning before (the migration refuses to start).
pub(super) fn images(r: &mut Report<'_>, keys: Option<&Vec<crate::jwk::Jwk>>) {
    let Ok(Some(compose)) = r.project.compose_if_present() else {
        return;
    };
    let past_legacy = keys.is_some_and(|k| k.iter().any(|k| k.material.alg().is_asymmetric()));
    for f in crate::images::check(&compose.doc) {
        let place = compose.place(Some(f.line()));
        let finding = match f {
            crate::images::Finding::TooOld {
                service,
                image,
                need,
                why,
                ..
            } => {
                let base = if past_legacy {
                    Finding::error("image_too_old", place)
                } else {
                    Finding::warning("image_too_old", place)
                };
                base.service(&service).says(
                    format!("service {service} runs {image}; {need} or newer {why}"),
                    if past_legacy {
                        "this service ignores the asymmetric keys and rejects tokens signed with them"
                    } else {
                        "keyctl migrate refuses to start: after the switch this service would reject every session"
                    },
                    format!(
                        "set the image of {service} to {need} or newer in {}, then: docker compose up -d {service}",
                        compose.path.display()
                    ),
                )
            }
            crate::images::Finding::Unknown { service, image, .. } => {
                Finding::warning("image_tag_unknown", place)
                    .service(&service)
                    .says(
                        format!("cannot tell the version of {image}"),
                        "keyctl cannot check that this service understands asymmetric keys",
                        format!(
                            "pin {service} to a versioned tag (SPEC §7 names the oldest that works)"
                        ),
                    )
            }
        };
        r.push(finding);
    }
}
