#!/usr/bin/env bash
# bench-common.sh: what every scripts/bench-*.sh needs, sourced (not run) from the repository
# root: the tools checked, hyperfine installed when missing, the release binary built from
# Cargo.lock where cargo builds (CARGO_TARGET_DIR honoured), Python clients from the
# repository's .venv (made by scripts/test.sh, or here), and a scratch directory.
# The variables it sets (KEYCTL, PYTHON, tmp) are for the sourcing script.
# shellcheck disable=SC2034

# bench_require TOOL...: stop with one line when a tool is missing.
bench_require() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 || { echo "error: $tool is required" >&2; exit 1; }
    done
}

# bench_hyperfine: install hyperfine with apt-get when it is missing (needs root).
bench_hyperfine() {
    if ! command -v hyperfine >/dev/null 2>&1; then
        echo "hyperfine not found: installing it with apt-get" >&2
        apt-get update >&2
        apt-get install -y hyperfine >&2
    fi
}

# bench_python PACKAGE...: sets PYTHON to the .venv's python3, made and given the packages
# (pip names) when they are missing; never the system's Python (PEP 668).
bench_python() {
    if [[ ! -x .venv/bin/python3 ]]; then
        python3 -m venv .venv >&2
    fi
    PYTHON="$PWD/.venv/bin/python3"
    if [[ $# -gt 0 ]]; then
        "$PYTHON" -m pip install --quiet --disable-pip-version-check "$@" >&2
    fi
}

# bench_keyctl: builds the release binary (--locked) and sets KEYCTL to it.
bench_keyctl() {
    if [[ -n "${KEYCTL:-}" ]]; then
        [[ -x "$KEYCTL" ]] || { echo "error: KEYCTL=$KEYCTL is not an executable" >&2; exit 2; }
        KEYCTL="$(cd "$(dirname "$KEYCTL")" && pwd)/$(basename "$KEYCTL")"
        return
    fi
    cargo build --release --locked --quiet >&2
    local target_dir
    target_dir="$(cargo metadata --format-version 1 --no-deps --locked |
        python3 -c 'import json,sys;print(json.load(sys.stdin)["target_directory"])')"
    KEYCTL="$target_dir/release/keyctl"
}

# bench_tmp: sets tmp to JSON_DIR (kept) or to a temporary directory removed on exit.
bench_tmp() {
    if [[ -n "${JSON_DIR:-}" ]]; then
        mkdir -p "$JSON_DIR"
        tmp="$(cd "$JSON_DIR" && pwd)"
    else
        tmp="$(mktemp -d)"
        trap 'rm -rf "$tmp"' EXIT
    fi
}

# bench_fixture: sets FIXTURE to the upstream fixture (never modified) and the clock the
# migration benchmarks run at; stops when ../shared is not beside the checkout.
bench_fixture() {
    FIXTURE="$PWD/../shared/fixtures/upstream-2026-02"
    export KEYCTL_NOW=2026-12-01T12:00:00Z
    [[ -f "$FIXTURE/.env.example" && -f "$FIXTURE/docker-compose.yml" ]] || {
        echo "error: fixture not found at $FIXTURE" >&2
        exit 1
    }
}
