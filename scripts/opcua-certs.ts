// OPC-UA application certificates made with node-opcua's own certificate manager: for the tests' PKI
// (e2e/setup/opcua-pki.global.ts) and the demo stack's elevator controller and edge (scripts/demo.ts).
import { OPCUACertificateManager } from 'node-opcua';
import { join } from 'node:path';

export interface OpcuaIdentity {
  /** The PKI folder the certificate was made in (own/, trusted/, rejected/). */
  dir: string;
  certificateFile: string;
  privateKeyFile: string;
  applicationUri: string;
}

/** A self-signed application certificate and key in `root/name` (a fresh PKI folder). */
export async function makeOpcuaIdentity(root: string, name: string, applicationUri: string, validityDays = 30): Promise<OpcuaIdentity> {
  const dir = join(root, name);
  const cm = new OPCUACertificateManager({ rootFolder: dir, automaticallyAcceptUnknownCertificate: false, disableFileWatchers: true, keySize: 2048 });
  await cm.initialize();
  const certificateFile = join(dir, 'own', 'certs', `${name}_certificate.pem`);
  await cm.createSelfSignedCertificate({
    applicationUri,
    subject: `/CN=citysense-${name}/O=citysense`,
    dns: ['localhost'],
    startDate: new Date(Date.now() - 24 * 3600_000),
    validity: validityDays,
    outputFile: certificateFile,
  });
  const privateKeyFile = cm.privateKey;
  await cm.dispose();
  return { dir, certificateFile, privateKeyFile, applicationUri };
}

