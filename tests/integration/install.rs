//! Issue 13, for a user with only the binary: shell completions that load in bash, a manual
//! page that `man` renders without a warning and that carries the exit codes and every JSON
//! finding code, and a `--version` that names the commit.

use std::collections::BTreeSet;
use std::process::Command;

use crate::support::{Test, keyctl_bin, repo};

const SHELLS: [&str; 5] = ["bash", "zsh", "fish", "powershell", "elvish"];

/// Every page `keyctl man` prints: keyctl(1) and one per (sub)command.
const PAGES: &[&[&str]] = &[
    &[],
    &["generate"],
    &["jwks"],
    &["migrate"],
    &["migrate", "status"],
    &["migrate", "plan"],
    &["migrate", "rollback"],
    &["migrate", "rewire"],
    &["revoke"],
    &["rotate"],
    &["token"],
    &["token", "verify"],
    &["token", "sign"],
    &["token", "remint"],
    &["doctor"],
    &["export"],
    &["import"],
    &["completions"],
    &["man"],
];

/// keyctl's stdout for `args` (which must succeed).
fn out(args: &[&str]) -> String {
    Test::new().no_project().args(args).run().stdout
}

#[test]
fn completions_print_a_script_for_every_shell() {
    for shell in SHELLS {
        let script = out(&["completions", shell]);
        assert!(
            script.contains("keyctl") && script.contains("migrate") && script.len() > 1000,
            "{shell}: {script}"
        );
    }
    Test::new()
        .no_project()
        .args(["completions", "tcsh"])
        .status(2)
        .stderr_has("possible values")
        .run();
}

#[test]
fn bash_loads_the_completion_script_and_completes_subcommands_and_flags() {
    let k = keyctl_bin();
    let k = k.to_str().unwrap();
    // Exactly as the README says, then what bash asks the function for `keyctl mig<TAB>`
    // and `keyctl migrate --remi<TAB>`.
    let script = format!(
        r#"set -e
source <("{k}" completions bash)
complete -p keyctl
COMP_WORDS=(keyctl mig); COMP_CWORD=1; COMP_LINE="keyctl mig"; COMP_POINT=${{#COMP_LINE}}
_keyctl keyctl mig keyctl
echo "words: ${{COMPREPLY[*]}}"
COMP_WORDS=(keyctl migrate --remi); COMP_CWORD=2; COMP_LINE="keyctl migrate --remi"; COMP_POINT=${{#COMP_LINE}}
_keyctl keyctl --remi migrate
echo "flags: ${{COMPREPLY[*]}}"
"#
    );
    let ran = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&ran.stdout);
    let stderr = String::from_utf8_lossy(&ran.stderr);
    assert!(ran.status.success(), "{stdout}{stderr}");
    assert!(stderr.is_empty(), "bash said: {stderr}");
    assert!(
        stdout.contains("-F _keyctl keyctl"),
        "not registered: {stdout}"
    );
    assert!(stdout.contains("words: migrate"), "{stdout}");
    assert!(stdout.contains("flags: --remint-api-keys"), "{stdout}");
}

/// `MANWIDTH=80 man --warnings -l FILE`: the rendered text, and whatever man or groff warned.
fn render(page: &str) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keyctl.1");
    std::fs::write(&file, page).unwrap();
    let ran = Command::new("man")
        .args(["--warnings", "-l"])
        .arg(&file)
        .env("MANWIDTH", "80")
        .env_remove("MAN_KEEP_FORMATTING")
        .env_remove("MANPAGER")
        .env("PAGER", "cat")
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run man ({e}): scripts/test.sh installs man-db and groff-base")
        });
    assert!(ran.status.success(), "man failed: {ran:?}");
    (
        String::from_utf8_lossy(&ran.stdout).into_owned(),
        String::from_utf8_lossy(&ran.stderr).into_owned(),
    )
}

#[test]
fn every_man_page_renders_without_warnings() {
    for page in PAGES {
        let mut args = vec!["man"];
        args.extend_from_slice(page);
        let roff = out(&args);
        let (text, warnings) = render(&roff);
        assert!(
            warnings.is_empty(),
            "keyctl {}: man warned:\n{warnings}",
            args.join(" ")
        );
        let title = if page.is_empty() {
            "keyctl(1)".to_owned()
        } else {
            format!("keyctl-{}(1)", page.join("-"))
        };
        assert!(text.contains(&title), "{title} missing:\n{text}");
        assert!(text.contains("EXIT STATUS"), "{title}: no EXIT STATUS");
    }
    Test::new()
        .no_project()
        .args(["man", "nope"])
        .status(2)
        .stderr_has("no such command: keyctl nope")
        .run();
}

