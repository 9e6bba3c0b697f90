//! Supabase on Kubernetes through the supabase-kubernetes Helm chart: a values file (and, for
//! `secretRef` users, the manifest of the Secret it names) read as a project.
//!
//! keyctl's rules are written once, over a `.env` and compose services. A chart project is
//! shown to them as what the chart renders: [`Model::env_text`] is a `.env` with one variable
//! per value the chart reads (`JWT_SECRET` ← `secret.jwt.secret` or its Secret key, …), and
//! [`Model::compose_text`] the chart's Deployments as compose services, each with the
//! variables the chart's templates give its container under the values' current conditions
//! (`chart.rs`, read from the chart's source: docs/KUBERNETES.md). Every planner, check and
//! verdict then runs unchanged; a plan's `.env` edits are carried back to the values file or
//! the Secret manifest where each value lives (`translate.rs`), and the plan stands only if
//! the chart, rendered again from the edited files, gives every container exactly what the
//! plan meant it to get.

pub(crate) mod chart;
mod checks;
pub(crate) mod secret;
mod translate;

use std::path::{Path, PathBuf};

use crate::compose::YamlDoc;
use crate::error::{Error, Result};
use crate::fsio;

pub(crate) use self::chart::{Block, CHART_VERSION};
pub(crate) use self::secret::SecretFile;
pub(crate) use self::translate::{restart_commands, rollout_notes, translate};

/// A chart project as the user named it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Locator {
    /// The values file (`--helm-values`).
    pub(crate) values: PathBuf,
    /// The Secret manifest (`--k8s-secret`).
    pub(crate) secret: Option<PathBuf>,
    /// The Helm release (`--release`), for Deployment names.
    pub(crate) release: Option<String>,
    /// The namespace (`--namespace`).
    pub(crate) namespace: Option<String>,
    /// The chart reference for `helm upgrade` (`--chart`).
    pub(crate) chart: Option<String>,
    /// The chart version the release runs (`--chart-version`).
    pub(crate) chart_version: Option<String>,
    /// Loaded for `doctor`, which reports a `secretRef` without its Secret as a finding;
    /// every other command refuses such a project (its phase cannot be told).
    pub(crate) diagnose: bool,
}

/// Where one value lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Home {
    /// Inline in the values file at `secret.<block>.<key>`.
    Inline(Block, &'static str),
    /// A key of the Secret manifest.
    Secret(String),
}

/// Why keyctl cannot write a chart project's keys: a `doctor` finding and a refusal.
#[derive(Debug, Clone)]
pub(crate) struct Gate {
    /// The finding code.
    pub(crate) code: &'static str,
    /// An error (else a warning) in `doctor`; every step refuses either way.
    pub(crate) error: bool,
    /// What is wrong and what to do.
    pub(crate) message: String,
}

/// A loaded chart project.
#[derive(Debug, Clone)]
pub(crate) struct Model {
    /// How it was named.
    pub(crate) loc: Locator,
    /// The values document.
    pub(crate) values: YamlDoc,
    /// The Secret manifest, when given.
    pub(crate) secret: Option<SecretFile>,
    /// Each value's home, by keyctl's name.
    homes: Vec<(&'static str, Home)>,
    /// `secret.apikey` is inline today and moves to the Secret (with `secretRef`) the first
    /// time a step writes one of its values.
    apikey_moves: bool,
    /// Blocks whose `secretRef` names a Secret keyctl was not given: their values are unknown.
    unreadable: Vec<(Block, String, String)>,
}

/// The chart's default `secret.jwt` values (Supabase's public demo material,
/// `values.yaml:48-50`), for values files that leave them out.
const DEMO_JWT: [(&str, &str); 3] = [
    ("secret", crate::doctor::DEMO_SECRET),
    (
        "anonKey",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyAgCiAgICAicm9sZSI6ICJhbm9uIiwKICAgICJpc3MiOiAic3VwYWJhc2UtZGVtbyIsCiAgICAiaWF0IjogMTY0MTc2OTIwMCwKICAgICJleHAiOiAxNzk5NTM1NjAwCn0.dc_X5iR_VP_qT0zsiyj_I_OZ2T9FtRU2BBNWN8Bu4GE",
    ),
    (
        "serviceKey",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyAgCiAgICAicm9sZSI6ICJzZXJ2aWNlX3JvbGUiLAogICAgImlzcyI6ICJzdXBhYmFzZS1kZW1vIiwKICAgICJpYXQiOiAxNjQxNzY5MjAwLAogICAgImV4cCI6IDE3OTk1MzU2MDAKfQ.DaYlNEoUrrEn2Ig7tqibS-PHK5vgusbcbo7X36XVt4Q",
    ),
];

fn at(path: &Path, line: Option<usize>) -> String {
    match line {
        Some(l) => format!("{}:{l}", path.display()),
        None => path.display().to_string(),
    }
}

impl Model {
    /// Reads the values file and the Secret manifest named by `loc`.
    ///
    /// # Errors
    /// Unreadable files (exit 4), invalid YAML or manifest (2), a `secretRef` without its
    /// manifest or naming another Secret (3).
    pub(crate) fn load(loc: &Locator) -> Result<Model> {
        let text = fsio::read_text(&loc.values)?;
        let values =
            YamlDoc::parse(&text).map_err(|e| Error::bad(at(&loc.values, e.line), e.message))?;
        let secret = match &loc.secret {
            Some(p) => Some(SecretFile::parse(p, &fsio::read_text(p)?)?),
            None => None,
        };
        Model::from_parts(loc.clone(), values, secret)
    }

