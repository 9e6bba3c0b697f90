//! A plan made on a chart project's rendering, carried back to the files the chart reads:
//! each changed value written where it lives (the values file or the Secret manifest), and
//! the chart rendered again from the edited files to prove that every container gets what
//! the plan meant it to get. Also the commands that roll the change out.

use std::path::Path;

use super::chart::{self, Block};
use super::{Home, Model, SecretFile};
use crate::change::{FileChange, shell_word as shell};
use crate::compose::{Compose, YamlDoc};
use crate::envfile::EnvFile;
use crate::error::{Error, Result};
use crate::flow::Restarts;
use crate::trust::Sources;

/// The real file changes for a plan's changes to the rendering (`env` the rendered `.env`'s
/// path, `rendered` the rendered compose path).
///
/// # Errors
/// A change the chart cannot express (exit 3, naming the service and variable), or an edit
/// the YAML editor refuses (exit 2).
pub(crate) fn translate(
    model: &Model,
    files: &[FileChange],
    env: &Path,
    rendered: &Path,
) -> Result<Vec<FileChange>> {
    model.refuse_writes()?;
    let before_env = model.env_text()?;
    let before_compose = model.compose_text();
    let mut after_env = before_env.clone();
    let mut after_compose = before_compose.clone();
    for f in files.iter().filter(|f| f.changes()) {
        if f.path == env {
            after_env.clone_from(&f.after);
        } else if f.path == rendered {
            after_compose.clone_from(&f.after);
        } else {
            return Err(Error::precondition(
                f.path.display().to_string(),
                "a chart project has no such file; keyctl only writes the values file and the Secret manifest",
            ));
        }
    }
    let planned = EnvFile::parse(&after_env)
        .map_err(|e| Error::bad(model.loc.values.display().to_string(), e.message))?;
    for entry in planned.lines().iter().filter_map(|l| match &l.kind {
        crate::envfile::LineKind::Entry(e) => Some(e),
        _ => None,
    }) {
        // A variable no rendered service reads (the realtime healthcheck token SPEC §3 adds
        // at the revocation: the chart defines no probes) has no reader here: left out.
        let read = after_compose.contains(&format!("${{{}", entry.key));
        if !chart::VALUES.iter().any(|v| v.var == entry.key) && read {
            return Err(Error::precondition(
                model.loc.values.display().to_string(),
                format!(
                    "this step needs {} in the environment, and the chart has no value that feeds it; on Kubernetes keyctl can only write what the chart reads (docs/KUBERNETES.md)",
                    entry.key
                ),
            ));
        }
    }
    let mut values = model.values.text().to_owned();
    let mut secret = model.secret.as_ref().map(|s| s.doc.text().to_owned());
    let mut apikey_changed = false;
    for v in &chart::VALUES {
        let new = planned.get(v.var).unwrap_or_default().to_owned();
        if model.value(v.var).as_deref() == Some(new.as_str()) {
            continue;
        }
        apikey_changed |= v.block == Block::Apikey;
        if v.block == Block::Apikey && model.apikey_moves() {
            // Written to the Secret below, with the reference: never inline, where Helm's
            // release history would keep the private keys.
            continue;
        }
        match model.home(v.var) {
            Some(Home::Inline(block, key)) => {
                values = set_value(model, &values, &["secret", block.name(), key], &new)?;
            }
            Some(Home::Secret(key)) => {
                secret = Some(set_secret(model, secret.as_deref(), key, &new)?)
            }
            None => {}
        }
    }
    if apikey_changed && model.apikey_moves() {
        let name = model
            .secret
            .as_ref()
            .map(|s| s.name.clone())
            .unwrap_or_default();
        for v in chart::VALUES.iter().filter(|v| v.block == Block::Apikey) {
            let new = planned.get(v.var).unwrap_or_default().to_owned();
            secret = Some(set_secret(model, secret.as_deref(), v.var, &new)?);
            // The inline copy would stay in every release revision: emptied.
            let inline = ["secret", "apikey", v.key];
            if model
                .values
                .scalar(&inline)
                .is_some_and(|(v, _)| !v.is_empty())
            {
                values = set_value(model, &values, &inline, "")?;
            }
            values = set_value(
                model,
                &values,
                &["secret", "apikey", "secretRefKey", v.key],
                v.var,
            )?;
        }
        values = set_value(model, &values, &["secret", "apikey", "secretRef"], &name)?;
    }
    let new_model = Model::from_parts(
        model.loc.clone(),
        YamlDoc::parse(&values)
            .map_err(|e| Error::bad(model.loc.values.display().to_string(), e.message))?,
        match (&model.secret, &secret) {
            (Some(s), Some(text)) => Some(SecretFile::parse(&s.path, text)?),
            _ => None,
        },
    )?;
    same_containers(&new_model, &planned, &after_compose)?;
    let mut out = Vec::new();
    if values != model.values.text() {
        out.push(FileChange {
            path: model.loc.values.clone(),
            before: model.values.text().to_owned(),
            after: values,
            redaction: crate::redact::Redaction::Values,
        });
    }
    if let (Some(s), Some(text)) = (&model.secret, secret)
        && text != s.doc.text()
    {
        out.push(FileChange {
            path: s.path.clone(),
            before: s.doc.text().to_owned(),
            after: text,
            redaction: crate::redact::Redaction::Values,
        });
    }
    Ok(out)
}

