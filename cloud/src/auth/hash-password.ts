// `npx tsx cloud/src/auth/hash-password.ts [--N 131072] [--r 8] [--p 1] <password>` prints an
// operators.users[].passwordHash value (scrypt; default parameters: OWASP's, see passwords.ts).
import { parseArgs } from 'node:util';
import { hashPassword, SCRYPT_PARAMS } from './passwords.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { N: { type: 'string' }, r: { type: 'string' }, p: { type: 'string' } },
});
const pw = positionals[0];
if (!pw) {
  process.stderr.write('usage: tsx cloud/src/auth/hash-password.ts [--N 131072] [--r 8] [--p 1] <password>\n');
  process.exit(2);
}
const params = { N: Number(values.N ?? SCRYPT_PARAMS.N), r: Number(values.r ?? SCRYPT_PARAMS.r), p: Number(values.p ?? SCRYPT_PARAMS.p) };
process.stdout.write(`${await hashPassword(pw, params)}\n`);