    /// A model of `values` and `secret` (as loaded, or as a step plans them).
    ///
    /// # Errors
    /// As [`Model::load`].
    pub(crate) fn from_parts(
        loc: Locator,
        values: YamlDoc,
        secret: Option<SecretFile>,
    ) -> Result<Model> {
        let reference = |block: Block| {
            values
                .scalar(&["secret", block.name(), "secretRef"])
                .filter(|(v, _)| !v.is_empty())
        };
        let mut homes = Vec::new();
        let mut uses_secret = false;
        let mut unreadable = Vec::new();
        for block in [Block::Jwt, Block::Apikey] {
            let Some((name, line)) = reference(block) else {
                continue;
            };
            let place = format!(
                "{} secret.{}.secretRef",
                at(&loc.values, Some(line)),
                block.name()
            );
            // Without the right manifest the block's values are unknown: doctor says so, and
            // every step refuses (`Model::unreadable`).
            match &secret {
                None => unreadable.push((
                    block,
                    place,
                    format!(
                        "names the Secret {name}; keyctl needs its manifest to read and write the keys: add --k8s-secret FILE (kubectl get secret {name} -o yaml > FILE)"
                    ),
                )),
                Some(s) if s.name != name => unreadable.push((
                    block,
                    place,
                    format!(
                        "names the Secret {name}, but {} is the Secret {}",
                        s.path.display(),
                        s.name
                    ),
                )),
                Some(_) => uses_secret = true,
            }
            for v in chart::VALUES.iter().filter(|v| v.block == block) {
                let key = values
                    .scalar(&["secret", block.name(), "secretRefKey", v.key])
                    .map(|(k, _)| k)
                    .filter(|k| !k.is_empty())
                    .unwrap_or_else(|| v.key.to_owned());
                homes.push((v.var, Home::Secret(key)));
            }
        }
        if secret.is_some() && !uses_secret && unreadable.is_empty() {
            return Err(Error::precondition(
                at(&loc.values, None),
                "sets no secret.jwt.secretRef or secret.apikey.secretRef, so the chart never reads the Secret given with --k8s-secret; set secretRef first (or leave out --k8s-secret)",
            ));
        }
        let apikey_moves = secret.is_some() && reference(Block::Apikey).is_none();
        for v in &chart::VALUES {
            if homes.iter().any(|(var, _)| *var == v.var) {
                continue;
            }
            homes.push((v.var, Home::Inline(v.block, v.key)));
        }
        Ok(Model {
            loc,
            values,
            secret,
            homes,
            apikey_moves,
            unreadable,
        })
    }

    /// Where `var` lives.
    #[must_use]
    pub(crate) fn home(&self, var: &str) -> Option<&Home> {
        self.homes.iter().find(|(v, _)| *v == var).map(|(_, h)| h)
    }

    /// The `secretRef`s whose Secret keyctl cannot read: (place, why).
    #[must_use]
    pub(crate) fn unreadable(&self) -> Vec<(String, String)> {
        self.unreadable
            .iter()
            .map(|(_, place, why)| (place.clone(), why.clone()))
            .collect()
    }

