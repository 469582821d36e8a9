// The OneNET push signature and encryption (docs/protocols/onenet.md), with node:crypto. Signatures are
// compared in constant time; a key that fails to decrypt is a refusal, never a crash.
import { createDecipheriv, createHash, timingSafeEqual } from 'node:crypto';

/** OneNET (both versions): Base64(MD5(token + nonce + msg)). */
export function onenetSignature(token: string, nonce: string, msg: string): string {
  return createHash('md5').update(token + nonce + msg, 'utf8').digest('base64');
}

/**
 * Whether `given` is the signature of msg. A URL-decoded signature may have its '+' turned into spaces
 * (OneNET's URL check sends it unescaped in the query): they are put back before comparing.
 */
export function checkOnenetSignature(token: string, nonce: string, msg: string, given: string): boolean {
  const expected = Buffer.from(onenetSignature(token, nonce, msg), 'latin1');
  const got = Buffer.from(given.replace(/ /g, '+'), 'latin1');
  return got.length === expected.length && timingSafeEqual(got, expected);
}

/** Constant-time equality of two secrets of any length (path tokens). */
export function sameSecret(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

/**
 * OneNET (older) encrypted push, `enc_msg`: AES-256-CBC, key = Base64-decode(encodeKey + "="), IV = the
 * key's first 16 bytes; the plaintext is 16 random bytes, the message length (4 bytes, big-endian), the
 * message, then padding (PKCS#7 over 32-byte blocks, as the platform's receiver SDK strips it).
 */
export function decryptOnenetMsg(encMsg: string, encodeKey: string): string | undefined {
  const key = Buffer.from(encodeKey + '=', 'base64');
  if (key.length !== 32) return undefined;
  let plain: Buffer;
  try {
    const d = createDecipheriv('aes-256-cbc', key, key.subarray(0, 16));
    d.setAutoPadding(false);
    plain = Buffer.concat([d.update(Buffer.from(encMsg, 'base64')), d.final()]);
  } catch {
    return undefined;
  }
  const pad = plain[plain.length - 1] ?? 0;
  if (pad < 1 || pad > 32 || pad > plain.length) return undefined;
  plain = plain.subarray(0, plain.length - pad);
  if (plain.length < 20) return undefined;
  const len = plain.readUInt32BE(16);
  if (len > plain.length - 20) return undefined;
  return plain.subarray(20, 20 + len).toString('utf8');
}

/** OneNET Studio secure mode: AES-128-CBC with the instance's 16-character key as key and IV, PKCS#7. */
export function decryptStudioMsg(msg: string, aesKey: string): string | undefined {
  const key = Buffer.from(aesKey, 'utf8');
  if (key.length !== 16) return undefined;
  try {
    const d = createDecipheriv('aes-128-cbc', key, key);
    return Buffer.concat([d.update(Buffer.from(msg, 'base64')), d.final()]).toString('utf8');
  } catch {
    return undefined;
  }
}
