// `npx tsx cloud/src/auth/hash-password.ts <password>` prints an operators.users[].passwordHash value.
import { hashPassword } from './passwords.ts';

const pw = process.argv[2];
if (!pw) {
  process.stderr.write('usage: tsx cloud/src/auth/hash-password.ts <password>\n');
  process.exit(2);
}
process.stdout.write(`${hashPassword(pw)}\n`);
