//! What only a chart project can get wrong (docs/KUBERNETES.md §5), as facts `doctor`
//! reports: Secret keys the chart references but the manifest lacks, key mappings without
//! their reference, realtime without `SEED_SELF_HOST`, private keys inline in the values
//! file, Edge Functions that verify JWTs.

use super::chart::{self, Block};
use super::{Home, Model, at};

/// One chart problem: severity (`true` = error), code, place, what, what breaks, the fix.
pub(crate) struct Problem {
    pub(crate) error: bool,
    pub(crate) code: &'static str,
    pub(crate) place: String,
    pub(crate) message: String,
    pub(crate) breaks: String,
    pub(crate) fix: String,
}

/// Variables besides the chart's wires whose value decides what keyctl plans.
const DECISIVE: [&str; 5] = [
    "GOTRUE_JWT_EXP",
    "SEED_SELF_HOST",
    "VERIFY_JWT",
    "GOTRUE_JWT_VALID_METHODS",
    "GOTRUE_JWT_VALIDMETHODS",
];

impl Model {
    /// Entries of `environment.<component>` (list form) set with `valueFrom` whose value
    /// keyctl cannot see but needs: a variable the chart wires (the entry overrides it) or one
    /// that decides the plan. `(component, variable, line)`.
    #[must_use]
    pub(crate) fn unseen_inputs(&self) -> Vec<(&'static str, String, usize)> {
        let mut out = Vec::new();
        for component in chart::COMPONENTS {
            let path = ["environment", component];
            if !self.values.is_seq(&path) {
                continue;
            }
            for item in self.values.items(&path) {
                let Some(name) = item.get("name") else {
                    continue;
                };
                let wired = chart::WIRES
                    .iter()
                    .any(|w| w.component == component && w.env == name);
                if item.has("valueFrom") && (wired || DECISIVE.contains(&name)) {
                    out.push((component, name.to_owned(), item.line));
                }
            }
        }
        out
    }

    /// `refuse` for a step while [`Model::unseen_inputs`] has any.
    ///
    /// # Errors
    /// The first unseen input (exit 3).
    pub(crate) fn refuse_unseen(&self) -> crate::error::Result<()> {
        match self.unseen_inputs().first() {
            Some((component, name, line)) => Err(crate::error::Error::precondition(
                at(&self.loc.values, Some(*line)),
                format!(
                    "environment.{component} sets {name} with valueFrom: keyctl cannot see that value, and it decides what {component} gets; write it with value (or remove it) so keyctl can check the step"
                ),
            )),
            None => Ok(()),
        }
    }

