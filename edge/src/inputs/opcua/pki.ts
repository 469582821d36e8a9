// The client's PKI folder: node-opcua's certificate manager over `dir` (own/, trusted/, rejected/,
// issuers/). Trust is explicit: the server certificates named in the configuration are added to
// trusted/ at start; anything else a server presents is refused (and dropped in rejected/, where an
// operator can inspect it and move it to trusted/) unless automaticallyAcceptUnknownCertificate.
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { OPCUACertificateManager } from 'node-opcua';
import type { OpcuaPkiConfig } from './types.ts';

export interface ClientPki {
  certificateManager: OPCUACertificateManager;
  certificateFile: string;
  privateKeyFile: string;
  /** Must equal the URI in the certificate's subjectAltName, or servers refuse the session. */
  applicationUri: string;
}

/** The application URI in a certificate's subjectAltName, if any. */
export function applicationUriOf(certificate: Buffer): string | undefined {
  const san = new X509Certificate(certificate).subjectAltName ?? '';
  return /URI:([^,\s]+)/.exec(san)?.[1];
}

export async function openClientPki(pki: OpcuaPkiConfig): Promise<ClientPki> {
  mkdirSync(pki.dir, { recursive: true });
  const certificateManager = new OPCUACertificateManager({
    rootFolder: pki.dir,
    automaticallyAcceptUnknownCertificate: pki.automaticallyAcceptUnknownCertificate,
    keySize: 2048,
  });
  await certificateManager.initialize();
  for (const file of pki.trustedServerCertificates ?? []) {
    let der: Buffer;
    try {
      der = new X509Certificate(readFileSync(file)).raw;
    } catch (err) {
      throw new Error(`opcua: pki.trustedServerCertificates: ${file} is not a readable PEM or DER certificate: ${(err as Error).message}`);
    }
    // trustCertificate rather than a file copy: the manager indexes trusted/ when it starts.
    await certificateManager.trustCertificate(der);
  }
  let certificateFile = pki.certificateFile;
  let privateKeyFile = pki.privateKeyFile;
  if ((certificateFile === undefined) !== (privateKeyFile === undefined)) {
    throw new Error('opcua: pki.certificateFile and pki.privateKeyFile go together: give both or neither');
  }
  if (!certificateFile || !privateKeyFile) {
    // First use: a self-signed certificate for this edge, kept in own/ and reused on later starts.
    certificateFile = join(pki.dir, 'own', 'certs', 'client_certificate.pem');
    privateKeyFile = certificateManager.privateKey;
    if (!existsSync(certificateFile)) {
      await certificateManager.createSelfSignedCertificate({
        applicationUri: `urn:citysense:edge:${hostname()}`,
        subject: `/CN=citysense-edge@${hostname()}/O=citysense`,
        dns: [hostname()],
        startDate: new Date(Date.now() - 3600_000),
        validity: 3650,
        outputFile: certificateFile,
      });
    }
  }
  let applicationUri: string | undefined;
  try {
    applicationUri = applicationUriOf(readFileSync(certificateFile));
  } catch (err) {
    throw new Error(`opcua: the client certificate ${certificateFile} cannot be read: ${(err as Error).message}`);
  }
  if (!applicationUri) throw new Error(`opcua: the client certificate ${certificateFile} has no application URI in its subjectAltName`);
  return { certificateManager, certificateFile, privateKeyFile, applicationUri };
}
