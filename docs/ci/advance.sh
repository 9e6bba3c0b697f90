#!/usr/bin/env bash
# Scheduled key maintenance for a self-hosted Supabase stack (docs/ci.md):
#   1. advance a migration or rotation by the one step that is due (`keyctl migrate --yes
#      --to NEXT`), or wait quietly when it is not due yet;
#   2. once the target phase is reached, start a new rotation every ROTATE_EVERY_DAYS days
#      (`keyctl rotate --yes`), which the following runs advance the same way;
#   3. gate: `keyctl doctor --json`; any error finding fails the job (exit 1), listed with
#      its fix; the report is kept in REPORT for the job's artifacts.
# Run it on a schedule (every 10 minutes is plenty) where the project's files are: on the
# server itself, or a runner that reaches them. Exit 0: nothing wrong (a step may have been
# applied); 1: doctor found errors; anything else: keyctl's exit code (2 usage or bad input,
# 3 refused as unsafe, 4 I/O) — the job fails and keyctl's message says why.
#
# Environment (all optional):
#   PROJECT            the project directory (default: .)
#   TARGET             the phase to advance to: dual-verify, switched or revoked (default)
#   REMINT_API_KEYS    1: consent to re-mint ANON_KEY/SERVICE_ROLE_KEY at the revocation
#                      (they were signed by the key being revoked; clients need the new ones).
#                      Without it the revocation stops with exit 3 and waits for a person.
#   ROTATE_EVERY_DAYS  start a new rotation this many days after the previous one began
#                      (default 90; 0: never)
#   RESTART            1: pass --restart (keyctl recreates the services and confirms they run
#                      the new values; needs the Docker engine and docker compose)
#   REPORT             where doctor's JSON goes (default: keyctl-doctor.json)
#   KEYCTL             the keyctl command (default: keyctl)
#   KEYCTL_NOW         keyctl's clock (RFC 3339), for rehearsals and tests
# Needs: keyctl, jq.
set -euo pipefail

project=${PROJECT:-.}
target=${TARGET:-revoked}
rotate_days=${ROTATE_EVERY_DAYS:-90}
report=${REPORT:-keyctl-doctor.json}
keyctl=${KEYCTL:-keyctl}

say() { printf 'advance: %s\n' "$*" >&2; }

rank() {
  case "$1" in
    legacy) echo 0 ;; dual-verify) echo 1 ;; switched) echo 2 ;; revoked) echo 3 ;;
    *) say "unknown phase '$1'"; exit 2 ;;
  esac
}
next_of() {
  case "$1" in legacy) echo dual-verify ;; dual-verify) echo switched ;; switched) echo revoked ;; esac
}

flags=(--project "$project" --yes)
[ "${RESTART:-0}" = 1 ] && flags+=(--restart)

# 1. Where the project is, and whether its next step is due (keyctl's clock, KEYCTL_NOW too).
status=$("$keyctl" migrate status --project "$project" --json)
phase=$(jq -r '.phase' <<<"$status")
now=$(jq -r '.now' <<<"$status")
say "phase $phase at $now (target $target)"

if [ "$(rank "$phase")" -lt "$(rank "$target")" ]; then
  next=$(next_of "$phase")
  wait=$(jq -r '.next.wait_seconds // 0' <<<"$status")
  if [ "$wait" -gt 0 ]; then
    say "next step ($next) is due at $(jq -r '.next.allowed_at' <<<"$status"): waiting"
  else
    step=("${flags[@]}" --to "$next")
    [ "$next" = revoked ] && [ "${REMINT_API_KEYS:-0}" = 1 ] && step+=(--remint-api-keys)
    say "applying: keyctl migrate ${step[*]}"
    "$keyctl" migrate "${step[@]}"
  fi
elif [ "$phase" = revoked ] && [ "$rotate_days" -gt 0 ]; then
  # 2. The last rotation began with the last step into dual-verify.
  began=$(jq -r '[.history[] | select(.phase == "dual-verify")] | last | .at // empty' <<<"$status")
  age_days=0
  if [ -n "$began" ]; then
    age_days=$(( ($(date -u -d "$now" +%s) - $(date -u -d "$began" +%s)) / 86400 ))
  fi
  if [ -n "$began" ] && [ "$age_days" -ge "$rotate_days" ]; then
    say "the current key began $age_days days ago (every $rotate_days): keyctl rotate"
    "$keyctl" rotate "${flags[@]}"
  else
    say "no step due (rotation every $rotate_days days; this one began ${began:-before keyctl kept a record})"
  fi
else
  say "at the target phase: nothing to do"
fi

# 3. The gate: any error finding fails the job.
set +e
"$keyctl" doctor --project "$project" --json >"$report"
code=$?
set -e
if [ "$code" -eq 1 ]; then
  say "doctor found errors (report: $report):"
  jq -r '.findings[] | select(.severity == "error") | "  \(.code) \(.place): \(.message)\n    fix: \(.fix)"' "$report" >&2
  exit 1
elif [ "$code" -ne 0 ]; then
  exit "$code"
fi
say "doctor: $(jq -r '"\(.summary.errors) error(s), \(.summary.warnings) warning(s)"' "$report")"