    /// The chart problems of this project; `past_legacy`: asymmetric keys are in the sets.
    #[must_use]
    pub(crate) fn problems(&self, past_legacy: bool) -> Vec<Problem> {
        let mut out = Vec::new();
        let values = &self.loc.values;
        for gate in self.chart_gates() {
            out.push(Problem {
                error: gate.error,
                code: gate.code,
                place: values.display().to_string(),
                message: gate.message,
                breaks: "keyctl migrate refuses to write until it knows the chart hands the keys to the containers".into(),
                fix: "use a chart from 0.5.3 on (0.7.2 is what keyctl's wiring was read from) and pass --chart-version".into(),
            });
        }
        for (place, why) in self.unreadable() {
            out.push(Problem {
                error: true,
                code: "secret_manifest_missing",
                place,
                message: why,
                breaks: "keyctl cannot see the keys the pods get from that Secret: the checks below run without them, and every step refuses".into(),
                fix: "export the Secret (kubectl get secret NAME -o yaml > FILE) and pass it with --k8s-secret; with External Secrets, export the synced Secret".into(),
            });
        }
        if let Some(secret) = &self.secret {
            for v in &chart::VALUES {
                if let Some(Home::Secret(key)) = self.home(v.var)
                    && secret.get(key).is_none()
                    && !(self.apikey_moves && v.block == Block::Apikey)
                {
                    out.push(Problem {
                        error: true,
                        code: "secret_key_missing",
                        place: secret.path.display().to_string(),
                        message: format!(
                            "the Secret {} has no key {key}, which the chart reads for secret.{}.{} ({})",
                            secret.name,
                            v.block.name(),
                            v.key,
                            v.var
                        ),
                        breaks: "every pod that references it stops at CreateContainerConfigError (the chart's references are not optional)".into(),
                        fix: format!("add {key} to the Secret (kubectl apply), or map secretRefKey.{} to a key it has", v.key),
                    });
                }
            }
        }
        for block in [Block::Jwt, Block::Apikey] {
            let has_ref = self
                .values
                .scalar(&["secret", block.name(), "secretRef"])
                .is_some_and(|(v, _)| !v.is_empty());
            let mapped: Vec<String> = self
                .values
                .entries(&["secret", block.name(), "secretRefKey"])
                .into_iter()
                .filter(|(k, v, _)| v.as_deref().is_some_and(|v| !v.is_empty() && v != k))
                .map(|(k, _, _)| k)
                .collect();
            if !has_ref && !mapped.is_empty() {
                out.push(Problem {
                    error: true,
                    code: "secret_ref_key_unused",
                    place: at(values, self.values.line(&["secret", block.name(), "secretRefKey"])),
                    message: format!(
                        "secret.{}.secretRefKey renames {} but secret.{}.secretRef is not set",
                        block.name(),
                        mapped.join(", "),
                        block.name()
                    ),
                    breaks: "the chart's own Secret keeps the default key names while the pods look for the mapped ones: CreateContainerConfigError".into(),
                    fix: format!("set secret.{}.secretRef to your Secret, or remove secretRefKey", block.name()),
                });
            }
        }
        if self.components().contains(&"realtime")
            && self
                .environment("realtime")
                .iter()
                .rev()
                .find(|(k, _)| k == "SEED_SELF_HOST")
                .is_none_or(|(_, v)| v != "true")
        {
            out.push(Problem {
                error: past_legacy,
                code: "seed_self_host_missing",
                place: at(values, self.values.line(&["environment", "realtime"])),
                message: "environment.realtime has no SEED_SELF_HOST: true (Helm replaces the chart's list with yours, so the default entry is gone)".into(),
                breaks: "realtime reads API_JWT_JWKS only when seeding its tenant: it keeps verifying with the HS256 secret alone and rejects every asymmetric token".into(),
                fix: "add - name: SEED_SELF_HOST / value: \"true\" to environment.realtime".into(),
            });
        }
        if self.home("JWT_KEYS") == Some(&Home::Inline(Block::Apikey, "jwtKeys"))
            && self.value("JWT_KEYS").is_some_and(|v| v.contains("\"d\""))
        {
            out.push(Problem {
                error: false,
                code: "inline_private_keys",
                place: at(values, self.values.line(&["secret", "apikey", "jwtKeys"])),
                message: "the private signing keys are inline in the values file (secret.apikey.jwtKeys)".into(),
                breaks: "helm keeps the values of every release revision in the cluster (Secrets sh.helm.release.v1.*): a revoked key stays readable there".into(),
                fix: "keep them in a Secret of your own: secret.apikey.secretRef, and run keyctl with --k8s-secret".into(),
            });
        }
        for (component, name, line) in self.unseen_inputs() {
            out.push(Problem {
                error: true,
                code: "value_from_unseen",
                place: at(values, Some(line)),
                message: format!("environment.{component} sets {name} with valueFrom, whose value keyctl cannot see"),
                breaks: format!("it overrides what the chart gives {component}: keyctl's checks and steps would reason about a value the container does not get"),
                fix: "set it with value, or remove it and let the chart wire it".into(),
            });
        }
        for component in ["auth", "rest", "realtime", "storage"] {
            let path = ["deployment", component, "envFrom"];
            if self.values.is_seq(&path) && !self.values.items(&path).is_empty() {
                out.push(Problem {
                    error: false,
                    code: "env_from_unseen",
                    place: at(values, self.values.line(&path)),
                    message: format!("deployment.{component}.envFrom loads variables keyctl cannot see"),
                    breaks: format!("a key variable it sets that the chart does not (GOTRUE_JWT_KEYS before the migration, for one) reaches {component} unchecked"),
                    fix: "make sure the referenced Secret or ConfigMap sets none of the JWT variables".into(),
                });
            }
        }
        if self.functions_verify() {
            out.push(Problem {
                error: true,
                code: "functions_without_jwks",
                place: at(values, self.values.line(&["environment", "functions"])),
                message: "Edge Functions verify JWTs (VERIFY_JWT=true), and this chart gives them no JWKS: its main worker checks the HS256 secret only".into(),
                breaks: "from the switch on, every asymmetric session token gets 401 at /functions; keyctl migrate refuses to start".into(),
                fix: "set VERIFY_JWT to false in environment.functions (and verify inside each function), or run a chart whose main worker reads SUPABASE_JWKS".into(),
            });
        }
        out
    }
}
