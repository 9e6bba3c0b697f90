//! The semantic post-edit check: [`verify_edit`] reads the text before and after an edit
//! with a plain YAML loader and requires them to mean the same, except at the one place
//! the edit was meant to change.
//!
//! It is the editor's safety net, independent of the position index the edit was planned
//! with: it sees what docker compose would see (aliases expanded, `<<` merges applied,
//! comments and formatting invisible). It only compares: it never edits, never touches the
//! filesystem, and its messages name paths, never a value.

use std::collections::BTreeMap;

use saphyr::{Scalar, Yaml, YamlLoader};
use saphyr_parser::{Parser, ScanError};

/// A YAML value as a plain reader sees it, aliases expanded and `<<` merges applied.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Plain {
    Null,
    Bool(bool),
    Int(i64),
    Float(String),
    Str(String),
    Seq(Vec<Plain>),
    Map(BTreeMap<String, Plain>),
    Tagged(String, Box<Plain>),
    Bad,
}

pub(super) fn load_plain(text: &str) -> Result<Vec<Plain>, String> {
    let mut loader: YamlLoader<'_, Yaml<'_>> = YamlLoader::default();
    loader.allow_duplicate_keys(true);
    let mut parser = Parser::new_from_str(text);
    let describe = |e: &ScanError| format!("line {}: {}", e.marker().line(), e.info());
    parser.load(&mut loader, true).map_err(|e| describe(&e))?;
    if let Some(e) = loader.error() {
        return Err(describe(e));
    }
    Ok(plain_of(&loader.into_documents()))
}

/// The plain reading of loaded YAML documents (kept by [`super::Compose`] from its own
/// parse, so an edit never loads the old text again).
pub(super) fn plain_of(docs: &[Yaml<'_>]) -> Vec<Plain> {
    docs.iter().map(to_plain).collect()
}

fn to_plain(y: &Yaml<'_>) -> Plain {
    match y {
        Yaml::Value(s) => scalar_plain(s),
        Yaml::Representation(s, _, _) => Plain::Str(s.to_string()),
        Yaml::Sequence(items) => Plain::Seq(items.iter().map(to_plain).collect()),
        Yaml::Mapping(m) => {
            let mut out = BTreeMap::new();
            let mut merged: BTreeMap<String, Plain> = BTreeMap::new();
            for (k, v) in m {
                if matches!(k, Yaml::Value(Scalar::String(s)) if s == "<<") {
                    let sources: Vec<&Yaml<'_>> = match v {
                        Yaml::Sequence(items) => items.iter().collect(),
                        other => vec![other],
                    };
                    for source in sources {
                        if let Plain::Map(entries) = to_plain(source) {
                            for (mk, mv) in entries {
                                merged.entry(mk).or_insert(mv);
                            }
                        }
                    }
                } else {
                    out.insert(key_text(k), to_plain(v));
                }
            }
            for (k, v) in merged {
                out.entry(k).or_insert(v);
            }
            Plain::Map(out)
        }
        Yaml::Tagged(tag, inner) => Plain::Tagged(tag.to_string(), Box::new(to_plain(inner))),
        Yaml::Alias(_) | Yaml::BadValue => Plain::Bad,
    }
}

fn scalar_plain(s: &Scalar<'_>) -> Plain {
    match s {
        Scalar::Null => Plain::Null,
        Scalar::Boolean(b) => Plain::Bool(*b),
        Scalar::Integer(i) => Plain::Int(*i),
        Scalar::FloatingPoint(f) => Plain::Float(f.to_string()),
        Scalar::String(s) => Plain::Str(s.to_string()),
    }
}

