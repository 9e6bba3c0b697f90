// node `jose` as an independent JOSE implementation for keyctl's interop tests.
//   node jose_tool.mjs verify ALG TOKEN  < JWKS  exit 0 if TOKEN verifies against the set
//   node jose_tool.mjs sign ALG CLAIMS   < JWK   prints a token signed with the private JWK
//   node jose_tool.mjs pem PRIVATE.pem PUBLIC.pem  exit 0 if node's crypto loads both and they match
//   node jose_tool.mjs thumbprint < JWK  prints the RFC 7638 thumbprint
import { readFileSync } from 'node:fs';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import * as jose from 'jose';

const stdin = () => JSON.parse(readFileSync(0, 'utf8'));
const [cmd, ...args] = process.argv.slice(2);

async function verify(alg, token) {
  const jwks = stdin();
  const { kid } = jose.decodeProtectedHeader(token);
  const matches = jwks.keys.filter((k) => (kid === undefined ? k.kid === undefined : k.kid === kid));
  if (matches.length !== 1) throw new Error(`no single key for kid ${kid}`);
  const key = await jose.importJWK(matches[0], alg);
  await jose.jwtVerify(token, key, { algorithms: [alg] });
}

async function sign(alg, claims) {
  const jwk = stdin();
  // WebCrypto refuses "verify" in a private key's usages; Auth (Go) reads key_ops
  // ["sign","verify"] as upstream writes them. Import the key for signing only.
  const { key_ops, ...material } = jwk;
  const key = await jose.importJWK(material, alg);
  const token = await new jose.SignJWT(JSON.parse(claims))
    .setProtectedHeader(jwk.kid === undefined ? { alg, typ: 'JWT' } : { alg, kid: jwk.kid, typ: 'JWT' })
    .sign(key);
  process.stdout.write(token + '\n');
}

function pem(privatePath, publicPath) {
  const priv = createPrivateKey(readFileSync(privatePath));
  const pub = createPublicKey(readFileSync(publicPath));
  const a = createPublicKey(priv).export({ type: 'spki', format: 'der' });
  const b = pub.export({ type: 'spki', format: 'der' });
  if (!a.equals(b)) throw new Error('public key does not match private key');
}

async function thumbprint() {
  process.stdout.write((await jose.calculateJwkThumbprint(stdin(), 'sha256')) + '\n');
}

try {
  await ({ verify, sign, pem, thumbprint })[cmd](...args);
} catch (e) {
  process.stderr.write(`rejected: ${e.code ?? ''} ${e.message}\n`);
  process.exit(1);
}
