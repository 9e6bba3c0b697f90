//! Real third-party values files for the supabase-kubernetes chart (`tests/k8s/corpus/`,
//! unchanged copies with provenance). For every case: `doctor --json` must answer without
//! crashing, then either the migration is walked from legacy to revoked with
//! `tests/k8s/check_chart.py` confirming after each step that no token is rejected (`walk` of
//! k8s.rs), or keyctl must refuse as the case's `expect.json` says: exit 3, the reason on
//! stderr, no byte changed, no `.keyctl/`.
//!
//! A case's `expect.json` is the by-hand reading of its files (README there); `keyctl.expect`
//! says what keyctl should do and `keyctl.args` what a user of that repository would pass
//! (the chart version the repository pins). Every refused case is also refused without those
//! arguments (`doctor` names why). Gaps the corpus found and keyctl fixed are kept in each
//! case's `expect.json` (`fixed_gaps`, `fixed_by`); `known_gaps` lists what is still open.

use std::path::Path;

use serde_json::Value;

use crate::k8s::{plus, project, walk};
use crate::stacks::fill;
use crate::support::{Project, T0, repo, run_tool};

/// One corpus case, copied into a temporary project: its values file is `values.yaml` there.
struct Case {
    name: String,
    expect: Value,
    p: Project,
}

impl Case {
    fn open(name: &str) -> Case {
        let dir = Path::new("corpus").join(name);
        let expect: Value = serde_json::from_str(
            &std::fs::read_to_string(repo().join("tests/k8s").join(&dir).join("expect.json"))
                .unwrap(),
        )
        .unwrap();
        let values = dir.join(expect["values"].as_str().unwrap());
        let mut files = vec![(
            values.to_str().unwrap().to_owned(),
            "values.yaml".to_owned(),
        )];
        if let Some(secret) = expect["secret_manifest"].as_str() {
            files.push((
                dir.join(secret).to_str().unwrap().to_owned(),
                "secret.yaml".to_owned(),
            ));
        }
        let files: Vec<(&str, &str)> = files
            .iter()
            .map(|(from, to)| (from.as_str(), to.as_str()))
            .collect();
        let p = project(&files);
        let case = Case {
            name: name.to_owned(),
            expect,
            p,
        };
        case.fill();
        case
    }

    /// Placeholders the published file leaves for its user (`expect.json` `fill`): `secret`
    /// becomes a fresh 40-character secret, `anon`/`service_role` HS256 keys signed with it,
    /// anything else the literal given.
    fn fill(&self) {
        let Some(fill_spec) = self.expect["fill"].as_object() else {
            return;
        };
        let secret: String = keyctl::apikey::fresh_secret()[..40].to_owned();
        let iat = (crate::k8s::secs(T0) - 86_400).to_string();
        let mint = |role: &str| {
            let ran = run_tool(
                "python3",
                &[
                    repo()
                        .join("tests/stacks/check_tokens.py")
                        .to_str()
                        .unwrap(),
                    "mint",
                    &secret,
                    role,
                    &iat,
                ],
                "",
            );
            assert!(ran.ok, "{}", ran.stderr);
            ran.stdout.trim().to_owned()
        };
        let pairs: Vec<(String, String)> = fill_spec
            .iter()
            .map(|(placeholder, with)| {
                let value = match with.as_str().unwrap() {
                    "@JWT_SECRET@" => secret.clone(),
                    "@ANON_KEY@" => mint("anon"),
                    "@SERVICE_ROLE_KEY@" => mint("service_role"),
                    literal => literal.to_owned(),
                };
                (placeholder.clone(), value)
            })
            .collect();
        let pairs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        fill(self.p.path(), &pairs);
    }

    /// `--helm-values` (and `--k8s-secret`) plus the case's own arguments.
    fn locate(&self) -> Vec<String> {
        let mut args = vec![
            "--helm-values".to_owned(),
            self.p.file("values.yaml").display().to_string(),
        ];
        if self.expect["secret_manifest"].is_string() {
            args.extend([
                "--k8s-secret".to_owned(),
                self.p.file("secret.yaml").display().to_string(),
            ]);
        }
        args.extend(
            self.expect["keyctl"]["args"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| a.as_str().unwrap().to_owned()),
        );
        args
    }