    /// Whether `secret.apikey` moves into the Secret at the first write of one of its values.
    #[must_use]
    pub(crate) fn apikey_moves(&self) -> bool {
        self.apikey_moves
    }

    /// The value of `var` as the chart hands it to containers (`None`: a Secret key that is
    /// missing, which stops the pods that reference it).
    #[must_use]
    pub(crate) fn value(&self, var: &str) -> Option<String> {
        let block = chart::VALUES.iter().find(|v| v.var == var)?.block;
        if self.unreadable.iter().any(|(b, _, _)| *b == block) {
            return None;
        }
        match self.home(var)? {
            Home::Secret(key) => self.secret.as_ref()?.get(key).map(|(v, _)| v),
            Home::Inline(block, key) => match self.values.scalar(&["secret", block.name(), key]) {
                Some((v, _)) => Some(v),
                None if *block == Block::Jwt && !self.values.has(&["secret", "jwt", key]) => {
                    DEMO_JWT
                        .iter()
                        .find(|(k, _)| k == key)
                        .map(|(_, v)| (*v).to_owned())
                }
                None => Some(String::new()),
            },
        }
    }

    /// `FILE:LINE path` of `var` for messages.
    #[must_use]
    pub(crate) fn place(&self, var: &str) -> String {
        match self.home(var) {
            Some(Home::Secret(key)) => match &self.secret {
                Some(s) => {
                    let field = if s.doc.has(&["stringData", key]) {
                        "stringData"
                    } else {
                        "data"
                    };
                    let line = s.doc.line(&[field, key]);
                    format!("{} {field}.{key}", at(&s.path, line))
                }
                None => format!("{} {var}", self.loc.values.display()),
            },
            Some(Home::Inline(block, key)) => {
                let path = ["secret", block.name(), key];
                format!(
                    "{} secret.{}.{key}",
                    at(&self.loc.values, self.values.line(&path)),
                    block.name()
                )
            }
            None => format!("{} {var}", self.loc.values.display()),
        }
    }

    /// `text` with keyctl's `.env` names of the values (`.env ANON_KEY`) replaced by where
    /// they live in this project (`values.yaml:49 secret.jwt.anonKey`).
    #[must_use]
    pub(crate) fn speak(&self, text: &str) -> String {
        let mut vars: Vec<&str> = chart::VALUES.iter().map(|v| v.var).collect();
        vars.sort_by_key(|v| std::cmp::Reverse(v.len()));
        let mut out = text.to_owned();
        for var in vars {
            let needle = format!(".env {var}");
            let mut at = 0;
            while let Some(i) = out[at..].find(&needle) {
                let start = at + i;
                let end = start + needle.len();
                let next = out[end..].chars().next();
                if next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                    at = end;
                    continue;
                }
                let place = self.place(var);
                out.replace_range(start..end, &place);
                at = start + place.len();
            }
        }
        // The rendering has no file a user can open: name the values file.
        let rendered = format!("#chart-{CHART_VERSION}");
        while let Some(i) = out.find(&rendered) {
            let tail = out[i + rendered.len()..].strip_prefix(':').map_or(0, |t| {
                1 + t.chars().take_while(char::is_ascii_digit).count()
            });
            let tail = if tail == 1 { 0 } else { tail };
            out.replace_range(i..i + rendered.len() + tail, " (as the chart renders it)");
        }
        // What is left names the file that holds the keys.
        let file = self
            .secret
            .as_ref()
            .map_or(&self.loc.values, |s| &s.path)
            .display()
            .to_string();
        let mut said = String::with_capacity(out.len());
        let mut rest = out.as_str();
        while let Some(i) = rest.find(".env") {
            let before = rest[..i].chars().next_back();
            let after = rest[i + 4..].chars().next();
            let word = before.is_none_or(|c| c == ' ' || c == '(' || c == '\'')
                && after.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'));
            said.push_str(&rest[..i]);
            said.push_str(if word { &file } else { ".env" });
            rest = &rest[i + 4..];
        }
        said.push_str(rest);
        said
    }

