//! The editor: [`Compose::set_env`] and [`Compose::replace_in_healthcheck`], the only two
//! ways keyctl changes a compose file.
//!
//! An edit refuses what it cannot change in place (aliases, `<<` merges, flow collections,
//! block scalars), picks one plan ([`super::plan`]), splices the text and keeps the result
//! only if [`super::verify_edit`]'s comparison finds no other difference and the new text reads back as
//! intended. It never leaves a half-made edit behind (the text is unchanged on every error),
//! never prints, and never touches the filesystem.

use saphyr_parser::ScalarStyle;

use super::document::{Compose, is_env_name};
use super::index::{Kind, NodeId};
use super::plan::{Plan, Splice};
use super::verify::verify_plain;
use super::{Change, ComposeError};

/// One entry to set ([`Compose::set_envs`]).
#[derive(Clone, Copy)]
pub struct EnvEdit<'a> {
    /// The service.
    pub service: &'a str,
    /// The variable.
    pub key: &'a str,
    /// The value written when the entry must change.
    pub wanted: &'a str,
    /// Whether a live or commented-out value is already right.
    pub is_right: &'a dyn Fn(&str) -> bool,
}

impl Compose {
    /// Makes `service`'s environment hold `key`.
    ///
    /// A live entry whose value `is_right` is left alone ([`Change::Unchanged`]); a live
    /// entry that is not has its value replaced by `wanted` in its own quote style when that
    /// style can hold it ([`Change::Replaced`]); else a commented-out entry whose value
    /// `is_right` is uncommented, its text kept ([`Change::Uncommented`]); else
    /// `KEY: wanted` (or `- KEY=wanted`) is appended after the last entry, or an
    /// `environment:` block is added to the service ([`Change::Added`]).
    ///
    /// # Errors
    /// No such service; a service or environment that cannot be edited in place (an alias,
    /// a `<<` merge, a flow collection, a block-scalar value); or an edit that would change
    /// anything else ([`super::verify_edit`]). The text is unchanged on every error.
    pub fn set_env(
        &mut self,
        service: &str,
        key: &str,
        wanted: &str,
        is_right: &dyn Fn(&str) -> bool,
    ) -> Result<Change, ComposeError> {
        let edit = EnvEdit {
            service,
            key,
            wanted,
            is_right,
        };
        self.set_envs(&[edit]).map(|mut c| c.remove(0))
    }

