// Issue 14, certificates: a controller whose certificate was renewed is handled like a first connection
// (refused, filed in <pki.dir>/rejected/, connected once an operator moves it to trusted/certs/, without a
// restart), and a refusal names the side that refused and the certificate to trust where. Real node-opcua
// server and client over TCP; the renewed certificate is made once for this file (key generation is slow).
import { readdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVICE_MODE } from '../../device-sim/src/elevator/car.ts';
import { startElevatorServer } from '../../device-sim/src/transports/opcua-server.ts';
import { makeOpcuaIdentity, type OpcuaIdentity } from '../../scripts/opcua-certs.ts';
import { describeCertificate } from '../src/inputs/opcua/pki.ts';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { bindingsFor, logRecovery, pki, removeTempDirs, serverConfig, simOptions, startInput, tempDir, waitFor } from './opcua-kit.ts';

const RECOVERY_TIMEOUT_MS = 4000;
const MARGIN_MS = 15_000;
let renewed: OpcuaIdentity;

beforeAll(async () => {
  // The same application (URI) with a new key and certificate, as a controller's renewal makes.
  renewed = await makeOpcuaIdentity(tempDir('renewed'), 'server-renewed', pki.server.applicationUri);
});
afterAll(removeTempDirs);

const thumbprintOf = (file: string) => describeCertificate(new X509Certificate(readFileSync(file)).raw).thumbprint;

describe('OPC-UA certificates', () => {
  it('a renewed server certificate: refused and filed in rejected/, connected once moved to trusted/certs/, no restart', async () => {
    const sim = await startElevatorServer(simOptions({ identity: 'server' }));
    const h = await startInput([serverConfig('ctrl', sim.endpoint, { recoveryTimeoutMs: RECOVERY_TIMEOUT_MS, maxSilenceMs: 2500 })], bindingsFor('ctrl', 1));
    try {
      await waitFor('connected', () => h.input.status()[0]?.state === 'connected' && h.samples.length > 0, 30_000);
      const renewedAt = Date.now();
      await sim.restart({ certificateFile: renewed.certificateFile, privateKeyFile: renewed.privateKeyFile });
      // node-opcua's reconnection keeps the old certificate; the bounded recovery starts from scratch,
      // fetches the endpoints again and checks the new certificate like a first connection's.
      const refused = await waitFor(
        'the renewed certificate refused, before the configured deadline',
        () => {
          const st = h.input.status()[0];
          return st?.state === 'down' ? st : undefined;
        },
        RECOVERY_TIMEOUT_MS + MARGIN_MS,
        () => JSON.stringify(h.input.status()),
      );
      logRecovery('renewed server certificate: restart → refusal reported', Date.now() - renewedAt, RECOVERY_TIMEOUT_MS);
      const thumbprint = thumbprintOf(renewed.certificateFile);
      expect(refused.lastError).toMatch(/^server_certificate_untrusted: the edge refused the server's certificate/);
      expect(refused.lastError).toContain(thumbprint);
      expect(refused).toMatchObject({ healthy: false, problem: 'needs_operator', connected: false });
      expect(refused.recoveries).toBeGreaterThanOrEqual(1);
      const rejected = await waitFor('the certificate in rejected/', () => readdirSync(join(h.pkiDir, 'rejected')).find((f) => f.includes(thumbprint)));
      expect(refused.lastError).toContain(join(h.pkiDir, 'rejected', rejected));
      expect(h.warnings).toContain('opcua_server_certificate_untrusted');

      // The operator checks it and moves it, as the docs say; the edge is not restarted.
      const trustedAt = Date.now();
      renameSync(join(h.pkiDir, 'rejected', rejected), join(h.pkiDir, 'trusted', 'certs', rejected));
      await waitFor('connected with the renewed certificate', () => h.input.status()[0]?.state === 'connected' && h.input.status()[0]?.healthy, 60_000, () => JSON.stringify(h.input.status()));
      logRecovery('renewed server certificate: moved to trusted/ → connected', Date.now() - trustedAt, 1000 /* reconnect.maxDelayMs */);
      const from = h.samples.length;
      sim.car(1).setServiceMode(SERVICE_MODE.inspection);
      await waitFor('values again', () => h.samples.slice(from).find((s) => s.sample.values.service_mode === SERVICE_MODE.inspection));
    } finally {
      await h.input.close();
      await sim.stop();
    }
  }, 120_000);

  it('a controller that does not trust the edge: reported as the server refusing the edge\'s certificate, with what to trust where', async () => {
    const options = simOptions({ identity: 'server' });
    const sim = await startElevatorServer({ ...options, pki: { ...options.pki, trustedClientCertificates: [] } });
    const h = await startInput([serverConfig('ctrl', sim.endpoint)], bindingsFor('ctrl', 1));
    try {
      const st = await waitFor('refusal', () => {
        const s = h.input.status()[0];
        return s?.state === 'down' ? s : undefined;
      }, 30_000, () => JSON.stringify(h.input.status()));
      expect(st.lastError).toMatch(/^client_rejected: the server refused the edge's certificate \(.*CN=citysense-client.*SHA-1 [0-9a-f]{40}\): add .* to the controller's trusted certificates/);
      expect(st.lastError).toContain(thumbprintOf(pki.client.certificateFile));
      expect(st.lastError).toContain(pki.client.certificateFile);
      expect(st.lastError).not.toMatch(/edge refused/);
      expect(await h.metric('citysense_edge_opcua_session_errors_total', { server: 'ctrl', reason: 'client_rejected' })).toBeGreaterThan(0);
      expect(await h.metric('citysense_edge_opcua_session_errors_total', { server: 'ctrl', reason: 'server_certificate_untrusted' })).toBe(0);
      // The edge refused nothing: its rejected/ is empty.
      expect(readdirSync(join(h.pkiDir, 'rejected'))).toEqual([]);
      expect(h.samples).toEqual([]);
    } finally {
      await h.input.close();
      await sim.stop();
    }
  }, 60_000);
});
