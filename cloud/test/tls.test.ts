// The cloud over HTTPS with edge client certificates (mTLS), with certificates made by the openssl CLI.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeAck } from '@citysense/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testInflux, type TestInflux } from '../../e2e/setup/influx.ts';
import { parseCloudConfig } from '../src/config/load.ts';
import { startCloud, type RunningCloud } from '../src/start.ts';
import { T0, batch, envReading, protobuf, sha256Hex, silentLogger } from './helpers.ts';

let dir: string;
let influx: TestInflux;
const pem = (name: string) => readFileSync(join(dir, name));

// Another global set-up of the run (node-opcua's PKI) can leave OPENSSL_CONF naming a file that does not
// exist ("undefined"); the CLI then refuses to start, so it gets the system's default configuration.
const opensslEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'OPENSSL_CONF'));

function openssl(...args: string[]): void {
  try {
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], env: opensslEnv });
  } catch (err) {
    throw new Error(`openssl ${args.join(' ')} failed: ${String((err as { stderr?: Buffer }).stderr ?? err)}`);
  }
}

/** Key and certificate `name`, signed by `ca` (self-signed when ca is undefined). */
function makeCert(name: string, subject: string, ca: string | undefined, ext: string): void {
  openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject);
  writeFileSync(join(dir, `${name}.ext`), ext);
  const signer = ca ? ['-CA', `${ca}.crt`, '-CAkey', `${ca}.key`] : ['-signkey', `${name}.key`];
  openssl('x509', '-req', '-in', `${name}.csr`, ...signer, '-set_serial', String(Date.now() + Math.floor(Math.random() * 1e6)), '-days', '2', '-out', `${name}.crt`, '-extfile', `${name}.ext`);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'citysense-cloud-tls-'));
  const caExt = 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n';
  const clientExt = 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n';
  makeCert('ca', '/CN=citysense test edge CA', undefined, caExt);
  makeCert('rogue-ca', '/CN=someone else', undefined, caExt);
  makeCert('server', '/CN=localhost', 'ca', 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n');
  makeCert('edge-1', '/O=citysense/CN=edge-1', 'ca', clientExt);
  makeCert('gw-jinshui', '/CN=gw-jinshui-01', 'ca', clientExt);
  makeCert('unknown-edge', '/CN=edge-99', 'ca', clientExt);
  makeCert('rogue-edge-1', '/CN=edge-1', 'rogue-ca', clientExt);
  influx = await testInflux('cloud-tls');
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function start(mode: 'mtls' | 'token-or-mtls'): Promise<RunningCloud> {
  const config = parseCloudConfig({
    listen: { port: 0, tls: { cert: join(dir, 'server.crt'), key: join(dir, 'server.key'), ca: join(dir, 'ca.crt') } },
    influx: { url: influx.url, database: influx.db },
    auth: {
      mode,
      edges: [
        { id: 'edge-1', ...(mode === 'token-or-mtls' ? { tokenSha256: sha256Hex('edge-1-token') } : {}) },
        { id: 'edge-jinshui', certCn: 'gw-jinshui-01' },
      ],
    },
    metrics: { process: false },
  });
  return startCloud(config, { logger: silentLogger(), env: {} });
}

interface Answer {
  status: number;
  body: Buffer;
}

function postBatch(cloud: RunningCloud, body: Buffer, client?: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port: cloud.port,
        path: '/v1/batches',
        method: 'POST',
        ca: pem('ca.crt'),
        ...(client ? { cert: pem(`${client}.crt`), key: pem(`${client}.key`) } : {}),
        headers: { 'content-type': 'application/x-protobuf', 'content-length': String(body.length), ...headers },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('auth.mode mtls', () => {
  let cloud: RunningCloud;
  beforeAll(async () => {
    cloud = await start('mtls');
  });
  afterAll(async () => {
    await cloud?.close();
  });

  it('serves https and accepts the edge whose certificate CN is its id', async () => {
    expect(cloud.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const b = batch('edge-1', [envReading('tls-ok', T0, { pm25: 12.5 })]);
    const res = await postBatch(cloud, protobuf(b), 'edge-1');
    expect(res.status).toBe(200);
    expect(decodeAck(res.body)).toMatchObject({ seq: b.seq, accepted: 1, rejected: 0 });
    expect(await influx.query(`SELECT pm25 FROM environment WHERE device_id = 'tls-ok'`)).toEqual([{ time: T0, pm25: 12.5 }]);
  });

  it('maps a certificate CN to an edge id with certCn', async () => {
    const res = await postBatch(cloud, protobuf(batch('edge-jinshui', [])), 'gw-jinshui');
    expect(res.status).toBe(200);
  });

  it('refuses a request without a client certificate with 401', async () => {
    const res = await postBatch(cloud, protobuf(batch('edge-1', [envReading('tls-nocert', T0, { pm25: 1 })])));
    expect(res.status).toBe(401);
    expect(JSON.parse(res.body.toString())).toMatchObject({ error: 'EDGE_CERT_REFUSED' });
  });

  it('refuses a certificate from another CA with 401, even with the right CN', async () => {
    const res = await postBatch(cloud, protobuf(batch('edge-1', [envReading('tls-rogue', T0, { pm25: 1 })])), 'rogue-edge-1');
    expect(res.status).toBe(401);
    expect(JSON.parse(res.body.toString())).toMatchObject({ error: 'EDGE_CERT_REFUSED' });
    expect(await influx.query(`SELECT pm25 FROM environment WHERE device_id =~ /^tls-(rogue|nocert)$/`)).toEqual([]);
  });

  it('refuses a certificate from the right CA for an edge not in auth.edges with 401', async () => {
    const res = await postBatch(cloud, protobuf(batch('edge-99', [])), 'unknown-edge');
    expect(res.status).toBe(401);
  });

  it('refuses a certified edge uploading another edge\'s batch with 403', async () => {
    const res = await postBatch(cloud, protobuf(batch('edge-jinshui', [])), 'edge-1');
    expect(res.status).toBe(403);
    expect(JSON.parse(res.body.toString())).toMatchObject({ error: 'EDGE_ID_MISMATCH' });
  });

  it('ignores bearer tokens in mtls mode', async () => {
    const res = await postBatch(cloud, protobuf(batch('edge-1', [])), undefined, { authorization: 'Bearer edge-1-token' });
    expect(res.status).toBe(401);
  });
});

describe('auth.mode token-or-mtls', () => {
  let cloud: RunningCloud;
  beforeAll(async () => {
    cloud = await start('token-or-mtls');
  });
  afterAll(async () => {
    await cloud?.close();
  });

  it('accepts a bearer token without a client certificate, and a certificate without a token', async () => {
    const byToken = await postBatch(cloud, protobuf(batch('edge-1', [])), undefined, { authorization: 'Bearer edge-1-token' });
    expect(byToken.status).toBe(200);
    const byCert = await postBatch(cloud, protobuf(batch('edge-1', [])), 'edge-1');
    expect(byCert.status).toBe(200);
  });

  it('refuses a wrong token even when a valid certificate is presented', async () => {
    const res = await postBatch(cloud, protobuf(batch('edge-1', [])), 'edge-1', { authorization: 'Bearer wrong' });
    expect(res.status).toBe(401);
    expect(JSON.parse(res.body.toString())).toMatchObject({ error: 'EDGE_AUTH_INVALID' });
  });
});
