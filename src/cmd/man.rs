//! `keyctl man [COMMAND…]`: the manual page, in roff, generated from the clap definitions by
//! `clap_mangen` and completed with what a user who has only the binary needs: the exit
//! codes, the environment, the files keyctl keeps, and a summary of the JSON shapes
//! (docs/JSON.md in the repository). Printed through `ui`; nothing is written.

use clap::Args;
use clap_mangen::Man;
use clap_mangen::roff::{Inline, Roff, bold, italic, roman};

use crate::error::{Error, Result};
use crate::ui;

/// Arguments of `keyctl man`.
#[derive(Debug, Args)]
#[command(
    after_help = "Read it, or install it:\n  keyctl man | man -l -\n  keyctl man migrate | man -l -\n  keyctl man > /usr/local/share/man/man1/keyctl.1"
)]
pub(crate) struct ManArgs {
    /// A subcommand's page instead of keyctl(1) (e.g. `migrate`, `token verify`).
    #[arg(value_name = "COMMAND")]
    command: Vec<String>,
}

impl ManArgs {
    /// Prints the page of `cmd` (keyctl's whole command line) or of the named subcommand.
    ///
    /// # Errors
    /// A name that is no subcommand (exit 2).
    pub(crate) fn run(self, mut cmd: clap::Command) -> Result<()> {
        cmd = cmd.disable_help_subcommand(true);
        cmd.build();
        let page = if self.command.is_empty() {
            main_page(&cmd)
        } else {
            let mut sub = &cmd;
            for name in &self.command {
                sub = sub.find_subcommand(name).ok_or_else(|| {
                    Error::usage(format!(
                        "no such command: keyctl {} (keyctl --help lists them)",
                        self.command.join(" ")
                    ))
                })?;
            }
            sub_page(sub)
        };
        ui::out(&page);
        Ok(())
    }
}

/// The preamble every roff rendering starts with (the apostrophe string); kept once.
const PREAMBLE: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";

/// keyctl(1)'s DESCRIPTION (`--help` keeps the one-line `about`).
const DESCRIPTION: &str = "keyctl creates the JWT signing keys of a self-hosted Supabase stack, \
builds JWT_KEYS (Auth's private JWK array) and JWT_JWKS (the public set PostgREST, Realtime, \
Storage and Edge Functions verify with) from them, and checks a project's .env and compose file \
against every rule the services enforce, naming the file, line and key of each problem.\n\n\
keyctl migrate moves a project from the shared HS256 JWT_SECRET to an asymmetric key one step \
per run (legacy, dual-verify, switched, revoked), enforcing the waits that keep every session \
and API key valid; keyctl rotate starts the next rotation the same way. Every writing command \
shows a redacted plan and diff, takes a lock, backs up what it changes under .keyctl/backups/ \
and replaces files atomically. A project is a directory holding .env and the compose file: the \
current directory unless --project DIR names another.";

/// keyctl(1): clap's sections, then exit status, environment, files, JSON output, examples.
fn main_page(cmd: &clap::Command) -> String {
    let man = Man::new(cmd.clone().long_about(DESCRIPTION));
    let mut page = head(&man);
    page.push_str(&part(|w| man.render_options_section(w)));
    page.push_str(&part(|w| man.render_subcommands_section(w)));
    let mut r = Roff::new();
    exit_status(&mut r);
    environment(&mut r);
    files(&mut r);
    json_output(&mut r);
    examples(&mut r);
    r.control("SH", ["SEE ALSO"]);
    r.text([roman(
        "The page of each command: keyctl man COMMAND (keyctl man migrate, keyctl man token verify). \
         Each command's options: keyctl COMMAND --help. In the source repository: README.md, \
         docs/guide.md (the runbook), docs/ci.md (CI recipes), docs/JSON.md (the JSON shapes in full).",
    )]);
    page.push_str(&body(&r));
    page.push_str(&part(|w| man.render_version_section(w)));
    page
}

/// keyctl-COMMAND(1): clap's page of that command, its exit status and a pointer back.
fn sub_page(cmd: &clap::Command) -> String {
    let man = Man::new(cmd.clone()).source(format!("keyctl {}", env!("KEYCTL_VERSION")));
    let mut page = head(&man);
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        page.push_str(&part(|w| man.render_options_section(w)));
    }
    if cmd.has_subcommands() {
        page.push_str(&part(|w| man.render_subcommands_section(w)));
    }
    let mut r = Roff::new();
    if let Some(after) = cmd.get_after_long_help().or_else(|| cmd.get_after_help()) {
        r.control("SH", ["NOTES"]);
        notes(&mut r, &after.to_string());
    }
    exit_status(&mut r);
    r.control("SH", ["SEE ALSO"]);
    r.text([
        bold("keyctl"),
        roman("(1) (keyctl man): the environment, the files and the JSON shapes."),
    ]);
    // A subcommand has no version of its own: the binary's.
    r.control("SH", ["VERSION"]);
    r.text([roman(format!("v{}", env!("KEYCTL_VERSION")))]);
    page.push_str(&body(&r));
    page
}

