// node `jose` as an independent reader and writer of keyctl's encrypted key backups
// (a compact JWE, PBES2-HS256+A128KW + A256GCM), for keyctl's interop tests.
//   node backup_tool.mjs decrypt JWE_FILE PASSWORD_FILE        prints the protected header and the
//                                                              payload as one JSON object
//   node backup_tool.mjs encrypt ENC PASSWORD_FILE < PAYLOAD   prints a JWE (600000 iterations)
// The password is the first line of PASSWORD_FILE, as keyctl reads --password-file.
import { readFileSync } from 'node:fs';
import * as jose from 'jose';

const [cmd, ...args] = process.argv.slice(2);
const password = (path) => new TextEncoder().encode(readFileSync(path, 'utf8').split('\n')[0]);

async function decrypt(jweFile, passwordFile) {
  const jwe = readFileSync(jweFile, 'utf8').trim();
  // jose refuses more than 10000 PBES2 iterations unless told otherwise.
  const { plaintext, protectedHeader } = await jose.compactDecrypt(jwe, password(passwordFile), {
    maxPBES2Count: 1_000_000,
    keyManagementAlgorithms: ['PBES2-HS256+A128KW'],
    contentEncryptionAlgorithms: ['A256GCM', 'A128GCM'],
  });
  const payload = JSON.parse(new TextDecoder().decode(plaintext));
  process.stdout.write(JSON.stringify({ header: protectedHeader, payload }) + '\n');
}

async function encrypt(enc, passwordFile) {
  const payload = readFileSync(0);
  const jwe = await new jose.CompactEncrypt(payload)
    .setProtectedHeader({ alg: 'PBES2-HS256+A128KW', enc })
    .setKeyManagementParameters({ p2c: 600_000 })
    .encrypt(password(passwordFile));
  process.stdout.write(jwe + '\n');
}

try {
  await ({ decrypt, encrypt })[cmd](...args);
} catch (e) {
  process.stderr.write(`rejected: ${e.code ?? ''} ${e.message}\n`);
  process.exit(1);
}