fn key_text(k: &Yaml<'_>) -> String {
    match to_plain(k) {
        Plain::Str(s) => s,
        Plain::Null => "null".to_owned(),
        Plain::Bool(b) => b.to_string(),
        Plain::Int(i) => i.to_string(),
        Plain::Float(f) => f,
        other => format!("{other:?}"),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// The first difference between `a` and `b`, as a path; never the values.
fn first_diff(path: &str, a: &Plain, b: &Plain) -> Option<String> {
    let here = if path.is_empty() {
        "the document"
    } else {
        path
    };
    match (a, b) {
        (Plain::Map(x), Plain::Map(y)) => {
            for (k, va) in x {
                match y.get(k) {
                    None => return Some(format!("{} (removed)", join(path, k))),
                    Some(vb) => {
                        if let Some(d) = first_diff(&join(path, k), va, vb) {
                            return Some(d);
                        }
                    }
                }
            }
            y.keys()
                .find(|k| !x.contains_key(*k))
                .map(|k| format!("{} (added)", join(path, k)))
        }
        (Plain::Seq(x), Plain::Seq(y)) => {
            if x.len() != y.len() {
                return Some(format!(
                    "{here} (a list of {} items became {})",
                    x.len(),
                    y.len()
                ));
            }
            x.iter()
                .zip(y)
                .enumerate()
                .find_map(|(i, (va, vb))| first_diff(&format!("{path}[{i}]"), va, vb))
        }
        _ if a == b => None,
        _ => Some(format!("{here} (changed)")),
    }
}

/// Like [`first_diff`] on two maps, skipping the keys in `skip`.
fn first_diff_except(
    path: &str,
    a: &BTreeMap<String, Plain>,
    b: &BTreeMap<String, Plain>,
    skip: &[&str],
) -> Option<String> {
    let strip = |m: &BTreeMap<String, Plain>| {
        Plain::Map(
            m.iter()
                .filter(|(k, _)| !skip.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    };
    first_diff(path, &strip(a), &strip(b))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EnvForm {
    Absent,
    Map,
    List,
}

/// An environment as KEY -> value, for both the map and the list form.
fn env_entries(env: Option<&Plain>) -> Option<(EnvForm, BTreeMap<String, Plain>)> {
    match env {
        None | Some(Plain::Null) => Some((EnvForm::Absent, BTreeMap::new())),
        Some(Plain::Map(m)) => Some((EnvForm::Map, m.clone())),
        Some(Plain::Seq(items)) => {
            let mut out = BTreeMap::new();
            for item in items {
                let Plain::Str(s) = item else {
                    return None;
                };
                match s.split_once('=') {
                    Some((k, v)) => out.insert(k.to_owned(), Plain::Str(v.to_owned())),
                    None => out.insert(s.clone(), Plain::Null),
                };
            }
            Some((EnvForm::List, out))
        }
        Some(_) => None,
    }
}

fn compare_service(
    path: &str,
    a: &Plain,
    b: &Plain,
    env_keys: &[&str],
    healthcheck: bool,
) -> Option<String> {
    let (Plain::Map(x), Plain::Map(y)) = (a, b) else {
        return first_diff(path, a, b);
    };
    let mut skip = Vec::new();
    if !env_keys.is_empty() {
        skip.push("environment");
    }
    if healthcheck {
        skip.push("healthcheck");
    }
    if let Some(d) = first_diff_except(path, x, y, &skip) {
        return Some(d);
    }
    if !env_keys.is_empty() {
        let env_path = join(path, "environment");
        let (ea, eb) = (x.get("environment"), y.get("environment"));
        match (env_entries(ea), env_entries(eb)) {
            (Some((fa, ma)), Some((fb, mb))) => {
                if fa != EnvForm::Absent && fb == EnvForm::Absent {
                    return Some(format!("{env_path} (removed)"));
                }
                if fa != EnvForm::Absent && fa != fb {
                    return Some(format!("{env_path} (changed between a map and a list)"));
                }
                if let Some(d) = first_diff_except(&env_path, &ma, &mb, env_keys) {
                    return Some(d);
                }
            }
            _ => {
                let none = Plain::Null;
                if let Some(d) = first_diff(&env_path, ea.unwrap_or(&none), eb.unwrap_or(&none)) {
                    return Some(d);
                }
            }
        }
    }
    if healthcheck {
        let hc_path = join(path, "healthcheck");
        match (x.get("healthcheck"), y.get("healthcheck")) {
            (Some(Plain::Map(ha)), Some(Plain::Map(hb))) => {
                if let Some(d) = first_diff_except(&hc_path, ha, hb, &["test"]) {
                    return Some(d);
                }
            }
            (ha, hb) => {
                let none = Plain::Null;
                if let Some(d) = first_diff(&hc_path, ha.unwrap_or(&none), hb.unwrap_or(&none)) {
                    return Some(d);
                }
            }
        }
    }
    None
}

/// Reads `old` and `new` with a plain YAML loader and requires them to be equal except at
/// `services.<svc>.environment.<KEY>` for the `intended` (svc, KEY) pairs (an environment is
/// compared as KEY -> value, list items `KEY=value`) and `services.<svc>.healthcheck.test`
/// for the services in `healthcheck_of`. Aliases are expanded and `<<` merges applied
/// before comparing.
///
/// # Errors
/// A description of the first unexpected difference (a path, never a value), or of a text
/// that is not valid YAML.
pub fn verify_edit(
    old: &str,
    new: &str,
    intended: &[(String, String)],
    healthcheck_of: &[String],
) -> Result<(), String> {
    let a = load_plain(old).map_err(|e| format!("the original is not valid YAML ({e})"))?;
    let b = load_plain(new).map_err(|e| format!("the edited text is not valid YAML ({e})"))?;
    verify_plain(&a, &b, intended, healthcheck_of)
}

/// [`verify_edit`] on texts already read plainly: `a` before, `b` after.
///
/// # Errors
/// As [`verify_edit`].
pub(super) fn verify_plain(
    a: &[Plain],
    b: &[Plain],
    intended: &[(String, String)],
    healthcheck_of: &[String],
) -> Result<(), String> {
    if a.len() != b.len() {
        return Err("the number of YAML documents changed".to_owned());
    }
    let unexpected = |d: String| Err(format!("an unexpected change at {d}"));
    for (i, (da, db)) in a.iter().zip(b).enumerate() {
        let (Plain::Map(ra), Plain::Map(rb), 0) = (da, db, i) else {
            if let Some(d) = first_diff("", da, db) {
                return unexpected(d);
            }
            continue;
        };
        if let Some(d) = first_diff_except("", ra, rb, &["services"]) {
            return unexpected(d);
        }
        let (Some(Plain::Map(sa)), Some(Plain::Map(sb))) = (ra.get("services"), rb.get("services"))
        else {
            let none = Plain::Null;
            let (sa, sb) = (ra.get("services"), rb.get("services"));
            if let Some(d) = first_diff("services", sa.unwrap_or(&none), sb.unwrap_or(&none)) {
                return unexpected(d);
            }
            continue;
        };
        if let Some(name) = sb.keys().find(|k| !sa.contains_key(*k)) {
            return unexpected(format!("services.{name} (added)"));
        }
        for (name, va) in sa {
            let path = format!("services.{name}");
            let Some(vb) = sb.get(name) else {
                return unexpected(format!("{path} (removed)"));
            };
            let env_keys: Vec<&str> = intended
                .iter()
                .filter(|(s, _)| s == name)
                .map(|(_, k)| k.as_str())
                .collect();
            let healthcheck = healthcheck_of.iter().any(|s| s == name);
            if let Some(d) = compare_service(&path, va, vb, &env_keys, healthcheck) {
                return unexpected(d);
            }
        }
    }
    Ok(())
}