    /// Whether the chart's condition on `secret.apikey` holds for `key` (`jwtKeys`,
    /// `jwtJwks`): `secretRef` set, or the inline value non-empty.
    pub(crate) fn apikey_on(&self, var: &str) -> bool {
        let reference = self
            .values
            .scalar(&["secret", "apikey", "secretRef"])
            .is_some_and(|(v, _)| !v.is_empty());
        reference || self.value(var).is_some_and(|v| !v.is_empty())
    }

    /// The effective `environment.<component>` list: the file's, else the chart's defaults
    /// keyctl reads. Entries set through `valueFrom` are left out (their value is not in
    /// the files).
    fn environment(&self, component: &str) -> Vec<(String, String)> {
        let path = ["environment", component];
        let defaults = || -> Vec<(String, String)> {
            chart::default_environment(component)
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        if !self.values.has(&path) {
            return defaults();
        }
        if self.values.is_seq(&path) {
            // A list (chart 0.7.1 and later): Helm replaces the chart's list with it.
            return self
                .values
                .items(&path)
                .into_iter()
                .filter_map(|i| Some((i.get("name")?.to_owned(), i.get("value")?.to_owned())))
                .collect();
        }
        // A map (charts before 0.7.1): Helm merges it into the chart's map, key by key.
        let mut env = defaults();
        for (k, v, _) in self.values.entries(&path) {
            let Some(v) = v else { continue };
            match env.iter_mut().find(|(e, _)| *e == k) {
                Some(slot) => slot.1 = v,
                None => env.push((k, v)),
            }
        }
        env
    }

    fn enabled(&self, component: &str) -> bool {
        match self.values.scalar(&["deployment", component, "enabled"]) {
            Some((v, _)) => v.eq_ignore_ascii_case("true"),
            None => chart::enabled_by_default(component),
        }
    }

    fn image(&self, component: &str) -> Option<String> {
        let repo = self
            .values
            .scalar(&["image", component, "repository"])
            .map(|(v, _)| v);
        let tag = self
            .values
            .scalar(&["image", component, "tag"])
            .map(|(v, _)| v);
        match (repo, tag, chart::default_image(component)) {
            (Some(r), Some(t), _) => Some(format!("{r}:{t}")),
            // Helm merges `image.<c>`: a repository alone keeps the chart's tag.
            (Some(r), None, Some((_, dt))) => Some(format!("{r}:{dt}")),
            (Some(r), None, None) => Some(format!("{r}:")),
            (None, t, Some((r, dt))) => Some(format!("{r}:{}", t.unwrap_or_else(|| dt.to_owned()))),
            (None, _, None) => None,
        }
    }

    /// Whether Edge Functions verify JWTs (`VERIFY_JWT` in `environment.functions`; the
    /// chart's default is `false`).
    #[must_use]
    pub(crate) fn functions_verify(&self) -> bool {
        self.enabled("functions")
            && self
                .environment("functions")
                .iter()
                .rev()
                .find(|(k, _)| k == "VERIFY_JWT")
                .is_some_and(|(_, v)| v.eq_ignore_ascii_case("true"))
    }

    /// The roles the rendering must not take from the images: with `VERIFY_JWT=false` the
    /// functions gateway verifies nothing (the chart's main worker checks only when it is
    /// true), so Edge Functions are shown as a service that only receives keys — restarted
    /// when they change, never judged as a verifier.
    #[must_use]
    pub(crate) fn roles(&self) -> Vec<(String, Option<crate::compose::Role>)> {
        if self.enabled("functions") && !self.functions_verify() {
            vec![("functions".to_owned(), None)]
        } else {
            Vec::new()
        }
    }

    /// The components keyctl shows as services, in restart order.
    #[must_use]
    pub(crate) fn components(&self) -> Vec<&'static str> {
        chart::COMPONENTS
            .iter()
            .copied()
            .filter(|c| self.enabled(c))
            .collect()
    }

    /// The values as a `.env`: one line per value the chart reads.
    ///
    /// # Errors
    /// A value a `.env` cannot hold exactly (exit 2, naming its place).
    pub(crate) fn env_text(&self) -> Result<String> {
        let mut out = String::new();
        for v in &chart::VALUES {
            let Some(value) = self.value(v.var) else {
                continue;
            };
            let quoted = crate::envfile::quote_value(&value)
                .or_else(|m| escaped(v.var, &value).ok_or(m))
                .map_err(|m| Error::bad(self.place(v.var), m))?;
            out.push_str(&format!("{}={quoted}\n", v.var));
        }
        Ok(out)
    }

