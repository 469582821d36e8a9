// Vitest global set-up: OPC-UA certificates made once per test run, into a temporary folder, with
// node-opcua's own certificate manager. Making them inside each test would cost key generation every
// time and, worse, let two test files race on one PKI folder's lock. Tests copy nothing from here by
// hand: they pass the files as certificateFile/privateKeyFile and as explicitly trusted certificates,
// each with a PKI folder of its own.
//
//   client  the edge's certificate; the server PKI trusts it
//   server  the simulated controller's certificate; the client trusts it
//   rogue   another server certificate that nobody trusts (the "untrusted server" test)
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { makeOpcuaIdentity, type OpcuaIdentity } from '../../scripts/opcua-certs.ts';
import type { TestProject } from 'vitest/node';

export type OpcuaTestIdentity = OpcuaIdentity;

export interface OpcuaTestPki {
  root: string;
  client: OpcuaTestIdentity;
  server: OpcuaTestIdentity;
  rogue: OpcuaTestIdentity;
}

export default async function setup(project: TestProject) {
  const root = mkdtempSync(join(tmpdir(), 'citysense-test-opcua-pki-'));
  const client = await makeOpcuaIdentity(root, 'client', 'urn:citysense:edge:test');
  const server = await makeOpcuaIdentity(root, 'server', 'urn:citysense:elevator-sim:test');
  const rogue = await makeOpcuaIdentity(root, 'rogue', 'urn:citysense:elevator-sim:rogue');
  // Explicit trust both ways (the rogue is trusted by nobody).
  copyFileSync(server.certificateFile, join(client.dir, 'trusted', 'certs', basename(server.certificateFile)));
  copyFileSync(client.certificateFile, join(server.dir, 'trusted', 'certs', basename(client.certificateFile)));
  copyFileSync(client.certificateFile, join(rogue.dir, 'trusted', 'certs', basename(client.certificateFile)));
  const pki: OpcuaTestPki = { root, client, server, rogue };
  project.provide('opcuaPki', pki);
  return () => {
    rmSync(root, { recursive: true, force: true });
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    opcuaPki: OpcuaTestPki;
  }
}
