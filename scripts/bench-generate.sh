#!/usr/bin/env bash
# bench-generate.sh: whole-process key generation, keyctl against the openssl CLI.
#
# What it measures: wall time of one complete process run (exec, key generation, PEM
# encoding, exit) for each pair below, timed side by side by hyperfine with warmup runs,
# no intermediate shell (-N) and output discarded (/dev/null):
#
#   ES256    keyctl generate --alg ES256 --format pem
#            openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256
#   EdDSA    keyctl generate --alg EdDSA --format pem
#            openssl genpkey -algorithm ed25519
#   RS256    keyctl generate --alg RS256 --rsa-bits 2048 --format pem
#            openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048
#
# keyctl's PEM output holds the private key and the public key (and picks a random kid);
# openssl genpkey prints the private key only. So keyctl does slightly more work per run.
#
# It builds `cargo build --release` first, installs hyperfine with apt-get if it is missing
# (needs root), exports hyperfine's JSON into a temporary directory and prints a markdown
# table on stdout (hyperfine's own report goes to stderr):
#
#   operation | keyctl mean ± σ | openssl mean ± σ | ratio
#
# ratio = openssl mean / keyctl mean (above 1: keyctl is faster), ± propagated from both σ.
#
# Run from anywhere in the repository:
#   scripts/bench-generate.sh
# Tunables (environment): WARMUP (default 5), RUNS for ES256/EdDSA (default 100),
# RSA_RUNS for RS256 (default 30; RSA key generation time is random, so it is noisy),
# JSON_DIR to keep hyperfine's JSON exports there instead of a deleted temporary directory.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/bench-common.sh
source scripts/bench-common.sh

WARMUP="${WARMUP:-5}"
RUNS="${RUNS:-100}"
RSA_RUNS="${RSA_RUNS:-30}"

bench_hyperfine
bench_require openssl python3 cargo

bench_keyctl

bench_tmp

# bench NAME RUNS KEYCTL_ARGS OPENSSL_ARGS: one hyperfine comparison, JSON to $tmp/NAME.json.
bench() {
    local name="$1" runs="$2" keyctl_cmd="$KEYCTL $3" openssl_cmd="openssl $4"
    # Check both commands really produce a private key before timing them.
    # shellcheck disable=SC2086 # word splitting of the command lines is intended
    for cmd in "$keyctl_cmd" "$openssl_cmd"; do
        if [[ "$($cmd 2>/dev/null)" != *"PRIVATE KEY-----"* ]]; then
            echo "error: '$cmd' did not print a PKCS#8 private key" >&2
            exit 1
        fi
    done
    echo "== $name" >&2
    hyperfine -N --style basic --output=null \
        --warmup "$WARMUP" --runs "$runs" \
        --export-json "$tmp/$name.json" \
        -n keyctl "$keyctl_cmd" \
        -n openssl "$openssl_cmd" >&2
}

bench ES256 "$RUNS" "generate --alg ES256 --format pem" \
    "genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256"
bench EdDSA "$RUNS" "generate --alg EdDSA --format pem" \
    "genpkey -algorithm ed25519"
bench RS256-2048 "$RSA_RUNS" "generate --alg RS256 --rsa-bits 2048 --format pem" \
    "genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048"

python3 - "$tmp" ES256 EdDSA RS256-2048 <<'PY'
import json, math, sys

tmp, names = sys.argv[1], sys.argv[2:]

def fmt(seconds):
    return f"{seconds * 1000:.1f} ms" if seconds >= 0.01 else f"{seconds * 1000:.2f} ms"

print("| operation | keyctl mean ± σ | openssl mean ± σ | ratio |")
print("|---|---|---|---|")
for name in names:
    with open(f"{tmp}/{name}.json") as f:
        results = {r["command"]: r for r in json.load(f)["results"]}
    k, o = results["keyctl"], results["openssl"]
    km, ks, om, os_ = k["mean"], k["stddev"] or 0.0, o["mean"], o["stddev"] or 0.0
    ratio = om / km
    ratio_sd = ratio * math.sqrt((ks / km) ** 2 + (os_ / om) ** 2)
    runs = len(k["times"])
    print(
        f"| {name} keygen ({runs} runs) | {fmt(km)} ± {fmt(ks)} | {fmt(om)} ± {fmt(os_)} "
        f"| {ratio:.2f} ± {ratio_sd:.2f} |"
    )
print()
print("ratio = openssl mean / keyctl mean (above 1: keyctl is faster)")
PY
