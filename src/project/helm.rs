//! A chart project (`--helm-values`, `--k8s-secret`) loaded as a [`Project`]: the
//! `helm` module's rendering of the values as the `.env` and compose document every rule
//! reads, and the secrets it retired, read back from the backups of the values file and the
//! Secret manifest.

use super::{
    ComposeFile, Facts, Paths, Project, RetiredSecret, confined, load_state, readable_key_files,
};
use crate::compose::{Compose, YamlDoc};
use crate::envfile::EnvFile;
use crate::error::{Error, Result};
use crate::fsio;
use crate::helm::{Model, SecretFile};
use crate::keyset;
use crate::state::State;
use jiff::Timestamp;

impl Project {
    /// A chart project: the values file (and the Secret manifest) shown to every rule as
    /// the chart renders them (`helm` module): a `.env` of the values and the Deployments
    /// as compose services. `.keyctl/` is beside the values file.
    pub(super) fn load_helm(loc: &crate::helm::Locator, now: Timestamp) -> Result<Project> {
        let model = crate::helm::Model::load(loc)?;
        if !loc.diagnose
            && let Some((place, why)) = model.unreadable().into_iter().next()
        {
            return Err(Error::precondition(place, why));
        }
        let env_path = loc.values.clone();
        let env = EnvFile::parse(&model.env_text()?)
            .map_err(|e| Error::bad(env_path.display().to_string(), e.message))?;
        let rendered = model.rendered_path();
        let mut doc = Compose::parse(&model.compose_text())
            .map_err(|e| Error::bad(rendered.display().to_string(), e.message))?;
        doc.assign_roles(&model.roles());
        let paths = Paths::for_env(&env_path);
        let state = load_state(&paths, now);
        let retired = state
            .as_ref()
            .map_or_else(|_| Vec::new(), |s| retired(&paths, s, &model));
        // The file that holds the private keys: the Secret manifest when there is one.
        let keys_file = loc.secret.clone().unwrap_or_else(|| env_path.clone());
        let facts = Facts {
            env_mode: fsio::mode(&keys_file),
            env_in_git: fsio::tracked_by_git(&keys_file),
            readable_key_files: readable_key_files(&paths.project),
            backups: fsio::entry_names(&paths.dir.join("backups")),
            env_modified: fsio::modified(&keys_file),
        };
        Ok(Project {
            compose_path: Some(rendered.clone()),
            compose: Some(Ok(ComposeFile {
                path: rendered,
                doc,
                overrides: Vec::new(),
                env_files: Vec::new(),
                env_alias: Vec::new(),
                mounted: Vec::new(),
            })),
            env_path,
            env,
            paths,
            facts,
            state,
            retired,
            secret: std::sync::OnceLock::new(),
            helm: Some(model),
        })
    }
}

/// The secrets keyctl retired in this chart project, read from the backups of its files
/// (inside `.keyctl/`, through trusted directories): the values file and the Secret
/// manifest as they were before the step, rendered by the chart.
fn retired(paths: &Paths, state: &State, model: &Model) -> Vec<RetiredSecret> {
    let mut out = Vec::new();
    for r in &state.retired_secrets {
        let backup = paths.absolute(&r.backup);
        let Some(dir) = backup.parent() else {
            continue;
        };
        let trusted = confined(&backup, &paths.dir)
            && fsio::private_dir_if_present(&paths.dir, dir).unwrap_or(false);
        if !trusted {
            continue;
        }
        let kept = |path: &std::path::Path, now: &str| -> String {
            path.file_name()
                .and_then(|n| fsio::read_text(&dir.join(n)).ok())
                .unwrap_or_else(|| now.to_owned())
        };
        let values = kept(&model.loc.values, model.values.text());
        let secret = model
            .secret
            .as_ref()
            .map(|s| (s.path.clone(), kept(&s.path, s.doc.text())));
        let Ok(values) = YamlDoc::parse(&values) else {
            continue;
        };
        let secret = match secret {
            Some((path, text)) => match SecretFile::parse(&path, &text) {
                Ok(s) => Some(s),
                Err(_) => continue,
            },
            None => None,
        };
        let then = Model::from_parts(model.loc.clone(), values, secret);
        if let Some(value) = then
            .ok()
            .and_then(|m| m.value("JWT_SECRET"))
            .filter(|v| !v.is_empty())
        {
            out.push(RetiredSecret {
                at: r.at,
                material: keyset::legacy_material(&value),
            });
        }
    }
    out
}