/// Title, NAME, SYNOPSIS and DESCRIPTION, with the preamble once.
fn head(man: &Man) -> String {
    let mut page = String::from(PREAMBLE);
    page.push_str(&part(|w| man.render_title(w)));
    page.push_str(&part(|w| man.render_name_section(w)));
    page.push_str(&part(|w| man.render_synopsis_section(w)));
    page.push_str(&part(|w| man.render_description_section(w)));
    page
}

/// One section rendered by `clap_mangen`, without its own copy of the preamble.
fn part(render: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>) -> String {
    let mut buf = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = render(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    text.strip_prefix(PREAMBLE)
        .map_or(text.clone(), str::to_owned)
}

fn body(r: &Roff) -> String {
    let text = r.render();
    text.strip_prefix(PREAMBLE)
        .map_or(text.clone(), str::to_owned)
}

/// A tagged paragraph: `tag` in bold, then `text`.
fn item(r: &mut Roff, tag: &str, text: &str) {
    r.control("TP", []);
    r.text([bold(tag)]);
    r.text([roman(text)]);
}

/// Literal lines, indented and unfilled.
fn literal(r: &mut Roff, lines: &[&str]) {
    r.control("RS", ["4"]);
    r.control("nf", []);
    for line in lines {
        r.text([roman(*line)]);
    }
    r.control("fi", []);
    r.control("RE", []);
}

/// A command's `after_help`, line by line: indented lines (examples) stay literal, the others
/// are paragraphs (clap_mangen's own EXTRA section would run them together).
fn notes(r: &mut Roff, text: &str) {
    let mut block: Vec<&str> = Vec::new();
    for line in text.lines() {
        if let Some(code) = line.strip_prefix("  ") {
            block.push(code);
            continue;
        }
        if !block.is_empty() {
            literal(r, &block);
            block.clear();
        }
        if !line.trim().is_empty() {
            para(r, [roman(line)]);
        }
    }
    if !block.is_empty() {
        literal(r, &block);
    }
}

fn para(r: &mut Roff, text: impl Into<Vec<Inline>>) {
    r.control("PP", []);
    r.text(text);
}

/// The exit codes (README "Exit codes"; `error::exit`).
pub(crate) const EXIT_CODES: [(&str, &str); 5] = [
    ("0", "Done, or nothing to do."),
    (
        "1",
        "A check ran and found problems: jwks --check, doctor with an error finding, token verify \
         rejecting a token or reading garbage. A .env or compose file the check cannot parse is a \
         finding (doctor: unparseable), as linters do.",
    ),
    (
        "2",
        "Usage error, or bad input to a command that must use it: an unparseable .env or compose \
         file for migrate, a malformed JWT_KEYS, a bad or encrypted PEM, P-384, RSA under 2048 \
         bits, a corrupt state file, token remint --var naming no API key, a writing command \
         without --yes and without a terminal.",
    ),
    (
        "3",
        "Refused as unsafe: a wait not over, rotate while a migration or rotation is unfinished, \
         a stale container before the switch or the revocation, no consent to re-mint API keys, \
         revoking the signing key, files that disagree with the state file, --out onto an \
         existing key file, token remint on a wiring fault. Nothing was written.",
    ),
    (
        "4",
        "The environment prevented it: a file that cannot be read or written, the lock held by \
         another run, a --restart whose service did not come back.",
    ),
];

fn exit_status(r: &mut Roff) {
    r.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in EXIT_CODES {
        item(r, code, meaning);
    }
}

fn environment(r: &mut Roff) {
    r.control("SH", ["ENVIRONMENT"]);
    for (name, text) in [
        (
            "KEYCTL_NOW",
            "An RFC 3339 timestamp that replaces the clock for every command (the waits, minted \
             iat and exp), so rehearsals and CI can walk through a migration.",
        ),
        (
            "DOCKER_HOST",
            "The Docker Engine API for the live checks and --restart (unix:// or tcp://); \
             otherwise /var/run/docker.sock, then $XDG_RUNTIME_DIR/podman/podman.sock. No engine: \
             the live checks are skipped with a note.",
        ),
        (
            "COMPOSE_PROJECT_NAME",
            "The compose project name, as --project-name (default: as docker compose derives it).",
        ),
        (
            "KEYCTL_COMPOSE",
            "The compose command --restart runs (default: docker compose, else docker-compose).",
        ),
        (
            "KEYCTL_RESTART_TIMEOUT",
            "Seconds --restart waits for each service to run and be healthy (default 120).",
        ),
        (
            "NO_COLOR",
            "When set and not empty, no colour on a terminal.",
        ),
    ] {
        item(r, name, text);
    }
    para(
        r,
        [roman(
            "Passwords for export and import come from a prompt, --password-file or \
             --password-env NAME (an environment variable you name), never from the command line.",
        )],
    );
}

fn files(r: &mut Roff) {
    r.control("SH", ["FILES"]);
    for (name, text) in [
        (
            "DIR/.env",
            "The project's variables: JWT_SECRET, JWT_KEYS (Auth's private JWK array), JWT_JWKS \
             (the public set every verifier reads), the API keys. Keep it mode 600.",
        ),
        (
            "DIR/compose.yaml, DIR/docker-compose.yml",
            "The compose file (-f names another) and its docker-compose.override.yml.",
        ),
        (
            "DIR/.keyctl/state.json",
            "When each step happened and for which kids, the public JWKs of revoked keys, the \
             journal of a run. No private material.",
        ),
        (
            "DIR/.keyctl/backups/",
            "A copy (mode 600) of every file a run changed, one directory per run.",
        ),
        ("DIR/.keyctl/lock", "Keeps two writing runs apart."),
        (
            "DIR/keyctl.toml",
            "Optional: [services] names which service is which (identity = \"auth\").",
        ),
    ] {
        item(r, name, text);
    }
}

/// Every `doctor` finding code: (code, severity, meaning). docs/JSON.md has the same table.
pub(crate) const FINDINGS: &[(&str, &str, &str)] = &[
    (
        "key_set",
        "error",
        "a rule of JWT_KEYS/JWT_JWKS/JWT_SECRET is broken (the jwks --check rules)",
    ),
    (
        "demo_secret",
        "error",
        "JWT_SECRET is upstream's public demo value",
    ),
    (
        "env_readable",
        "warning",
        ".env is readable by group or others",
    ),
    ("env_in_git", "warning", ".env is tracked by git"),
    (
        "key_file_readable",
        "warning",
        "a private key file in the project is readable by group or others",
    ),
    (
        "state_unreadable",
        "error",
        ".keyctl/state.json is corrupt, from the future or from a newer keyctl",
    ),
    (
        "keyctl_dir_unsafe",
        "error",
        ".keyctl/ is a link, owned by another user or writable by others: its record is ignored",
    ),
    (
        "interrupted_run",
        "warning",
        "a keyctl run was interrupted; the next migrate recovers it",
    ),
    (
        "state_disagrees",
        "error",
        "the state file and JWT_KEYS tell different phases",
    ),
    (
        "finish_migration",
        "warning",
        "the previous key could have been revoked more than 7 days ago",
    ),
    (
        "service_config",
        "error",
        "a service's key setting cannot work (PGRST_JWT_SECRET_IS_BASE64 with a JWKS)",
    ),
    (
        "empty_jwt_keys",
        "error",
        "GOTRUE_JWT_KEYS resolves to an empty string: Auth does not start",
    ),
    (
        "not_wired",
        "error",
        "past legacy, a service does not read JWT_KEYS/JWT_JWKS",
    ),
    (
        "compose_include",
        "error",
        "the compose file includes or extends another file keyctl does not read",
    ),
    (
        "image_too_old",
        "error past legacy, warning before",
        "an image older than the version that understands asymmetric keys",
    ),
    (
        "image_tag_unknown",
        "warning",
        "an image tag keyctl cannot compare (stable, ${TAG})",
    ),
    (
        "kid_missing",
        "error",
        "a service reads a JWKS that lacks a kid of .env's JWT_JWKS",
    ),
    (
        "method_not_allowed",
        "error",
        "GOTRUE_JWT_VALID_METHODS does not list an algorithm JWT_KEYS trusts",
    ),
    (
        "method_var_ignored",
        "warning",
        "Auth's accepted-methods variable is set in the spelling its image does not read",
    ),
    (
        "eddsa_functions",
        "warning",
        "Auth signs with EdDSA and the stack has Edge Functions",
    ),
    (
        "realtime_healthcheck",
        "error",
        "realtime's healthcheck sends an ANON_KEY that is not HS256",
    ),
    (
        "api_key_malformed",
        "error",
        "an API key variable is not a JWT",
    ),
    ("api_key_role", "error", "an API key carries the wrong role"),
    (
        "api_key_expiring",
        "warning",
        "an API key expires within 30 days",
    ),
    (
        "api_key_rejected",
        "error",
        "services reject an API key (revoked key, unknown kid, wiring)",
    ),
    ("api_key_expired", "error", "an API key has expired"),
    (
        "no_compose",
        "warning",
        "no compose file beside the .env: only the .env is checked",
    ),
    (
        "no_auth",
        "warning",
        "no service is recognised as Auth (--service-is, keyctl.toml)",
    ),
    (
        "no_verifier",
        "warning",
        "no service is recognised as PostgREST, Realtime, Storage or Edge Functions",
    ),
    (
        "auth_secret_unresolved",
        "error",
        "Auth resolves no GOTRUE_JWT_SECRET",
    ),
    (
        "split_secret",
        "error",
        "services resolve another HS256 secret than Auth (401 invalid signature)",
    ),
    (
        "retired_secret_trusted",
        "error",
        "a service still resolves a secret keyctl retired",
    ),
    (
        "chart_too_old",
        "error",
        "a Kubernetes chart older than 0.5.3 (or a full values copy without secret.apikey): the chart would ignore the keys keyctl writes",
    ),
    (
        "secret_key_missing",
        "error",
        "a Kubernetes Secret lacks a key the chart references: the pods stop at CreateContainerConfigError",
    ),
    (
        "secret_ref_key_unused",
        "error",
        "a chart's secretRefKey renames keys while its secretRef is unset",
    ),
    (
        "seed_self_host_missing",
        "error past legacy, warning before",
        "a chart's environment.realtime lacks SEED_SELF_HOST: true, so realtime ignores the JWKS",
    ),
    (
        "inline_private_keys",
        "warning",
        "private keys inline in a Helm values file, which every release revision keeps",
    ),
    (
        "value_from_unseen",
        "error",
        "a chart's environment entry sets a key variable with valueFrom, which keyctl cannot see",
    ),
    (
        "env_from_unseen",
        "warning",
        "a chart Deployment loads envFrom, which keyctl cannot see",
    ),
    (
        "functions_without_jwks",
        "error",
        "a chart's Edge Functions verify JWTs (VERIFY_JWT=true) but the chart gives them no JWKS",
    ),
    (
        "values_nested",
        "error",
        "a Helm values file whose chart keys sit under an umbrella chart's key",
    ),
    (
        "chart_version_unknown",
        "warning",
        "a Helm values file without secret.apikey and no --chart-version: keyctl cannot tell the chart takes the keys",
    ),
    (
        "secret_manifest_missing",
        "error",
        "a chart's secretRef names a Secret keyctl was not given (--k8s-secret)",
    ),
    (
        "secret_literal",
        "warning",
        "the secret is written literally in the compose file: the migration refuses to start",
    ),
    (
        "healthcheck_form",
        "warning",
        "realtime's healthcheck sends an API key in a form keyctl cannot rewrite",
    ),
    (
        "unparseable",
        "error",
        "the .env or the compose file does not parse (the only finding then)",
    ),
    (
        "stale_container",
        "error",
        "a container runs other values of a key variable than the files resolve to",
    ),
    (
        "container_down",
        "error",
        "a service's container is stopped, restarting or unhealthy",
    ),
    (
        "container_missing",
        "warning",
        "a recognised service has no container in the compose project",
    ),
    (
        "live_unavailable",
        "error",
        "--live and no engine reachable (or no container of the project)",
    ),
];

/// `token verify` rejection codes.
pub(crate) const REJECTIONS: &[&str] = &[
    "malformed",
    "alg_none",
    "alg_not_accepted",
    "alg_mismatch",
    "unknown_kid",
    "bad_header",
    "bad_signature",
    "bad_claim",
    "expired",
    "not_yet_valid",
    "wrong_audience",
    "wrong_role",
];

fn json_output(r: &mut Roff) {
    r.control("SH", ["JSON OUTPUT"]);
    r.text([roman(
        "--json (or --format json) asks any command for JSON. The shapes are stable: fields are \
         only ever added, never renamed or removed; field order is not significant.",
    )]);
    r.control("SS", ["doctor --json"]);
    r.text([roman(
        "One object; exit 0 without an error finding (warnings allowed), 1 otherwise, 2 or 4 when \
         the project cannot be read (stdout empty).",
    )]);
    literal(
        r,
        &[
            "{\"schema\": 1, \"project\": DIR, \"env_file\": FILE,",
            " \"compose_file\": FILE|null, \"phase\": PHASE|null, \"now\": TIME,",
            " \"summary\": {\"errors\": N, \"warnings\": N},",
            " \"live\": null|{\"checked\": BOOL, \"detail\": TEXT},",
            " \"findings\": [{\"severity\": \"error\"|\"warning\", \"code\": CODE,",
            "   \"place\": \"file:line\", \"service\"?, \"services\"?, \"variable\"?,",
            "   \"kid\"?, \"message\", \"breaks\", \"fix\", \"consequences\"?}]}",
        ],
    );
    para(
        r,
        [roman(
            "PHASE is legacy, dual-verify, switched or revoked. Findings are root causes, errors \
         first; consequences lists what each explains. The codes:",
        )],
    );
    for (code, severity, meaning) in FINDINGS {
        r.control("TP", []);
        r.text([bold(*code)]);
        r.text([italic(*severity), roman(format!(": {meaning}."))]);
    }
    r.control("SS", ["token verify --json"]);
    r.text([roman(
        "One object per token, one per line (JSON Lines); exit 0 when every selected service \
         accepted every token, 1 otherwise.",
    )]);
    literal(
        r,
        &[
            "{\"line\"?: N, \"token\": {\"alg\", \"kid\", \"role\", \"sub\", \"exp\", ...},",
            " \"valid\": BOOL, \"notes\"?: [TEXT],",
            " \"results\": [{\"service\", \"role\", \"valid\": true, \"key\": TEXT}",
            "          | {\"service\", \"role\", \"valid\": false,",
            "             \"code\": CODE, \"reason\": TEXT}]}",
            "not a JWT: {\"line\"?, \"valid\": false,",
            "            \"error\": {\"code\": \"malformed\", \"reason\"}, \"results\": []}",
        ],
    );
    para(
        r,
        [roman(format!(
            "line is present only when reading stdin. Rejection codes: {}.",
            REJECTIONS.join(", ")
        ))],
    );
    r.control("SS", ["migrate status --json"]);
    literal(
        r,
        &[
            "{\"project\", \"env_file\", \"compose_file\", \"phase\": PHASE,",
            " \"keys\": [{\"kid\": KID|null, \"alg\", \"state\"}],",
            " \"revoked\": [{\"kid\", \"at\"}],",
            " \"next\": {\"step\", \"allowed_at\": TIME|null,",
            "          \"wait_seconds\": N|null},",
            " \"history\": [{\"step\", \"at\", \"phase\", \"kid\"}],",
            " \"interrupted_run\": BOOL, \"disagreement\": TEXT|null,",
            " \"now\": TIME, \"live\": {\"checked\": BOOL, ...}}",
        ],
    );
    para(
        r,
        [roman(
            "keys[].state is in use, standby or previously used; kid is null for the legacy \
         JWT_SECRET. live.services[].running is current, stale, down, unhealthy or missing.",
        )],
    );
    r.control("SS", ["Writing commands and errors"]);
    r.text([roman(
        "A writing command with --json prints what it did on stdout (the plan and diff go to \
         stderr):",
    )]);
    literal(
        r,
        &[
            "{\"done\": true, \"step\", \"files\": [FILE], \"backup\": DIR,",
            " \"restart\": {\"verifiers\", \"others\", \"command\"}|null,",
            " \"afterwards\", \"next\"}",
            "{\"done\": false, \"nothing_to_do\": TEXT}",
        ],
    );
    para(r, [roman("Any error, on stderr:")]);
    literal(
        r,
        &["{\"error\": {\"exit\": N, \"kind\": KIND, \"message\": TEXT}}"],
    );
    para(
        r,
        [roman("KIND is usage, bad_input, refused, io or problems.")],
    );
}

fn examples(r: &mut Roff) {
    r.control("SH", ["EXAMPLES"]);
    r.text([roman(
        "Move a stack from JWT_SECRET to an ES256 key, one step per run, without logging \
         anyone out (each step prints the restart command):",
    )]);
    literal(
        r,
        &[
            "keyctl doctor --project /srv/supabase",
            "keyctl migrate --project /srv/supabase --yes",
            "  # 20 minutes later: the new key signs",
            "keyctl migrate --project /srv/supabase --yes",
            "  # JWT_EXPIRY + 20 minutes later: revoke the old secret",
            "keyctl migrate --project /srv/supabase --yes --remint-api-keys",
        ],
    );
    para(r, [roman("A CI gate, and shell completion:")]);
    literal(
        r,
        &[
            "keyctl doctor --project . --json > doctor.json || exit 1",
            "source <(keyctl completions bash)",
        ],
    );
}
