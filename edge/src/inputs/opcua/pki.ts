// The client's PKI folder: node-opcua's certificate manager over `dir` (own/, trusted/, rejected/,
// issuers/). Trust is explicit: the server certificates named in the configuration are added to
// trusted/ at start; anything else a server presents is refused (and dropped in rejected/, where an
// operator can inspect it and move it to trusted/) unless automaticallyAcceptUnknownCertificate.
import { createHash, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { OPCUACertificateManager } from 'node-opcua';
import type { OpcuaPkiConfig } from './types.ts';

/** A certificate the edge refused, as the operator needs to find and judge it. */
export interface RefusedCertificate {
  subject: string;
  /** SHA-1 of the DER, hex: what OPC-UA tools and node-opcua's file names show. */
  thumbprint: string;
  /** Where node-opcua filed it (rejected/), when found. */
  file?: string;
  status: string;
}

export interface ClientPki {
  certificateManager: OPCUACertificateManager;
  /** The rejected/ and trusted/certs/ folders (where an operator moves a checked certificate). */
  rejectedDir: string;
  trustedDir: string;
  /** The last server certificate the edge refused, and when (its rejected/ file looked up now). */
  lastRefused(): (RefusedCertificate & { at: number }) | undefined;
  /** The edge's own certificate: subject and thumbprint, for the server's trust list. */
  own: Omit<RefusedCertificate, 'status' | 'file'>;
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
  const rejectedDir = join(pki.dir, 'rejected');
  const trustedDir = join(pki.dir, 'trusted', 'certs');
  // node-opcua's client checks the server's certificate here; remembering what it refused lets the
  // edge say which certificate to trust where, instead of only "untrusted".
  let refused: { der: string; status: string; at: number } | undefined;
  const check = certificateManager.checkCertificate.bind(certificateManager) as (chain: Buffer | Buffer[]) => Promise<{ isGood(): boolean; toString(): string }>;
  (certificateManager as unknown as { checkCertificate: (chain: Buffer | Buffer[]) => Promise<unknown> }).checkCertificate = async (chain) => {
    const status = await check(chain);
    if (!status.isGood()) {
      const der = Array.isArray(chain) ? chain[0] : chain;
      if (der) refused = { der: der.toString('base64'), status: status.toString(), at: Date.now() };
    }
    return status;
  };
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
  const own = describeCertificate(new X509Certificate(readFileSync(certificateFile)).raw);
  return {
    certificateManager,
    certificateFile,
    privateKeyFile,
    applicationUri,
    rejectedDir,
    trustedDir,
    own,
    // The file is written while the check runs; look it up when asked.
    lastRefused: () => {
      if (!refused) return undefined;
      const { der, ...rest } = refused;
      return { ...rest, ...describeCertificate(Buffer.from(der, 'base64'), rejectedDir) };
    },
  };
}

/** Subject, thumbprint and (if filed) the rejected/ file of a DER certificate (or a chain's first). */
export function describeCertificate(der: Buffer, rejectedDir?: string): Omit<RefusedCertificate, 'status'> {
  const thumbprint = createHash('sha1').update(der).digest('hex');
  let subject = '?';
  try {
    // A chain is several DER certificates back to back; X509Certificate reads the first.
    subject = new X509Certificate(der).subject.replace(/\n/g, ', ');
  } catch {
    // Not parseable: the thumbprint still identifies it.
  }
  let file: string | undefined;
  if (rejectedDir) {
    try {
      const name = readdirSync(rejectedDir).find((f) => f.toLowerCase().includes(thumbprint));
      if (name) file = join(rejectedDir, name);
    } catch {
      // No rejected/ yet.
    }
  }
  return { subject, thumbprint, ...(file ? { file } : {}) };
}