fn set_value(model: &Model, text: &str, path: &[&str], value: &str) -> Result<String> {
    let place = |line: Option<usize>| match line {
        Some(l) => format!("{}:{l}", model.loc.values.display()),
        None => model.loc.values.display().to_string(),
    };
    YamlDoc::parse(text)
        .and_then(|d| d.set(path, value))
        .map_err(|e| Error::bad(place(e.line), e.message))
}

fn set_secret(model: &Model, text: Option<&str>, key: &str, value: &str) -> Result<String> {
    let (Some(s), Some(text)) = (&model.secret, text) else {
        return Err(Error::precondition(
            model.loc.values.display().to_string(),
            "the value lives in a Secret keyctl was not given: add --k8s-secret FILE",
        ));
    };
    SecretFile::parse(&s.path, text)?.set(key, value)
}

/// Whether the chart, rendered from the edited files, gives every container what the plan
/// meant it to get: the same variables, the same values.
fn same_containers(model: &Model, planned_env: &EnvFile, planned_compose: &str) -> Result<()> {
    let bad = |m: String| Error::bad(model.rendered_path().display().to_string(), m);
    let planned = Compose::parse(planned_compose).map_err(|e| bad(e.message))?;
    let env_text = model.env_text()?;
    let rendered_env = EnvFile::parse(&env_text).map_err(|e| bad(e.message))?;
    let rendered = Compose::parse(&model.compose_text()).map_err(|e| bad(e.message))?;
    let want = Sources {
        env: planned_env,
        compose: Some(&planned),
        env_files: &[],
        env_alias: &[],
        mounted: &[],
    };
    let get = Sources {
        env: &rendered_env,
        compose: Some(&rendered),
        env_files: &[],
        env_alias: &[],
        mounted: &[],
    };
    let mut names: Vec<&str> = planned.services().iter().map(|s| s.name.as_str()).collect();
    for s in rendered.services() {
        if !names.contains(&s.name.as_str()) {
            names.push(&s.name);
        }
    }
    for service in names {
        let mut keys = want.env_keys(service);
        for k in get.env_keys(service) {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        for key in keys {
            if want.resolved(service, &key) != get.resolved(service, &key) {
                return Err(Error::precondition(
                    format!("{} service {service}", model.loc.values.display()),
                    refusal(service, &key),
                ));
            }
        }
        if planned.healthcheck_test(service) != rendered.healthcheck_test(service) {
            return Err(Error::precondition(
                format!("{} service {service}", model.loc.values.display()),
                "this step changes the healthcheck, which the chart does not render (it defines no probes); nothing was written",
            ));
        }
    }
    Ok(())
}

fn refusal(service: &str, key: &str) -> String {
    if service == "functions" {
        return format!(
            "Edge Functions verify JWTs here (VERIFY_JWT=true), and the chart cannot give them a JWKS ({key}): its main worker checks only the HS256 secret, so every asymmetric token would get 401 from the migration's switch on. Set VERIFY_JWT to false in environment.functions (functions then verify on their own), or run a chart whose functions main worker reads SUPABASE_JWKS; nothing was written (docs/KUBERNETES.md, problem 2)"
        );
    }
    format!(
        "this step needs {key} of {service} to change in a way the chart's templates cannot render from values (docs/KUBERNETES.md); nothing was written"
    )
}

/// The commands that roll a step out on the cluster: the Secret applied and the release
/// upgraded when their files changed, then the Deployments restarted (verifiers first,
/// Auth last) with a `rollout status` for each.
#[must_use]
pub(crate) fn restart_commands(model: &Model, changed: &[&Path], r: &Restarts) -> Vec<String> {
    let ns = model
        .loc
        .namespace
        .clone()
        .or_else(|| model.secret.as_ref().and_then(|s| s.namespace.clone()));
    let n = ns.map_or_else(String::new, |ns| format!(" -n {}", shell(&ns)));
    let release = model.loc.release.clone();
    let rel = release
        .as_deref()
        .map_or_else(|| "\"$RELEASE\"".to_owned(), shell);
    let mut out = Vec::new();
    if let Some(s) = &model.secret
        && changed.contains(&s.path.as_path())
    {
        out.push(format!(
            "kubectl{n} apply -f {}",
            shell(&s.path.display().to_string())
        ));
    }
    if changed.contains(&model.loc.values.as_path()) {
        let chart_ref = model.loc.chart.as_deref().unwrap_or("supabase/supabase");
        let version = model
            .loc
            .chart_version
            .as_deref()
            .map_or_else(|| "\"$CHART_VERSION\"".to_owned(), shell);
        out.push(format!(
            "helm upgrade {rel} {} --version {version}{n} -f {}",
            shell(chart_ref),
            shell(&model.loc.values.display().to_string())
        ));
    }
    let name = |c: &str| {
        let over = |k: &str| model.values.scalar(&["deployment", c, k]).map(|(v, _)| v);
        chart::deployment_name(
            release.as_deref().unwrap_or("$RELEASE"),
            c,
            over("nameOverride").as_deref(),
            over("fullnameOverride").as_deref(),
        )
    };
    let auth_last: Vec<&String> = r.others.iter().filter(|s| *s != "auth").collect();
    let groups: [Vec<&String>; 3] = [
        r.verifiers.iter().collect(),
        auth_last,
        r.others.iter().filter(|s| *s == "auth").collect(),
    ];
    for group in groups.iter().filter(|g| !g.is_empty()) {
        let deployments: Vec<String> = group
            .iter()
            .map(|c| {
                let d = format!("deployment/{}", name(c));
                // `$RELEASE` stays unquoted so the shell expands it.
                if release.is_some() { shell(&d) } else { d }
            })
            .collect();
        out.push(format!(
            "kubectl{n} rollout restart {}",
            deployments.join(" ")
        ));
        for d in deployments {
            out.push(format!("kubectl{n} rollout status {d}"));
        }
    }
    out
}

/// What the operator must know about rolling `files` out: when the step switches the chart's
/// JWKS wiring on or off, `helm upgrade` itself restarts the Deployments whose templates
/// change, together, before the ordered restarts.
#[must_use]
pub(crate) fn rollout_notes(model: &Model, files: &[FileChange]) -> Vec<String> {
    let after = |path: &Path, now: &str| {
        files
            .iter()
            .find(|f| f.path == path)
            .map_or_else(|| now.to_owned(), |f| f.after.clone())
    };
    let values = after(&model.loc.values, model.values.text());
    let secret = model
        .secret
        .as_ref()
        .and_then(|s| SecretFile::parse(&s.path, &after(&s.path, s.doc.text())).ok());
    let Some(then) = YamlDoc::parse(&values)
        .ok()
        .and_then(|v| Model::from_parts(model.loc.clone(), v, secret).ok())
    else {
        return Vec::new();
    };
    let mut notes = Vec::new();
    if model.loc.chart_version.is_none()
        && files
            .iter()
            .any(|f| f.changes() && f.path == model.loc.values)
    {
        notes.push(format!(
            "CHART_VERSION is the version of the chart your release runs (helm list shows it; --chart-version prints it): upgrading to another chart version with the same values can change more than the keys. keyctl's wiring is chart {}'s (the same from 0.5.3 on); charts before 0.5.2 have no secret.apikey and would ignore these values",
            chart::CHART_VERSION
        ));
    }
    if files
        .iter()
        .any(|f| f.changes() && f.path == model.loc.values)
    {
        notes.push("give helm upgrade every other -f file and --set your release uses as well (helm get values shows them): with this file alone, everything else goes back to the chart's defaults".into());
    }
    let flips = ["JWT_KEYS", "JWT_JWKS"]
        .iter()
        .any(|v| model.apikey_on(v) != then.apikey_on(v));
    if flips {
        notes.push("this step switches the chart's JWKS wiring, so `helm upgrade` itself restarts the Deployments whose pod templates change (auth, rest, realtime and storage; kong and functions too when secret.apikey.secretRef is set) at once; that is safe at this step, since every key it adds only verifies, and the restarts below then find them current".into());
    }
    notes
}
