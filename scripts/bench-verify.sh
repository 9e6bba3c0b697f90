#!/usr/bin/env bash
# Measures `keyctl token verify -` (tokens on stdin, one per line) against PyJWT verifying the
# same tokens in one Python process, side by side, as whole processes timed by hyperfine.
# The project is the bundled example migrated to an ES256 signing key (on a temporary copy);
# the tokens are ES256, signed by PyJWT with that key. Both verify each token against the
# project's JWT_JWKS by kid, as PostgREST does (`--service rest`); the third row checks every
# service. A second table times keyctl on the same number of tokens with a bad signature
# (signed by another key under the same kid), which keyctl also explains ("signed with …").
# keyctl verifies on AWS-LC and uses every core (issue 12); PyJWT runs in one process.
# Usage: scripts/bench-verify.sh            (N=20000 tokens, RUNS=5; both can be set)
# Needs: hyperfine (installed with apt-get if missing), python3; PyJWT goes into .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-20000}
RUNS=${RUNS:-5}
# shellcheck source=scripts/bench-common.sh
source scripts/bench-common.sh
bench_hyperfine
bench_python PyJWT cryptography
bench_keyctl
K=$KEYCTL
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
cp examples/self-hosted/.env examples/self-hosted/docker-compose.yml "$T/"
KEYCTL_NOW=2026-12-01T12:00:00Z "$K" migrate --project "$T" --yes >/dev/null
KEYCTL_NOW=2026-12-01T12:25:00Z "$K" migrate --project "$T" --yes >/dev/null
"$K" jwks --project "$T" --private --format json >"$T/sets.json"

"$PYTHON" - "$T" "$N" <<'PY'
import json, sys, time, jwt
from cryptography.hazmat.primitives.asymmetric import ec
d, n = sys.argv[1], int(sys.argv[2])
sets = json.load(open(f"{d}/sets.json"))
signer = next(k for k in sets["JWT_KEYS"] if "sign" in k["key_ops"])
key = jwt.PyJWK.from_dict({k: v for k, v in signer.items() if k != "key_ops"})
now = int(time.time())
with open(f"{d}/tokens.txt", "w") as f:
    for i in range(n):
        f.write(jwt.encode({"role": "authenticated", "sub": f"user-{i}", "iat": now, "exp": now + 3600},
                           key.key, algorithm="ES256", headers={"kid": key.key_id}) + "\n")
other = ec.generate_private_key(ec.SECP256R1())  # not the project's key
with open(f"{d}/bad.txt", "w") as f:
    for i in range(n):
        f.write(jwt.encode({"role": "authenticated", "sub": f"user-{i}", "iat": now, "exp": now + 3600},
                           other, algorithm="ES256", headers={"kid": key.key_id}) + "\n")
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
"$PYTHON" "$T/pyjwt_verify.py" "$T/jwks.json" <"$T/tokens.txt"

# hyperfine 1.15 (Debian 12) has no --input: each command reads the file through the shell,
# the same small overhead for all three.
hyperfine --warmup 1 --runs "$RUNS" --export-json "$T/result.json" --output=null \
  -n "keyctl token verify - --service rest" "$K token verify - --service rest --project $T < $T/tokens.txt" \
  -n "PyJWT (one process)" "$PYTHON $T/pyjwt_verify.py $T/jwks.json < $T/tokens.txt" \
  -n "keyctl token verify - (all 5 services)" "$K token verify - --project $T < $T/tokens.txt" >&2

python3 - "$T/result.json" "$N" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]; n = int(sys.argv[2])
base, fastest = r[1]["mean"], r[1]["min"]
print(f"| command ({n} ES256 tokens) | mean ± σ | min | CPU (user+sys) | tokens/s (mean) | vs PyJWT (mean) | vs PyJWT (min) |")
print("|---|---|---|---|---|---|---|")
for x in r:
    print(f"| {x['command']} | {x['mean']:.3f} s ± {x['stddev']:.3f} | {x['min']:.3f} s | {x['user']+x['system']:.3f} s | {n/x['mean']:,.0f} | {base/x['mean']:.2f}x | {fastest/x['min']:.2f}x |")
print("\nvs PyJWT above 1: keyctl is faster; each keyctl row includes process start and reading the project.")
print("min: the fastest run, the figure least disturbed by other work on the machine (keyctl uses every core).")
PY

# Good against bad signatures, keyctl alone (exit 1 on the bad ones is expected: -i).
hyperfine --warmup 1 --runs "$RUNS" -i --export-json "$T/bad.json" --output=null \
  -n "good signatures" "$K token verify - --project $T < $T/tokens.txt" \
  -n "bad signatures" "$K token verify - --project $T < $T/bad.txt" >&2

python3 - "$T/bad.json" "$N" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]; n = int(sys.argv[2])
print(f"\n| keyctl token verify - (all 5 services), {n} ES256 tokens | mean ± σ | per token | tokens/s |")
print("|---|---|---|---|")
for x in r:
    print(f"| {x['command']} | {x['mean']:.3f} s ± {x['stddev']:.3f} | {x['mean']/n*1e6:.0f} µs | {n/x['mean']:,.0f} |")
print(f"\nbad / good: {r[1]['mean']/r[0]['mean']:.2f}x")
PY