    /// The chart's Deployments as compose services: image and the environment the
    /// templates render under the current values.
    #[must_use]
    pub(crate) fn compose_text(&self) -> String {
        let mut out = String::from("services:\n");
        for component in self.components() {
            out.push_str(&format!("  {component}:\n"));
            if let Some(image) = self.image(component) {
                out.push_str(&format!("    image: {}\n", json(&image)));
            }
            let mut env: Vec<(String, String)> = Vec::new();
            let mut put = |k: &str, v: String| match env.iter_mut().find(|(e, _)| e == k) {
                Some(slot) => slot.1 = v,
                None => env.push((k.to_owned(), v)),
            };
            for wire in chart::WIRES.iter().filter(|w| w.component == component) {
                let on = match wire.when {
                    chart::When::Always => true,
                    chart::When::KeysSet => self.apikey_on("JWT_KEYS"),
                    chart::When::JwksSet => self.apikey_on("JWT_JWKS"),
                    chart::When::JwksUnset => !self.apikey_on("JWT_JWKS"),
                };
                if on && self.value(wire.var).is_some() {
                    put(wire.env, format!("${{{}}}", wire.var));
                }
            }
            // A list (0.7.1 on) is rendered after the chart's variables, so a user's entry of
            // the same name wins; a map (before) is rendered before them, so the chart's wins.
            let list = self.values.is_seq(&["environment", component]);
            let wired: Vec<&str> = chart::WIRES
                .iter()
                .filter(|w| w.component == component)
                .map(|w| w.env)
                .collect();
            for (k, v) in self.environment(component) {
                if list || !wired.contains(&k.as_str()) {
                    put(&k, v.replace('$', "$$"));
                }
            }
            if !env.is_empty() {
                out.push_str("    environment:\n");
                for (k, v) in env {
                    out.push_str(&format!("      {k}: {}\n", json(&v)));
                }
            }
        }
        out
    }

    /// The path the chart's rendering is shown under (no such file exists).
    #[must_use]
    pub(crate) fn rendered_path(&self) -> PathBuf {
        PathBuf::from(format!(
            "{}#chart-{CHART_VERSION}",
            self.loc.values.display()
        ))
    }

