#!/usr/bin/env python3
"""Independent token check for Kubernetes projects: what each container of the
supabase-kubernetes chart (0.7.2) receives, read from the values file and the Secret manifest
as the chart's templates render them, with PyJWT doing the cryptography.

Nothing here uses keyctl's code. The wiring is docs/KUBERNETES.md's reading of the chart's
templates (file:line there), written again here; the chart's defaults are its own values.yaml
(tests/k8s/published/values.yaml), merged under the user's file as Helm merges values (maps
merged key by key, lists and scalars replaced). Verification is tests/stacks/check_tokens.py's
per-service model (SPEC §2).

  check_chart.py check VALUES SECRET|- NOW TOKENS_JSON
      TOKENS_JSON: [{"kind": "...", "token": "..."}] that must verify at every verifier
      prints {"issued": <a session token Auth would issue now>, "lifetime": <GOTRUE_JWT_EXP>,
              "api_keys": [...], "failures": [{"service", "kind", "reason"}],
              "env": {service: {variable: value}}}
"""
import base64, json, os, sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "stacks"))
from check_tokens import Service, failures, issue, lifetime  # noqa: E402  (the shared verifier model)


def merge(base, over):
    """Helm's values merge: maps key by key, anything else replaced (a null deletes)."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            if v is None:
                out.pop(k, None)
            else:
                out[k] = merge(base.get(k), v)
        return out
    return over


def text(v):
    """A values scalar as the container gets it (Helm renders booleans as true/false)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    return "" if v is None else str(v)


class Chart:
    def __init__(self, values_path, secret_path):
        defaults = yaml.safe_load(open(os.path.join(HERE, "published", "values.yaml"), encoding="utf-8"))
        self.values = merge(defaults, yaml.safe_load(open(values_path, encoding="utf-8")) or {})
        self.secret = None
        if secret_path and secret_path != "-":
            s = yaml.safe_load(open(secret_path, encoding="utf-8"))
            assert s.get("kind") == "Secret", "not a Secret manifest"
            data = {k: base64.b64decode(v).decode() for k, v in (s.get("data") or {}).items()}
            data.update({k: text(v) for k, v in (s.get("stringData") or {}).items()})
            self.secret = (s["metadata"]["name"], data)

    def block(self, b):
        return (self.values.get("secret") or {}).get(b) or {}

    def ref(self, b):
        return text(self.block(b).get("secretRef"))

    def value(self, b, k):
        """The Secret value a `secretKeyRef` of block b, logical key k, resolves to."""
        if self.ref(b):
            key = text((self.block(b).get("secretRefKey") or {}).get(k)) or k
            name, data = self.secret or (None, {})
            if name != self.ref(b):
                raise SystemExit(f"secret.{b}.secretRef names {self.ref(b)} but the manifest is {name}")
            if key not in data:
                raise SystemExit(f"CreateContainerConfigError: key {key} missing from Secret {name}")
            return data[key]
        return text(self.block(b).get(k))

    def apikey_on(self, k):
        return bool(self.ref("apikey")) or bool(text(self.block("apikey").get(k)))

    def enabled(self, svc):
        return bool(((self.values.get("deployment") or {}).get(svc) or {}).get("enabled"))

    def env(self, svc):
        J = lambda k: self.value("jwt", k)
        A = lambda k: self.value("apikey", k)
        e = {}
        if svc == "auth":
            e["GOTRUE_JWT_SECRET"] = J("secret")
            if self.apikey_on("jwtKeys"):
                e["GOTRUE_JWT_KEYS"] = A("jwtKeys")
        elif svc == "rest":
            e["PGRST_JWT_SECRET"] = A("jwtJwks") if self.apikey_on("jwtJwks") else J("secret")
            e["PGRST_APP_SETTINGS_JWT_SECRET"] = J("secret")
        elif svc == "realtime":
            for k in ("JWT_SECRET", "METRICS_JWT_SECRET", "API_JWT_SECRET"):
                e[k] = J("secret")
            if self.apikey_on("jwtJwks"):
                e["API_JWT_JWKS"] = A("jwtJwks")
        elif svc == "storage":
            e["PGRST_JWT_SECRET"] = J("secret")
            e["AUTH_JWT_SECRET"] = J("secret")
            if self.apikey_on("jwtJwks"):
                e["JWT_JWKS"] = A("jwtJwks")
        elif svc == "functions":
            e["JWT_SECRET"] = J("secret")
        entries = (self.values.get("environment") or {}).get(svc) or []
        if isinstance(entries, dict):  # charts before 0.7: a map of variables
            entries = [{"name": k, "value": v} for k, v in entries.items()]
        for item in entries:
            if "value" in item:
                e[item["name"]] = text(item["value"])
        if svc == "realtime" and e.get("SEED_SELF_HOST") != "true":
            e.pop("API_JWT_JWKS", None)  # realtime reads the JWKS only when seeding (SPEC §7)
        return e

    def api_keys(self):
        keys = [self.value("jwt", "anonKey"), self.value("jwt", "serviceKey")]
        keys += [self.value("apikey", k) for k in ("anonKeyAsymmetric", "serviceRoleKeyAsymmetric")]
        return [k for k in keys if k]


def main(argv):
    values, secret, now, tokens = argv[2], argv[3], int(argv[4]), json.loads(argv[5])
    chart = Chart(values, secret)
    services = []
    for svc in ("auth", "rest", "realtime", "storage", "functions"):
        if not chart.enabled(svc):
            continue
        env = chart.env(svc)
        if svc == "functions" and env.get("VERIFY_JWT") != "true":
            continue  # the gateway verifies nothing then
        services.append(Service(svc, svc, env))
    auth = next(s for s in services if s.role == "auth")
    out = {"issued": issue(auth.env, now), "lifetime": lifetime(auth.env), "api_keys": chart.api_keys(),
           "failures": failures(services, tokens), "env": {s.name: s.env for s in services}}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