/// The codes of the table in docs/JSON.md (`| \`code\` | severity | … |`).
fn json_md_codes() -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo().join("docs/JSON.md")).unwrap();
    let doctor = text
        .split("## `keyctl doctor")
        .nth(1)
        .unwrap()
        .split("\n## ")
        .next()
        .unwrap();
    doctor
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_owned)
        .collect()
}

/// Every code the source gives a finding: `Finding::error("code"`, `Finding::warning("code"`
/// and the blockers' codes (`=> "code"` in doctor/trust.rs).
fn source_codes() -> BTreeSet<String> {
    let mut codes = BTreeSet::new();
    let mut files = vec![];
    for entry in std::fs::read_dir(repo().join("src/doctor")).unwrap() {
        files.push(entry.unwrap().path());
    }
    // A chart project's own problems are data there (`code: "…"`).
    let chart = std::fs::read_to_string(repo().join("src/helm/checks.rs")).unwrap();
    for piece in chart.split("code: \"").skip(1) {
        codes.insert(piece.split('"').next().unwrap().to_owned());
    }
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for marker in ["Finding::error(\"", "Finding::warning(\""] {
            for piece in text.split(marker).skip(1) {
                codes.insert(piece.split('"').next().unwrap().to_owned());
            }
        }
        if file.ends_with("trust.rs") {
            for piece in text.split("BlockerKind::").skip(1) {
                if let Some(code) = piece
                    .split_once("=> \"")
                    .filter(|(kind, _)| !kind.contains('\n'))
                {
                    codes.insert(code.1.split('"').next().unwrap().to_owned());
                }
            }
        }
    }
    codes
}

#[test]
fn the_man_page_carries_exit_codes_environment_and_every_json_finding_code() {
    let (text, _) = render(&out(&["man"]));
    for section in [
        "EXIT STATUS",
        "ENVIRONMENT",
        "FILES",
        "JSON OUTPUT",
        "doctor --json",
        "token verify --json",
        "migrate status --json",
        "KEYCTL_NOW",
    ] {
        assert!(text.contains(section), "{section} missing");
    }
    for code in ["0", "1", "2", "3", "4"] {
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(&format!("{code}      "))),
            "exit code {code} missing"
        );
    }
    // The page, docs/JSON.md and the source agree on the finding codes.
    let documented = json_md_codes();
    let in_source = source_codes();
    assert!(documented.len() > 30, "{documented:?}");
    let missing: Vec<_> = in_source.difference(&documented).collect();
    assert!(missing.is_empty(), "codes not in docs/JSON.md: {missing:?}");
    for code in &documented {
        assert!(
            text.lines().any(|l| l.trim() == code),
            "finding code {code} is not on the man page"
        );
    }
    for code in [
        "bad_signature",
        "unknown_kid",
        "alg_not_accepted",
        "expired",
    ] {
        assert!(text.contains(code), "rejection code {code} missing");
    }
}

#[test]
fn help_points_a_binary_only_user_at_the_man_page() {
    Test::new()
        .no_project()
        .args(["doctor", "--help"])
        .stdout_has("keyctl man")
        .run();
    Test::new()
        .no_project()
        .arg("--help")
        .stdout_has("keyctl man | man -l -")
        .run();
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let version = out(&["--version"]);
    let head = Command::new("git")
        .args(["rev-parse", "--short=7", "HEAD"])
        .current_dir(repo())
        .output()
        .unwrap();
    let pkg = env!("CARGO_PKG_VERSION");
    if head.status.success() {
        let commit = String::from_utf8_lossy(&head.stdout).trim().to_owned();
        assert_eq!(version.trim(), format!("keyctl {pkg} (commit {commit})"));
    } else {
        // Built outside git (a source archive): the bare version.
        assert_eq!(version.trim(), format!("keyctl {pkg}"));
    }
    assert_eq!(out(&["--version"]), version, "deterministic");
}
