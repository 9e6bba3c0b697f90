#!/usr/bin/env bash
# bench-migrate.sh: one `keyctl migrate --yes` step against `openssl genpkey` (issue 12).
#
# What it measures: wall time of whole processes, timed side by side by hyperfine (no
# intermediate shell, output discarded), in ROUNDS rounds that take turns, so a load that comes
# and goes hits every command alike; the rounds' runs are pooled per command:
#
#   keyctl migrate --yes --project DIR     with KEYCTL_NOW=2026-12-01T12:00:00Z: the legacy ->
#                                          dual-verify step on the upstream fixture
#                                          (../shared/fixtures/upstream-2026-02/, never
#                                          modified: docker-compose.yml, .env.example as .env
#                                          with mode 600). It generates an ES256 key, writes
#                                          JWT_KEYS/JWT_JWKS into .env, adds the JWKS lines to
#                                          five services in the compose file, and writes its
#                                          backup and state under .keyctl/.
#   openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256
#                                          the process-cost yardstick (one P-256 key, PEM on
#                                          stdout)
#   sh add-new-auth-keys.sh --update-env   only if UPSTREAM_ADD_KEYS names a copy of upstream's
#                                          docker/utils/add-new-auth-keys.sh (supabase/supabase;
#                                          Apache-2.0, not kept in this repository), run in its
#                                          own copy of the fixture: openssl + node + grep/sed.
#
# Every step changes the files, so hyperfine's --prepare puts back a fresh copy of the project
# (fresh files and so no .keyctl/) before each keyctl and upstream run, untimed. Each command
# is run once and checked before it is timed (keyctl must reach dual-verify, openssl must print
# a private key, the upstream script must write JWT_KEYS into .env).
#
# Output (stdout): a markdown table
#
#   command | mean ± σ | median | user + sys | ratio vs openssl genpkey
#
# ratio = the command's median / openssl genpkey's median. Issue 12's goal: keyctl's step
# <= 1.5x. hyperfine's own report goes to stderr. The machine has two cores: a build running
# beside it inflates the times (the load average at the start is printed under the table).
#
# Run from anywhere in the repository:
#   scripts/bench-migrate.sh
#   UPSTREAM_ADD_KEYS=/path/to/add-new-auth-keys.sh scripts/bench-migrate.sh   (third row)
# KEYCTL=path times that binary (e.g. the static one from scripts/build-static.sh) instead of
# building the release binary.
# Tunables (environment): RUNS per command in all (default 60), ROUNDS (default 3), WARMUP
# runs per round (default 3), JSON_DIR to keep hyperfine's JSON exports there instead of a
# deleted temporary directory.
# Needs: cargo, python3, openssl, hyperfine (installed with apt-get if missing; needs root);
# node for the upstream row.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/bench-common.sh
source scripts/bench-common.sh

RUNS="${RUNS:-60}"
ROUNDS="${ROUNDS:-3}"
WARMUP="${WARMUP:-3}"
UPSTREAM_ADD_KEYS="${UPSTREAM_ADD_KEYS:-}"
bench_fixture
bench_require openssl python3 cargo
bench_hyperfine

bench_keyctl

bench_tmp

# The pristine project, and the script that restores a working copy from it.
rm -rf "$tmp/pristine"
mkdir -p "$tmp/pristine"
install -m 600 "$FIXTURE/.env.example" "$tmp/pristine/.env"
install -m 644 "$FIXTURE/docker-compose.yml" "$tmp/pristine/docker-compose.yml"
cat >"$tmp/restore.sh" <<'SH'
#!/usr/bin/env bash
# restore.sh PRISTINE WORK: WORK becomes a fresh copy of PRISTINE (so no .keyctl/ either).
set -euo pipefail
rm -rf "$2"
cp -a "$1" "$2"
SH
restore() { bash "$tmp/restore.sh" "$tmp/pristine" "$1"; }

# Check each command once before timing it.
restore "$tmp/keyctl"
"$KEYCTL" migrate --yes --project "$tmp/keyctl" >/dev/null 2>&1 || {
    echo "error: keyctl migrate --yes failed on the fixture" >&2
    exit 1
}
"$KEYCTL" migrate status --project "$tmp/keyctl" 2>&1 | grep -q 'dual-verify' || {
    echo "error: after keyctl migrate --yes the fixture is not in dual-verify" >&2
    exit 1
}
OPENSSL_CMD="openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256"
# shellcheck disable=SC2086 # word splitting of the command line is intended
[[ "$($OPENSSL_CMD 2>/dev/null)" == *"PRIVATE KEY-----"* ]] || {
    echo "error: '$OPENSSL_CMD' did not print a private key" >&2
    exit 1
}