    /// Why keyctl's values would not reach the containers, or why it cannot tell which chart
    /// reads them: `--chart-version` before 0.5.3, chart 0.5.2's key names, values nested
    /// under an umbrella chart's key, the layout of charts before 0.5.0, or — without
    /// `--chart-version` — a file with no `secret.apikey` to show it is for 0.5.2 or later.
    #[must_use]
    pub(crate) fn chart_gates(&self) -> Vec<Gate> {
        let v = &self.values;
        let mut out = Vec::new();
        let too_old = |message: String| Gate {
            code: "chart_too_old",
            error: true,
            message,
        };
        // `0.5.3-rc1` is below 0.5.3; anything that is not a version is refused below.
        let parse = |text: &str| -> Option<([u64; 3], bool)> {
            let t = text.trim().to_ascii_lowercase();
            let t = t.trim_start_matches('v');
            let (core, pre) = match t.split_once(['-', '+']) {
                Some((c, rest)) => (c, t.as_bytes()[c.len()] == b'-' && !rest.is_empty()),
                None => (t, false),
            };
            let mut out = [0u64; 3];
            let mut parts = core.split('.');
            for slot in &mut out {
                *slot = parts.next().unwrap_or("0").parse().ok()?;
            }
            parts.next().is_none().then_some((out, pre))
        };
        if let Some(ver) = self.loc.chart_version.as_deref() {
            match parse(ver) {
                None => out.push(too_old(format!(
                    "--chart-version {ver} is not a chart version keyctl can read (say it as helm list does, e.g. 0.7.2)"
                ))),
                Some((p, pre)) if p < [0, 5, 3] || (p == [0, 5, 3] && pre) => out.push(too_old(format!(
                    "chart {ver} cannot take the keys keyctl writes (secret.apikey arrived in 0.5.2, under other key names; keyctl reads the chart from 0.5.3 on): upgrade the chart (helm upgrade with your values) first, then run keyctl with --chart-version set to the new version"
                ))),
                Some(_) => {}
            }
        }
        if v.has(&["secret", "apikey", "supabasePublishableKey"]) {
            out.push(too_old(
                "secret.apikey.supabasePublishableKey is chart 0.5.2's name (0.5.3 renamed it publishableKey): keyctl reads the chart from 0.5.3 on. Upgrade the chart first, then pass --chart-version".into(),
            ));
        }
        let own_keys = v.has(&["secret", "jwt"]) || v.has(&["secret", "apikey"]);
        let nested = v.entries(&[]).into_iter().map(|(k, _, _)| k).find(|k| {
            v.has(&[k, "secret", "jwt"])
                || v.has(&[k, "secret", "apikey"])
                || v.has(&[k, "image", "auth"])
                || v.has(&[k, "deployment", "auth"])
        });
        if let Some(key) = nested.filter(|_| !own_keys) {
            out.push(Gate {
                code: "values_nested",
                error: true,
                message: format!(
                    "the chart's values are under {key}: (an umbrella chart's subchart values); keyctl reads a values file of the supabase chart itself: put those values in a file of their own (or pass the subchart's values file)"
                ),
            });
        }
        let per_service = ["auth", "rest", "realtime", "storage"]
            .iter()
            .any(|c| v.has(&[c, "image"]) || v.has(&[c, "environment"]));
        let modern = v.has(&["deployment"])
            || v.has(&["secret", "apikey"])
            || v.has(&["image", "auth"])
            || v.has(&["environment"])
            || self
                .loc
                .chart_version
                .as_deref()
                .and_then(parse)
                .is_some_and(|(p, _)| p >= [0, 5, 3]);
        if per_service && !modern {
            out.push(too_old(
                "top-level auth:/rest:/realtime:/storage: blocks are the layout of charts before 0.5.0, which have no secret.apikey and ignore what keyctl writes: upgrade the chart (0.5.3 or newer) and its values first".into(),
            ));
        }
        if out.is_empty() && self.loc.chart_version.is_none() && !v.has(&["secret", "apikey"]) {
            out.push(Gate {
                code: "chart_version_unknown",
                error: false,
                message: "the values file has no secret.apikey, so it does not show which chart it is for, and charts before 0.5.2 ignore what keyctl writes: say which chart your release runs with --chart-version (helm list shows it)".into(),
            });
        }
        out
    }

    /// Refuses a step on a chart project keyctl cannot write safely: a `secretRef` whose
    /// Secret it was not given, a chart it cannot tell takes the keys ([`Model::chart_gates`]),
    /// a key variable set with `valueFrom`. Checked before planning.
    ///
    /// # Errors
    /// The first reason (exit 3).
    pub(crate) fn refuse_writes(&self) -> Result<()> {
        if let Some((place, why)) = self.unreadable().into_iter().next() {
            return Err(Error::precondition(place, why));
        }
        if let Some(gate) = self.chart_gates().into_iter().next() {
            return Err(Error::precondition(
                self.loc.values.display().to_string(),
                gate.message,
            ));
        }
        for v in &chart::VALUES {
            if self
                .value(v.var)
                .is_some_and(|value| value.chars().any(char::is_control))
            {
                return Err(Error::precondition(
                    self.place(v.var),
                    "holds a control character (a trailing newline, most often: a Secret made with echo … | base64 instead of printf '%s' … | base64); the pods get it as part of the value, and keyctl will not build a key from it: write the value without it, roll that out, then run keyctl again",
                ));
            }
        }
        self.refuse_unseen()
    }

    /// The files a step may write: the values file and the Secret manifest.
    #[must_use]
    pub(crate) fn files(&self) -> Vec<PathBuf> {
        let mut files = vec![self.loc.values.clone()];
        files.extend(self.secret.as_ref().map(|s| s.path.clone()));
        files
    }
}

/// `value` as a double-quoted `.env` value with escapes (a Secret value with a newline, as
/// `echo … | base64` makes), when it reads back exactly; the rendering is never written.
fn escaped(var: &str, value: &str) -> Option<String> {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out.push('"');
    let back = crate::envfile::EnvFile::parse(&format!("{var}={out}\n")).ok()?;
    (back.get(var) == Some(value)).then_some(out)
}

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
fn json(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}
