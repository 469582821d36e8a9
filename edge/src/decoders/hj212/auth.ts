// Station password check (HJ 212-2017 PW field). Constant-time so the edge does not leak, byte by
// byte, how much of a guessed password was right to whoever can reach its TCP port.
import { createHash, timingSafeEqual } from 'node:crypto';
import { HJ212_ERRORS } from './errors.ts';
import type { Hj212Frame } from './frame.ts';
import type { CheckResult, CredentialChecker, StoredCredential } from '../../registry/credentials.ts';

export type PasswordCheck = { ok: true } | { ok: false; code: 'HJ212_BAD_PASSWORD'; message: string };

export function checkPassword(frame: Pick<Hj212Frame, 'pw' | 'mn'>, expected: string): PasswordCheck {
  return checkPasswordHash(frame, createHash('sha256').update(String(expected), 'utf8').digest());
}

/** The same check against the SHA-256 the registry stores (the plain password is never kept). */
export function checkPasswordHash(frame: Pick<Hj212Frame, 'pw' | 'mn'>, expectedSha256: Buffer): PasswordCheck {
  // Hashing first gives equal-length inputs, so the length of the password does not leak either.
  const a = createHash('sha256').update(String(frame.pw), 'utf8').digest();
  if (expectedSha256.length === a.length && timingSafeEqual(a, expectedSha256)) return { ok: true };
  return {
    ok: false,
    code: 'HJ212_BAD_PASSWORD',
    message: `${HJ212_ERRORS.HJ212_BAD_PASSWORD}: MN ${frame.mn}; set the same PW on the data logger and in the device's profile`,
  };
}

/**
 * The listener's check: the PW against the station's salted verifier (or nothing, for an unknown MN,
 * which then costs the same as a wrong PW). 'busy' when too many checks wait (a login flood).
 */
export function checkStationPassword(checker: CredentialChecker, stored: StoredCredential | undefined, pw: string | undefined): Promise<CheckResult> {
  return checker.check(stored, Buffer.from(String(pw ?? ''), 'utf8'));
}