names=("keyctl migrate --yes" "openssl genpkey P-256")
cmds=("$KEYCTL migrate --yes --project $tmp/keyctl" "$OPENSSL_CMD")
prepares=("bash $tmp/restore.sh $tmp/pristine $tmp/keyctl" "true")
upstream_note="upstream add-new-auth-keys.sh: not run (set UPSTREAM_ADD_KEYS to a copy of it)"
if [[ -n "$UPSTREAM_ADD_KEYS" ]]; then
    [[ -f "$UPSTREAM_ADD_KEYS" ]] || { echo "error: UPSTREAM_ADD_KEYS: no file $UPSTREAM_ADD_KEYS" >&2; exit 1; }
    command -v node >/dev/null 2>&1 || { echo "error: the upstream script needs node" >&2; exit 1; }
    up="$(cd "$(dirname "$UPSTREAM_ADD_KEYS")" && pwd)/$(basename "$UPSTREAM_ADD_KEYS")"
    restore "$tmp/upstream"
    (cd "$tmp/upstream" && sh "$up" --update-env >/dev/null 2>&1) || {
        echo "error: $up --update-env failed on the fixture" >&2
        exit 1
    }
    grep -q '^JWT_KEYS=\[' "$tmp/upstream/.env" || {
        echo "error: $up --update-env wrote no JWT_KEYS into .env" >&2
        exit 1
    }
    names+=("upstream add-new-auth-keys.sh --update-env")
    cmds+=("env -C $tmp/upstream sh $up --update-env")
    prepares+=("bash $tmp/restore.sh $tmp/pristine $tmp/upstream")
    upstream_note="upstream add-new-auth-keys.sh: $up, sha256 $(sha256sum "$up" | cut -d' ' -f1)"
fi

load="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"
per_round=$(((RUNS + ROUNDS - 1) / ROUNDS))
for ((round = 1; round <= ROUNDS; round++)); do
    args=()
    for i in "${!names[@]}"; do
        args+=(--prepare "${prepares[$i]}" -n "${names[$i]}" "${cmds[$i]}")
    done
    echo "== round $round of $ROUNDS" >&2
    hyperfine -N --style basic --output=null --warmup "$WARMUP" --runs "$per_round" \
        --export-json "$tmp/round-$round.json" "${args[@]}" >&2
done

python3 - "$tmp" "$ROUNDS" "$load" "$upstream_note" <<'PY'
import json, statistics, sys

tmp, rounds, load, upstream_note = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
pooled = {}
for k in range(1, rounds + 1):
    with open(f"{tmp}/round-{k}.json") as f:
        for r in json.load(f)["results"]:
            p = pooled.setdefault(r["command"], {"times": [], "cpu": []})
            p["times"] += r["times"]
            p["cpu"] += [u + s for u, s in zip(r["user"], r["system"])] if isinstance(r["user"], list) \
                else [r["user"] + r["system"]] * len(r["times"])

def fmt(t):
    if t >= 1:
        return f"{t:.2f} s"
    return f"{t * 1000:.1f} ms" if t >= 0.01 else f"{t * 1000:.2f} ms"

yard = statistics.median(pooled["openssl genpkey P-256"]["times"])
print("| command | mean ± σ | median | user + sys | ratio vs openssl genpkey |")
print("|---|---|---|---|---|")
for name, p in pooled.items():
    t = p["times"]
    mean, sd, med = statistics.mean(t), statistics.stdev(t) if len(t) > 1 else 0.0, statistics.median(t)
    print(f"| {name} ({len(t)} runs) | {fmt(mean)} ± {fmt(sd)} | {fmt(med)} | {fmt(statistics.mean(p['cpu']))} "
          f"| {med / yard:.2f}x |")
step = statistics.median(pooled["keyctl migrate --yes"]["times"]) / yard
print()
print(f"ratio = median / openssl genpkey's median. Goal (issue 12): keyctl's step ≤ 1.5x: "
      f"{'met' if step <= 1.5 else 'not met'} ({step:.2f}x).")
print(f"{upstream_note}")
print(f"load average at the start: {load}")
PY
