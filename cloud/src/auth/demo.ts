// The demo operators of contracts.md (admin/admin-demo, duty/duty-demo, viewer/viewer-demo), added with
// operators.demoUsers: true. Hashed with fixed salts so the hashes are stable; never for production.
import type { OperatorConfig } from '../config/schema.ts';
import { hashPassword } from './passwords.ts';

let cached: OperatorConfig[] | undefined;

export function demoOperators(): OperatorConfig[] {
  cached ??= [
    { username: 'admin', role: 'admin', passwordHash: hashPassword('admin-demo', Buffer.from('citysense-demo-1')) },
    { username: 'duty', role: 'operator', passwordHash: hashPassword('duty-demo', Buffer.from('citysense-demo-2')) },
    { username: 'viewer', role: 'viewer', passwordHash: hashPassword('viewer-demo', Buffer.from('citysense-demo-3')) },
  ];
  return cached;
}
