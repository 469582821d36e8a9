// The demo operators of contracts.md (admin/admin-demo, duty/duty-demo, viewer/viewer-demo), added with
// operators.demoUsers: true; never for production. The hashes are written out (scrypt at OWASP's
// parameters, salts "citysense-demo-1..3") rather than computed, so starting the demo costs no hashing;
// cloud/test/auth-operators.test.ts checks that each verifies its password.
import type { OperatorConfig } from '../config/schema.ts';

export const DEMO_OPERATORS: readonly OperatorConfig[] = Object.freeze([
  { username: 'admin', role: 'admin', passwordHash: 'scrypt$131072$8$1$Y2l0eXNlbnNlLWRlbW8tMQ==$RGUogDYVYwewZLmSpGPODuUR0gsHCmZrtyZez7rqGXk=' },
  { username: 'duty', role: 'operator', passwordHash: 'scrypt$131072$8$1$Y2l0eXNlbnNlLWRlbW8tMg==$s8Gax1+xO/qouyiRw9r1HVZ9U3SRa/8X0UrsU+kFmog=' },
  { username: 'viewer', role: 'viewer', passwordHash: 'scrypt$131072$8$1$Y2l0eXNlbnNlLWRlbW8tMw==$UmalJd3GdwKVnUavxvfStV18XFR1+7ipby4sKjwjF1s=' },
]);