    /// [`Compose::set_env`] for several entries at once, with the same result as making them
    /// one after the other: edits of different services are spliced together, verified
    /// once and parsed once (an edit costs a parse of the whole file, so a step that wires
    /// five services parses it twice instead of ten times). A second edit of a service
    /// already edited starts a new batch. A batch that fails its verification is made again
    /// one edit at a time, so the error names the edit at fault.
    ///
    /// # Errors
    /// As [`Compose::set_env`]; the text is unchanged on every error.
    pub fn set_envs(&mut self, edits: &[EnvEdit<'_>]) -> Result<Vec<Change>, ComposeError> {
        // A copy to put back, made only when a second batch follows a first one (a failed
        // batch leaves the text as it was by itself).
        let mut before: Option<Compose> = None;
        let mut changes = Vec::with_capacity(edits.len());
        let mut batch: Vec<(&EnvEdit<'_>, Plan)> = Vec::new();
        for edit in edits {
            if batch.iter().any(|(e, _)| e.service == edit.service) {
                if before.is_none() {
                    before = Some(self.clone());
                }
                if let Err(e) = self.apply_batch(&mut batch, &mut changes) {
                    *self = before.take().expect("saved above");
                    return Err(e);
                }
            }
            let mut planned = self.plan_edit(edit);
            if planned.is_err() && !batch.is_empty() {
                // The edits before it come first, as they would one at a time (their own
                // error, if any, is the one to report); then this one is planned again.
                if before.is_none() {
                    before = Some(self.clone());
                }
                if let Err(e) = self.apply_batch(&mut batch, &mut changes) {
                    *self = before.take().expect("saved above");
                    return Err(e);
                }
                planned = self.plan_edit(edit);
            }
            match planned {
                Ok(None) => changes.push((
                    edit.service.to_owned(),
                    edit.key.to_owned(),
                    Change::Unchanged,
                )),
                Ok(Some(plan)) => batch.push((edit, plan)),
                Err(e) => {
                    if let Some(before) = before {
                        *self = before;
                    }
                    return Err(e);
                }
            }
        }
        if let Err(e) = self.apply_batch(&mut batch, &mut changes) {
            if let Some(before) = before {
                *self = before;
            }
            return Err(e);
        }
        // In the order asked.
        Ok(edits
            .iter()
            .map(|e| {
                let i = changes
                    .iter()
                    .position(|(s, k, _)| s == e.service && k == e.key)
                    .expect("every edit has its change");
                changes.remove(i).2
            })
            .collect())
    }

    /// Applies the planned `batch` (edits of distinct services) and records each change with
    /// the line its entry is on afterwards; empties the batch.
    fn apply_batch(
        &mut self,
        batch: &mut Vec<(&EnvEdit<'_>, Plan)>,
        changes: &mut Vec<(String, String, Change)>,
    ) -> Result<(), ComposeError> {
        if batch.is_empty() {
            return Ok(());
        }
        let done: Vec<(&EnvEdit<'_>, Plan)> = std::mem::take(batch);
        let splices: Vec<Splice> = done.iter().map(|(_, (s, _, _))| s.clone()).collect();
        let intended: Vec<(String, String)> = done
            .iter()
            .map(|(e, _)| (e.service.to_owned(), e.key.to_owned()))
            .collect();
        let first_line = match &done[0].1.1 {
            Change::Uncommented { line } | Change::Added { line } | Change::Replaced { line } => {
                *line
            }
            Change::Unchanged => 0,
        };
        let together = self.apply(&splices, &intended, &[], first_line, |new| {
            for (e, (_, _, expected)) in &done {
                match new.env(e.service, e.key) {
                    Some(l) if l.value == *expected => {}
                    _ => {
                        return Err(format!(
                            "services.{}.environment.{} would not read back as intended",
                            e.service, e.key
                        ));
                    }
                }
            }
            Ok(())
        });
        if let Err(e) = together {
            if done.len() == 1 {
                let (edit, _) = &done[0];
                return Err(ComposeError {
                    line: e.line,
                    message: format!(
                        "cannot set {} in service `{}`: {}",
                        edit.key, edit.service, e.message
                    ),
                });
            }
            // One at a time, so that the error names its edit; all or nothing.
            let saved = self.clone();
            for (edit, _) in &done {
                let mut one = Vec::new();
                let Some(plan) = self.plan_edit(edit)? else {
                    changes.push((
                        edit.service.to_owned(),
                        edit.key.to_owned(),
                        Change::Unchanged,
                    ));
                    continue;
                };
                one.push((*edit, plan));
                self.apply_batch(&mut one, changes)
                    .inspect_err(|_| *self = saved.clone())?;
            }
            return Ok(());
        }
        for (edit, (_, kind, _)) in &done {
            let line = self.env(edit.service, edit.key).map_or(0, |l| l.line);
            let change = match kind {
                Change::Uncommented { .. } => Change::Uncommented { line },
                Change::Added { .. } => Change::Added { line },
                _ => Change::Replaced { line },
            };
            changes.push((edit.service.to_owned(), edit.key.to_owned(), change));
        }
        Ok(())
    }

    /// The plan for one edit against the current text: `None` when the live entry is already
    /// right; else its splice and the value it must read back as.
    fn plan_edit(&self, edit: &EnvEdit<'_>) -> Result<Option<Plan>, ComposeError> {
        let EnvEdit {
            service,
            key,
            wanted,
            is_right,
        } = *edit;
        if !is_env_name(key) {
            return Err(ComposeError::general(format!(
                "`{key}` is not a variable name keyctl can write"
            )));
        }
        let Some((svc_key, svc)) = self.service_node(service) else {
            return Err(ComposeError::general(format!("no service `{service}`")));
        };
        if let Some(live) = self.env(service, key)
            && is_right(&live.value)
        {
            return Ok(None);
        }
        self.plan_set(service, key, wanted, is_right, (svc_key, svc))
            .map(Some)
    }

    /// The plan [`Compose::set_env`] carries out for `key` in the service `(svc_key, svc)`:
    /// replace the live entry, else uncomment a right commented-out one, else append an
    /// entry, else add an `environment:` block.
    fn plan_set(
        &self,
        service: &str,
        key: &str,
        wanted: &str,
        is_right: &dyn Fn(&str) -> bool,
        (svc_key, svc): (NodeId, NodeId),
    ) -> Result<Plan, ComposeError> {
        let t = &self.tree;
        let svc_line = t.nodes[svc_key].line;
        let refuse = |line: usize, why: &str| {
            ComposeError::at(
                line,
                format!("cannot set {key} in service `{service}`: {why}; edit it by hand"),
            )
        };
        self.editable_service(svc)
            .map_err(|why| refuse(svc_line, why))?;
        let Some((env_key, env)) = t.get(svc, "environment") else {
            if t.get_merged(svc, "environment", 0).is_some() {
                return Err(refuse(svc_line, "its environment comes from a `<<` merge"));
            }
            return self
                .plan_new_environment(svc_key, svc, key, wanted)
                .map_err(|why| refuse(svc_line, &why));
        };
        let env_line = t.nodes[env_key].line;
        self.editable_environment(env)
            .map_err(|why| refuse(env_line, why))?;
        if let Some(live) = self.lookup_env(env, key, 0) {
            self.plan_replace(&live, key, wanted)
                .map_err(|why| refuse(live.line, &why))
        } else if let Some(c) = self
            .commented_entries(service, key)
            .into_iter()
            .rev()
            .find(|c| is_right(&c.value))
        {
            self.plan_uncomment(env, &c)
                .map_err(|why| refuse(c.line, &why))
        } else {
            self.plan_append(svc_key, env_key, env, key, wanted)
                .map_err(|why| refuse(env_line, &why))
        }
    }

    /// Why the service node `svc` cannot be edited in place, if it cannot.
    fn editable_service(&self, svc: NodeId) -> Result<(), &'static str> {
        let node = &self.tree.nodes[svc];
        match node.kind {
            Kind::Map if node.flow => Err("it is a flow mapping"),
            Kind::Map => Ok(()),
            Kind::Alias(_) => Err("the service is an alias (*…)"),
            _ => Err("the service is not a mapping"),
        }
    }

    /// Why the service's own `environment:` value `env` cannot be edited in place, if it
    /// cannot. An empty `environment:` can: it gets its first entry.
    fn editable_environment(&self, env: NodeId) -> Result<(), &'static str> {
        let t = &self.tree;
        let node = &t.nodes[env];
        match &node.kind {
            Kind::Alias(_) => Err("its environment is an alias (*…)"),
            Kind::Map | Kind::Seq if node.flow => {
                Err("its environment is a flow collection ({…} or […])")
            }
            Kind::Map if t.get(env, "<<").is_some() => Err("its environment holds a `<<` merge"),
            Kind::Map | Kind::Seq => Ok(()),
            Kind::Scalar { value, style } if value.is_empty() && *style == ScalarStyle::Plain => {
                Ok(())
            }
            Kind::Scalar { .. } => Err("its environment is neither a mapping nor a list"),
        }
    }

    /// Replaces every `from` with `to` inside `service`'s `healthcheck.test`, a narrow edit
    /// of those scalars' text only.
    ///
    /// # Errors
    /// No such service or healthcheck test, a test reached through an alias or merge, a
    /// `from` that the file spells with escapes, or an edit that would change anything but
    /// that test. The text is unchanged on every error.
    pub fn replace_in_healthcheck(
        &mut self,
        service: &str,
        from: &str,
        to: &str,
    ) -> Result<Change, ComposeError> {
        let refuse = |line: Option<usize>, why: &str| {
            Err(ComposeError {
                line,
                message: format!("cannot edit the healthcheck of `{service}`: {why}"),
            })
        };
        if from.is_empty() {
            return refuse(None, "nothing to replace");
        }
        let Some((svc_key, svc)) = self.service_node(service) else {
            return refuse(None, "no such service");
        };
        let svc_line = self.tree.nodes[svc_key].line;
        let Some(items) = self.healthcheck_items(service) else {
            return refuse(Some(svc_line), "it has no healthcheck test");
        };
        let t = &self.tree;
        let old_values: Vec<String> = items
            .iter()
            .filter_map(|&i| t.scalar(i).map(str::to_owned))
            .collect();
        if !old_values.iter().any(|v| v.contains(from)) {
            return Ok(Change::Unchanged);
        }
        // The test must be written in this service's own text, not reached through an alias.
        let direct = t
            .get(svc, "healthcheck")
            .map(|(_, h)| h)
            .filter(|&h| t.is_map(h))
            .and_then(|h| t.get(h, "test"))
            .map(|(_, test)| test);
        let Some(test) = direct else {
            return refuse(
                Some(svc_line),
                "its test comes from an alias or a `<<` merge",
            );
        };
        let direct_items: Vec<NodeId> = match t.nodes[test].kind {
            Kind::Scalar { .. } => vec![test],
            Kind::Seq => t.nodes[test].children.clone(),
            _ => Vec::new(),
        };
        if direct_items != items {
            return refuse(Some(t.nodes[test].line), "its test holds aliases");
        }
        let mut splices = Vec::new();
        let mut first_line = None;
        for &i in &items {
            let node = &t.nodes[i];
            if !t.scalar(i).is_some_and(|v| v.contains(from)) {
                continue;
            }
            let raw = &self.text[node.start..node.end];
            if !raw.contains(from) {
                return refuse(
                    Some(node.line),
                    "the text to replace is written with escapes",
                );
            }
            first_line.get_or_insert(node.line);
            splices.push(Splice {
                range: node.start..node.end,
                text: raw.replace(from, to),
            });
        }
        let line = first_line.unwrap_or(svc_line);
        let expected: Vec<String> = old_values.iter().map(|v| v.replace(from, to)).collect();
        self.apply(&splices, &[], &[service.to_owned()], line, |new| {
            let got: Option<Vec<String>> = new.healthcheck_items(service).map(|items| {
                items
                    .iter()
                    .filter_map(|&i| new.tree.scalar(i).map(str::to_owned))
                    .collect()
            });
            if got.as_ref() == Some(&expected) {
                Ok(())
            } else {
                Err(format!(
                    "services.{service}.healthcheck.test would not read back as intended"
                ))
            }
        })
        .map_err(|e| ComposeError {
            line: e.line,
            message: format!("cannot edit the healthcheck of `{service}`: {}", e.message),
        })?;
        Ok(Change::Replaced { line })
    }

    /// Applies `splices`, verifies the result and, only if it holds, takes it.
    fn apply(
        &mut self,
        splices: &[Splice],
        intended: &[(String, String)],
        healthcheck_of: &[String],
        line: usize,
        check: impl Fn(&Compose) -> Result<(), String>,
    ) -> Result<(), ComposeError> {
        let mut order: Vec<&Splice> = splices.iter().collect();
        order.sort_by_key(|s| std::cmp::Reverse(s.range.start));
        let mut new = self.text.clone();
        for s in order {
            new.replace_range(s.range.clone(), &s.text);
        }
        let fail = |m: String| ComposeError::at(line, format!("{m}; nothing was changed"));
        let mut parsed = Compose::parse(&new)
            .map_err(|e| fail(format!("the edited text is not valid YAML ({e})")))?;
        verify_plain(&self.plain, &parsed.plain, intended, healthcheck_of).map_err(fail)?;
        parsed.assigned.clone_from(&self.assigned);
        parsed.reindex();
        check(&parsed).map_err(fail)?;
        *self = parsed;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::starts;
    use super::*;

    const SMALL: &str = "services:\n  rest:\n    image: postgrest/postgrest:v12\n    environment:\n      PGRST_JWT_SECRET: \"${JWT_SECRET}\"   # kept\n      OTHER: '${JWT_SECRET}'\n      EMPTY:\n    command: postgrest\n";

    #[test]
    fn replace_keeps_the_quote_style() {
        let mut c = Compose::parse(SMALL).unwrap();
        c.set_env(
            "rest",
            "PGRST_JWT_SECRET",
            "${JWT_JWKS}",
            &starts("${JWT_JWKS"),
        )
        .unwrap();
        c.set_env("rest", "OTHER", "${JWT_JWKS}", &starts("${JWT_JWKS"))
            .unwrap();
        c.set_env("rest", "EMPTY", "${JWT_JWKS}", &starts("${JWT_JWKS"))
            .unwrap();
        assert_eq!(
            c.text(),
            "services:\n  rest:\n    image: postgrest/postgrest:v12\n    environment:\n      PGRST_JWT_SECRET: \"${JWT_JWKS}\"   # kept\n      OTHER: '${JWT_JWKS}'\n      EMPTY: ${JWT_JWKS}\n    command: postgrest\n"
        );
        // Values that need escaping are escaped for the style, or change style.
        let tricky = "it's \"q\" \\ #x";
        c.set_env("rest", "PGRST_JWT_SECRET", tricky, &|v| v == tricky)
            .unwrap();
        c.set_env("rest", "OTHER", tricky, &|v| v == tricky)
            .unwrap();
        assert!(
            c.text()
                .contains("PGRST_JWT_SECRET: \"it's \\\"q\\\" \\\\ #x\"   # kept\n")
        );
        assert!(c.text().contains("OTHER: 'it''s \"q\" \\ #x'\n"));
        assert_eq!(c.env("rest", "OTHER").unwrap().value, tricky);
        let line = "a\nb";
        c.set_env("rest", "OTHER", line, &|v| v == line).unwrap();
        assert!(c.text().contains("OTHER: \"a\\nb\"\n"));
        // A plain value that YAML would read as a number is quoted.
        c.set_env("rest", "EMPTY", "123", &|v| v == "123").unwrap();
        assert!(c.text().contains("EMPTY: '123'\n"));
        c.set_env("rest", "EMPTY", "on", &|v| v == "on").unwrap();
        assert!(c.text().contains("EMPTY: 'on'\n"));

        let list = "services:\n  rest:\n    image: postgrest/postgrest\n    environment:\n      - \"PGRST_JWT_SECRET=${JWT_SECRET}\"\n      - 'B=${X}'\n";
        let mut c = Compose::parse(list).unwrap();
        c.set_env(
            "rest",
            "PGRST_JWT_SECRET",
            "${JWT_JWKS}",
            &starts("${JWT_JWKS"),
        )
        .unwrap();
        c.set_env("rest", "B", "${Y}", &starts("${Y")).unwrap();
        assert_eq!(
            c.text(),
            "services:\n  rest:\n    image: postgrest/postgrest\n    environment:\n      - \"PGRST_JWT_SECRET=${JWT_JWKS}\"\n      - 'B=${Y}'\n"
        );
    }

    #[test]
    fn adds_an_environment_block_and_keeps_a_missing_final_newline() {
        let text = "services:\n  functions:\n    image: supabase/edge-runtime:v1\n    command:\n      - start\n  db:\n    image: supabase/postgres\n    environment:\n      A: b";
        let mut c = Compose::parse(text).unwrap();
        assert_eq!(
            c.set_env(
                "functions",
                "SUPABASE_JWKS",
                "${JWT_JWKS}",
                &starts("${JWT_JWKS")
            )
            .unwrap(),
            Change::Added { line: 7 }
        );
        assert_eq!(
            c.set_env("db", "JWT_JWKS", "${JWT_JWKS}", &starts("${JWT_JWKS"))
                .unwrap(),
            Change::Added { line: 12 }
        );
        assert_eq!(
            c.text(),
            "services:\n  functions:\n    image: supabase/edge-runtime:v1\n    command:\n      - start\n    environment:\n      SUPABASE_JWKS: ${JWT_JWKS}\n  db:\n    image: supabase/postgres\n    environment:\n      A: b\n      JWT_JWKS: ${JWT_JWKS}"
        );
        // An empty `environment:` gets its first entry, CRLF kept.
        let text = "services:\r\n  auth:\r\n    image: supabase/gotrue\r\n    environment:\r\n    restart: always\r\n";
        let mut c = Compose::parse(text).unwrap();
        c.set_env(
            "auth",
            "GOTRUE_JWT_KEYS",
            "${JWT_KEYS}",
            &starts("${JWT_KEYS"),
        )
        .unwrap();
        assert_eq!(
            c.text(),
            "services:\r\n  auth:\r\n    image: supabase/gotrue\r\n    environment:\r\n      GOTRUE_JWT_KEYS: ${JWT_KEYS}\r\n    restart: always\r\n"
        );
    }

    #[test]
    fn refuses_environments_it_cannot_edit_in_place() {
        let cases = [
            (
                "flow map",
                "services:\n  auth:\n    image: supabase/gotrue\n    environment: {A: b}\n",
                "flow collection",
            ),
            (
                "flow list",
                "services:\n  auth:\n    image: supabase/gotrue\n    environment: [A=b]\n",
                "flow collection",
            ),
            (
                "alias",
                "x-env: &common\n  A: b\nservices:\n  auth:\n    image: supabase/gotrue\n    environment: *common\n",
                "is an alias",
            ),
            (
                "merge inside",
                "x-env: &common\n  A: b\nservices:\n  auth:\n    image: supabase/gotrue\n    environment:\n      <<: *common\n      C: d\n",
                "holds a `<<` merge",
            ),
            (
                "merged service",
                "x-svc: &svc\n  environment:\n    A: b\nservices:\n  auth:\n    <<: *svc\n    image: supabase/gotrue\n",
                "comes from a `<<` merge",
            ),
            (
                "shared anchor",
                "services:\n  auth:\n    image: supabase/gotrue\n    environment: &env\n      A: b\n  other:\n    image: x\n    environment: *env\n",
                "services.other.environment.GOTRUE_JWT_KEYS",
            ),
            (
                "block scalar",
                "services:\n  auth:\n    image: supabase/gotrue\n    environment:\n      GOTRUE_JWT_KEYS: |\n        old\n",
                "block scalar",
            ),
        ];
        for (what, text, why) in cases {
            let mut c = Compose::parse(text).unwrap();
            let err = c
                .set_env(
                    "auth",
                    "GOTRUE_JWT_KEYS",
                    "${JWT_KEYS}",
                    &starts("${JWT_KEYS"),
                )
                .unwrap_err();
            assert!(err.line.is_some(), "{what}: {err}");
            assert!(err.message.contains(why), "{what}: {err}");
            assert_eq!(c.text(), text, "{what}");
        }
        // Nothing to change is fine even where editing is not.
        let text = "services:\n  auth:\n    image: supabase/gotrue\n    environment: {GOTRUE_JWT_KEYS: '${JWT_KEYS}'}\n";
        let mut c = Compose::parse(text).unwrap();
        assert_eq!(
            c.set_env(
                "auth",
                "GOTRUE_JWT_KEYS",
                "${JWT_KEYS}",
                &starts("${JWT_KEYS")
            )
            .unwrap(),
            Change::Unchanged
        );
    }

    #[test]
    fn anchors_elsewhere_do_not_stop_an_edit() {
        let text = "x-common: &common\n  restart: unless-stopped\n  environment:\n    SHARED: x\nservices:\n  auth:\n    <<: *common\n    image: supabase/gotrue\n    environment:\n      A: b\n  other:\n    <<: *common\n    image: supabase/studio\n";
        let mut c = Compose::parse(text).unwrap();
        assert_eq!(c.env("other", "SHARED").unwrap().value, "x");
        assert!(c.env("auth", "SHARED").is_none());
        let change = c
            .set_env(
                "auth",
                "GOTRUE_JWT_KEYS",
                "${JWT_KEYS}",
                &starts("${JWT_KEYS"),
            )
            .unwrap();
        assert_eq!(change, Change::Added { line: 11 });
        assert!(
            c.text()
                .contains("      A: b\n      GOTRUE_JWT_KEYS: ${JWT_KEYS}\n  other:")
        );
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        const IMAGES: [&str; 4] = [
            "supabase/gotrue:v2",
            "postgrest/postgrest:v14",
            "supabase/realtime:v2",
            "redis:7",
        ];

        #[derive(Debug, Clone)]
        struct Svc {
            image: usize,
            list: bool,
            entries: Vec<(String, String)>,
            commented: Option<String>,
        }

        fn svc() -> impl Strategy<Value = Svc> {
            (
                0..IMAGES.len(),
                any::<bool>(),
                prop::collection::vec(("[A-E]{1,2}", "[a-z0-9]{0,6}|\\$\\{[A-Z]{1,4}\\}"), 0..4),
                prop::option::of("[A-E]{1,2}"),
            )
                .prop_map(|(image, list, entries, commented)| Svc {
                    image,
                    list,
                    entries,
                    commented,
                })
        }

        fn render(svcs: &[Svc]) -> String {
            let mut t = String::from("services:\n");
            for (i, s) in svcs.iter().enumerate() {
                t.push_str(&format!("  s{i}:\n    image: {}\n", IMAGES[s.image]));
                if s.entries.is_empty() && s.commented.is_none() {
                    continue;
                }
                t.push_str("    environment:\n");
                let mut seen = std::collections::HashSet::new();
                for (k, v) in &s.entries {
                    // A repeated mapping key is invalid YAML (and refused); list form may repeat.
                    if !s.list && !seen.insert(k.clone()) {
                        continue;
                    }
                    let v = if v.is_empty() {
                        "x".to_owned()
                    } else {
                        v.clone()
                    };
                    if s.list {
                        t.push_str(&format!("      - {k}={v}\n"));
                    } else {
                        t.push_str(&format!("      {k}: \"{v}\"\n"));
                    }
                }
                if let Some(c) = &s.commented {
                    if s.list {
                        t.push_str(&format!("      #- {c}=${{C}}\n"));
                    } else {
                        t.push_str(&format!("      #{c}: ${{C}}\n"));
                    }
                }
                if s.entries.is_empty() {
                    t.push_str(if s.list {
                        "      - Z=z\n"
                    } else {
                        "      Z: z\n"
                    });
                }
            }
            t
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1500))]

            /// Any edit changes the one intended entry: every other entry of every service reads
            /// the same afterwards, and at most two lines of text differ.
            #[test]
            fn an_edit_touches_only_its_entry(svcs in prop::collection::vec(svc(), 1..4), target in any::<prop::sample::Index>(), key in "[A-E]{1,2}", wanted in "\\$\\{[A-Z]{1,4}\\}") {
                let text = render(&svcs);
                let mut c = Compose::parse(&text).map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
                let names: Vec<String> = c.services().iter().map(|s| s.name.clone()).collect();
                let service = target.get(&names).clone();
                let keys: Vec<String> = ["A", "B", "C", "D", "E", "AA", "AB", "Z"].iter().map(|k| (*k).to_owned()).collect();
                let before: Vec<(String, String, Option<String>)> = names.iter().flat_map(|n| keys.iter().map(move |k| (n.clone(), k.clone()))).map(|(n, k)| { let v = c.env(&n, &k).map(|e| e.value); (n, k, v) }).collect();
                let w = wanted.clone();
                match c.set_env(&service, &key, &wanted, &move |v: &str| v == w) {
                    Err(_) => prop_assert_eq!(c.text(), text.as_str(), "a refused edit leaves the text"),
                    Ok(_) => {
                        prop_assert_eq!(c.env(&service, &key).map(|e| e.value), Some(wanted.clone()));
                        for (n, k, v) in before {
                            if n == service && k == key { continue; }
                            prop_assert_eq!(c.env(&n, &k).map(|e| e.value), v, "{}.{} changed", n, k);
                        }
                        let old: Vec<&str> = text.lines().collect();
                        let new: Vec<&str> = c.text().lines().collect();
                        let kept = old.iter().filter(|l| new.contains(l)).count();
                        prop_assert!(old.len() - kept <= 1 && new.len() <= old.len() + 2, "too many lines changed:\n{}\n---\n{}", text, c.text());
                    }
                }
            }
        }
    }
}
