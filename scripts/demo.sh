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

say "keyctl generate --alg ES256 --format pem --out $T/keys"
mkdir "$T/keys"
"$K" generate --alg ES256 --format pem --out "$T/keys"

say "keyctl jwks --key keys/private.pem --legacy-secret-env JWT_SECRET --signing-kid legacy   (dual-verify sets; shortened)"
# The legacy secret comes from the environment, never from the command line.
JWT_SECRET=$(sed -n 's/^JWT_SECRET=//p' "$T/.env") \
  "$K" jwks --key "$T/keys/private.pem" --legacy-secret-env JWT_SECRET --signing-kid legacy >"$T/dual.env"
short <"$T/dual.env"

say "keyctl jwks --check on the project with those sets appended"
cat "$T/dual.env" >>"$T/.env"
"$K" jwks --check --project "$T"

say "keyctl jwks --project $T --format json   (what PostgREST, Realtime, Storage and Edge Functions read)"
"$K" jwks --project "$T" --format json | short