    /// `doctor --json` answers: a report on stdout (exit 0 or 1), or, where keyctl refuses to
    /// read the project at all (exit 3, documented for a `secretRef` without its manifest), a
    /// JSON error on stderr. Never a crash.
    fn doctor(&self) {
        let out = self
            .p
            .keyctl(["doctor", "--json"])
            .no_project()
            .args(self.locate())
            .now(T0)
            .any_status()
            .run();
        let name = &self.name;
        match out.code {
            Some(0 | 1) => {
                let report: Value = serde_json::from_str(&out.stdout)
                    .unwrap_or_else(|e| panic!("{name}: doctor --json: {e}: {}", out.stdout));
                assert!(report["findings"].is_array(), "{name}: {report}");
                for code in self.expect["doctor"]["codes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    let code = code.as_str().unwrap();
                    assert!(
                        out.finding_codes().iter().any(|c| c == code),
                        "{name}: doctor did not report {code}: {}",
                        out.stdout
                    );
                }
            }
            Some(3) => {
                assert_eq!(
                    self.expect["doctor"]["exit"], 3,
                    "{name}: doctor refused: {}",
                    out.stderr
                );
                let error: Value = serde_json::from_str(out.stderr.trim())
                    .unwrap_or_else(|e| panic!("{name}: doctor error: {e}: {}", out.stderr));
                assert_eq!(error["error"]["exit"], 3, "{name}: {error}");
            }
            other => panic!(
                "{name}: doctor exit {other:?}\nstdout: {}\nstderr: {}",
                out.stdout, out.stderr
            ),
        }
    }

    /// `migrate` refuses: exit 3, every expected word of the reason on stderr, every file as it
    /// was, no `.keyctl/`.
    fn refused(&self) {
        let name = &self.name;
        let before: Vec<(String, Vec<u8>)> = ["values.yaml", "secret.yaml"]
            .iter()
            .filter(|f| self.p.file(f).exists())
            .map(|f| (f.to_string(), std::fs::read(self.p.file(f)).unwrap()))
            .collect();
        for dry in [true, false] {
            let mut cmd = self.p.keyctl(["migrate"]).no_project();
            cmd = cmd.arg(if dry { "--dry-run" } else { "--yes" });
            let out = cmd
                .args(self.locate())
                .args(["--release", "demo"])
                .now(T0)
                .any_status()
                .run();
            assert_eq!(out.code, Some(3), "{name}: {}", out.stderr);
            for word in self.expect["keyctl"]["stderr_contains"].as_array().unwrap() {
                let word = word.as_str().unwrap();
                assert!(
                    out.stderr.contains(word),
                    "{name}: the refusal does not say {word:?}: {}",
                    out.stderr
                );
            }
            for (f, bytes) in &before {
                assert_eq!(
                    &std::fs::read(self.p.file(f)).unwrap(),
                    bytes,
                    "{name}: {f} changed"
                );
            }
            assert!(
                !self.p.file(".keyctl").exists(),
                "{name}: .keyctl/ created by a refused run"
            );
        }
    }
}

impl Case {
    /// Without the case's own arguments (`--chart-version`) keyctl still sees it cannot
    /// write: `doctor` names why, and `migrate` refuses (exit 3) writing nothing.
    fn refused_without_args(&self) {
        let name = &self.name;
        let mut locate = vec![
            "--helm-values".to_owned(),
            self.p.file("values.yaml").display().to_string(),
        ];
        if self.expect["secret_manifest"].is_string() {
            locate.extend([
                "--k8s-secret".to_owned(),
                self.p.file("secret.yaml").display().to_string(),
            ]);
        }
        let values = std::fs::read(self.p.file("values.yaml")).unwrap();
        let codes = self
            .p
            .keyctl(["doctor", "--json"])
            .no_project()
            .args(&locate)
            .now(T0)
            .any_status()
            .run()
            .finding_codes();
        let why = [
            "chart_too_old",
            "values_nested",
            "chart_version_unknown",
            "secret_manifest_missing",
        ];
        assert!(
            codes.iter().any(|c| why.contains(&c.as_str())),
            "{name}: {codes:?}"
        );
        let out = self
            .p
            .keyctl(["migrate", "--yes"])
            .no_project()
            .args(&locate)
            .now(T0)
            .any_status()
            .run();
        assert_eq!(out.code, Some(3), "{name}: {}", out.stderr);
        assert_eq!(
            std::fs::read(self.p.file("values.yaml")).unwrap(),
            values,
            "{name}"
        );
        assert!(!self.p.file(".keyctl").exists(), "{name}");
    }
}

