"""PyJWT (with cryptography) as an independent JOSE implementation for keyctl's interop tests.

  pyjwt_tool.py verify ALG TOKEN   < JWKS   exit 0 if TOKEN verifies against the {"keys":[...]} set
  pyjwt_tool.py sign ALG CLAIMS    < JWK    prints a token signed with the private JWK (kid in header)
  pyjwt_tool.py pem PRIVATE.pem PUBLIC.pem  exit 0 if cryptography loads both and they match
  pyjwt_tool.py verify-all < {"jwks":…,"tokens":[…]}  one line per token: ok / rejected: reason
"""
import json
import sys

import jwt
from cryptography.hazmat.primitives import serialization


def verify(alg, token):
    jwks = jwt.PyJWKSet.from_dict(json.load(sys.stdin))
    kid = jwt.get_unverified_header(token).get("kid")
    if kid is None:
        candidates = [k for k in jwks.keys if k.key_id is None]
    else:
        candidates = [k for k in jwks.keys if k.key_id == kid]
    if len(candidates) != 1:
        print(f"no single key for kid {kid!r}", file=sys.stderr)
        return 1
    try:
        jwt.decode(token, candidates[0].key, algorithms=[alg], options={"verify_aud": False})
    except jwt.PyJWTError as e:
        print(f"rejected: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


def verify_all():
    """stdin: {"jwks": {...}, "tokens": [...]}; prints one line per token: ok or the reason."""
    req = json.load(sys.stdin)
    jwks = jwt.PyJWKSet.from_dict(req["jwks"])
    for token in req["tokens"]:
        header = jwt.get_unverified_header(token)
        kid = header.get("kid")
        # PostgREST >= 13: a kid selects its key; a token without kid is tried against every key.
        keys = [k for k in jwks.keys if k.key_id == kid] if kid is not None else list(jwks.keys)
        # The algorithm is pinned by the key, never taken from the token alone.
        keys = [k for k in keys if k.algorithm_name == header.get("alg")]
        verdict = "rejected: no key"
        for k in keys:
            try:
                # Expiry is judged by the caller against its own (KEYCTL_NOW) clock.
                jwt.decode(token, k.key, algorithms=[header["alg"]],
                           options={"verify_aud": False, "verify_iat": False, "verify_exp": False})
                verdict = "ok"
                break
            except jwt.PyJWTError as e:
                verdict = f"rejected: {type(e).__name__}"
        print(verdict)
    return 0


def sign(alg, claims):
    jwk = jwt.PyJWK.from_dict(json.load(sys.stdin))
    # A kid-less key (the legacy secret) signs a kid-less token, as Auth does.
    headers = {"kid": jwk.key_id} if jwk.key_id is not None else None
    print(jwt.encode(json.loads(claims), jwk.key, algorithm=alg, headers=headers))
    return 0


def pem(private_path, public_path):
    with open(private_path, "rb") as f:
        private = serialization.load_pem_private_key(f.read(), password=None)
    with open(public_path, "rb") as f:
        public = serialization.load_pem_public_key(f.read())
    spki = serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    return 0 if private.public_key().public_bytes(*spki) == public.public_bytes(*spki) else 1


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    sys.exit({"verify": verify, "verify-all": verify_all, "sign": sign, "pem": pem}[cmd](*args))
