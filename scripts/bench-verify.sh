#!/usr/bin/env bash
# Measures `keyctl token verify -` (tokens on stdin, one per line) against PyJWT verifying the
# same tokens in one Python process, side by side, as whole processes timed by hyperfine.
# The project is the bundled example migrated to an ES256 signing key (on a temporary copy);
# the tokens are ES256, signed by PyJWT with that key. Both verify each token against the
# project's JWT_JWKS by kid, as PostgREST does (`--service rest`).
# Usage: scripts/bench-verify.sh            (N=20000 tokens, RUNS=5; both can be set)
# Needs: hyperfine (installed with apt-get if missing), python3 with PyJWT (scripts/test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-20000}
RUNS=${RUNS:-5}
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine; }
cargo build --release --quiet
K=$PWD/target/release/keyctl
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
cp examples/self-hosted/.env examples/self-hosted/docker-compose.yml "$T/"
KEYCTL_NOW=2026-12-01T12:00:00Z "$K" migrate --project "$T" --yes >/dev/null
KEYCTL_NOW=2026-12-01T12:25:00Z "$K" migrate --project "$T" --yes >/dev/null
"$K" jwks --project "$T" --private --format json >"$T/sets.json"

python3 - "$T" "$N" <<'PY'
import json, sys, time, jwt
d, n = sys.argv[1], int(sys.argv[2])
sets = json.load(open(f"{d}/sets.json"))
signer = next(k for k in sets["JWT_KEYS"] if "sign" in k["key_ops"])
key = jwt.PyJWK.from_dict({k: v for k, v in signer.items() if k != "key_ops"})
now = int(time.time())
with open(f"{d}/tokens.txt", "w") as f:
    for i in range(n):
        f.write(jwt.encode({"role": "authenticated", "sub": f"user-{i}", "iat": now, "exp": now + 3600},
                           key.key, algorithm="ES256", headers={"kid": key.key_id}) + "\n")
json.dump(sets["JWT_JWKS"], open(f"{d}/jwks.json", "w"))
PY

cat >"$T/pyjwt_verify.py" <<'PY'
import json, sys, jwt
jwks = jwt.PyJWKSet.from_dict(json.load(open(sys.argv[1])))
by_kid = {k.key_id: k for k in jwks.keys}
bad = 0
for line in sys.stdin:
    token = line.strip()
    try:
        k = by_kid[jwt.get_unverified_header(token)["kid"]]
        jwt.decode(token, k.key, algorithms=[k.algorithm_name], options={"verify_aud": False})
    except Exception:
        bad += 1
sys.exit(1 if bad else 0)
PY

# Both must accept every token before they are timed.
"$K" token verify - --service rest --project "$T" <"$T/tokens.txt" >/dev/null
python3 "$T/pyjwt_verify.py" "$T/jwks.json" <"$T/tokens.txt"

# hyperfine 1.15 (Debian 12) has no --input: each command reads the file through the shell,
# the same small overhead for all three.
hyperfine --warmup 1 --runs "$RUNS" --export-json "$T/result.json" --output=null \
  -n "keyctl token verify - --service rest" "$K token verify - --service rest --project $T < $T/tokens.txt" \
  -n "PyJWT (one process)" "python3 $T/pyjwt_verify.py $T/jwks.json < $T/tokens.txt" \
  -n "keyctl token verify - (all 5 services)" "$K token verify - --project $T < $T/tokens.txt" >&2

python3 - "$T/result.json" "$N" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]; n = int(sys.argv[2])
base = r[1]["mean"]
print(f"| command ({n} ES256 tokens) | mean ± σ | per token | tokens/s | vs PyJWT |")
print("|---|---|---|---|---|")
for x in r:
    print(f"| {x['command']} | {x['mean']:.3f} s ± {x['stddev']:.3f} | {x['mean']/n*1e6:.0f} µs | {n/x['mean']:,.0f} | {base/x['mean']:.2f}x |")
print("\nvs PyJWT above 1: keyctl is faster; each keyctl row includes process start and reading the project.")
PY