/// Every case directory under `tests/k8s/corpus/`.
fn cases() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo().join("tests/k8s/corpus"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn run_case(name: &str) {
    let case = Case::open(name);
    case.doctor();
    match case.expect["keyctl"]["expect"].as_str().unwrap() {
        "walk" => {
            walk(
                &case.p,
                name,
                case.expect["secret_manifest"]
                    .as_str()
                    .map(|_| "secret.yaml"),
            );
            // After the walk the project is healthy by keyctl's own reading, at a time when
            // the waits are long over.
            let out = case
                .p
                .keyctl(["doctor", "--json"])
                .no_project()
                .args(case.locate())
                .now(plus(T0, 24 * 60))
                .any_status()
                .run();
            assert!(matches!(out.code, Some(0 | 1)), "{name}: {}", out.stderr);
            let codes = out.finding_codes();
            for code in ["key_set", "split_secret", "api_key_rejected", "not_wired"] {
                assert!(
                    !codes.iter().any(|c| c == code),
                    "{name}: {code} after the walk: {codes:?}"
                );
            }
        }
        "refuse" => {
            case.refused();
            case.refused_without_args();
        }
        other => panic!("{name}: keyctl.expect {other:?}"),
    }
}

#[test]
fn every_corpus_case_is_described() {
    let names = cases();
    assert!(names.len() >= 4, "{names:?}");
    for name in &names {
        let dir = repo().join("tests/k8s/corpus").join(name);
        assert!(
            dir.join("PROVENANCE.md").is_file(),
            "{name}: no PROVENANCE.md"
        );
        let expect: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("expect.json")).unwrap())
                .unwrap();
        let values = dir.join(expect["values"].as_str().unwrap());
        assert!(values.is_file(), "{name}: {} is missing", values.display());
        assert!(
            ["walk", "refuse"].contains(&expect["keyctl"]["expect"].as_str().unwrap()),
            "{name}"
        );
    }
    let readme = std::fs::read_to_string(repo().join("tests/k8s/corpus/README.md")).unwrap();
    for name in &names {
        assert!(
            readme.contains(name.as_str()),
            "README.md does not list {name}"
        );
    }
}

#[test]
fn published_files_are_byte_for_byte_upstreams() {
    // PROVENANCE.md lists `published/...` paths with their sha256; each must match.
    for name in cases() {
        let dir = repo().join("tests/k8s/corpus").join(&name);
        let provenance = std::fs::read_to_string(dir.join("PROVENANCE.md")).unwrap();
        let mut seen = 0;
        for line in provenance
            .lines()
            .filter(|l| l.starts_with("| `published/"))
        {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let path = cells[1].trim_matches('`');
            let sha = cells[3].trim_matches('`');
            let ran = run_tool("sha256sum", &[dir.join(path).to_str().unwrap()], "");
            assert!(ran.ok, "{name}: {path}: {}", ran.stderr);
            assert_eq!(
                ran.stdout.split_whitespace().next().unwrap(),
                sha,
                "{name}: {path} differs from upstream"
            );
            seen += 1;
        }
        assert!(seen > 0, "{name}: PROVENANCE.md lists no published file");
    }
}

#[test]
fn adriancst_aks_eso_secretref() {
    run_case("adriancst-aks-eso-secretref");
}

#[test]
fn humanbook_example_placeholders() {
    run_case("humanbook-example-placeholders");
}

#[test]
fn humanbook_fork_values_demo() {
    run_case("humanbook-fork-values-demo");
}

#[test]
fn phillipekelly_umbrella_subchart() {
    run_case("phillipekelly-umbrella-subchart");
}

#[test]
fn statefulml_old_chart_demo() {
    run_case("statefulml-old-chart-demo");
}

#[test]
fn uaiso_tiny_override_0_3_3() {
    run_case("uaiso-tiny-override-0.3.3");
}

#[test]
fn every_case_has_its_own_test() {
    let source = std::fs::read_to_string(repo().join("tests/integration/k8s_corpus.rs")).unwrap();
    for name in cases() {
        assert!(
            source.contains(&format!("run_case(\"{name}\")")),
            "{name} has no test"
        );
    }
}
