// The push receivers' configuration (httpPush in the edge config): one listener, one section per
// platform. A platform without its section has no route: its path answers 404.
import { isIP } from 'node:net';
import { z } from 'zod';

const positiveInt = z.number().int().positive();

/** The secret path token: the only thing that tells a CTWing push from anyone's (CTWing signs nothing). */
const pathToken = z
  .string()
  .regex(/^[A-Za-z0-9._~-]{12,128}$/, 'a path token is 12-128 URL-safe characters (letters, digits, . _ ~ -)');

/** An IPv4/IPv6 address or CIDR block (e.g. 10.0.0.0/8), as node:net BlockList takes them. */
const addressOrCidr = z.string().refine(
  (s) => {
    const [addr, bits, extra] = s.split('/');
    if (extra !== undefined || !addr || !isIP(addr)) return false;
    if (bits === undefined) return true;
    const n = Number(bits);
    return /^\d+$/.test(bits) && n <= (isIP(addr) === 4 ? 32 : 128);
  },
  { message: 'an address (1.2.3.4, ::1) or a CIDR block (10.0.0.0/8)' },
);

const common = {
  pathToken,
  /** Source addresses allowed to push (the platform's published egress ranges); empty = any. */
  allowFrom: z.array(addressOrCidr).default([]),
};

export const httpPushSchema = z
  .strictObject({
    host: z.string().default('0.0.0.0'),
    port: z.number().int().min(0).max(65535).default(8082),
    /** Checked on Content-Length before reading and while reading: a push is a few hundred bytes. */
    maxBodyBytes: positiveInt.max(16 * 1024 * 1024).default(64 * 1024),
    /** A push connection that sends nothing for this long is closed. */
    requestTimeoutMs: positiveInt.default(10_000),
    maxConnections: positiveInt.default(1_000),
    /** HTTPS: the platforms push to an https:// URL when these are given. */
    tls: z.strictObject({ cert: z.string().min(1), key: z.string().min(1) }).optional(),
    /**
     * Repeated pushes (a platform's retry, same device and sequence numbers) are stored once: keys are
     * remembered for ttlMs, at most maxEntries (the oldest go first).
     */
    dedupe: z.strictObject({ maxEntries: positiveInt.default(100_000), ttlMs: positiveInt.default(24 * 3600_000) }).prefault({}),
    /** CTWing AEP subscription push: POST /push/ctwing/{pathToken}. */
    ctwing: z.strictObject({ ...common }).optional(),
    /** OneNET (older multi-protocol / NB-IoT suite) HTTP push: GET (URL check) and POST /push/onenet/{pathToken}. */
    onenet: z
      .strictObject({
        ...common,
        /** The token set in OneNET's push configuration: signatures are Base64(MD5(token + nonce + msg)). */
        token: z.string().min(1).max(128),
        /** The EncodingAESKey of OneNET's encrypted mode (43 characters); absent = plain bodies only. */
        encodeKey: z.string().regex(/^[A-Za-z0-9+/]{43}$/, 'an encodeKey is 43 base64 characters').optional(),
      })
      .optional(),
    /** OneNET Studio HTTP push: GET (URL check) and POST /push/onenet-studio/{pathToken}. */
    onenetStudio: z
      .strictObject({
        ...common,
        token: z.string().min(1).max(128),
        /** The 16-character AES key of the instance's secure mode; absent = plain messages only. */
        aesKey: z.string().length(16, 'the OneNET Studio AES key is 16 characters').optional(),
      })
      .optional(),
  })
  .refine((c) => c.ctwing || c.onenet || c.onenetStudio, { message: 'configure at least one of ctwing, onenet, onenetStudio' });

export type HttpPushConfig = z.output<typeof httpPushSchema>;
export type HttpPushConfigInput = z.input<typeof httpPushSchema>;

// ---- registry: how a device is known on each platform (edge/src/config/schema.ts deviceSchema) ----

/** An IMEI is 15 digits (14 + Luhn check digit); personal data in the registry's sense (see model note). */
const imei = z.string().regex(/^\d{15}$/, 'an IMEI is 15 digits');
const platformId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, '1-128 letters, digits, . _ : -');

/** CTWing AEP: the platform's deviceId and/or the module's IMEI; productId narrows nothing but is checked when given. */
export const ctwingIdentitySchema = z
  .strictObject({ deviceId: platformId.optional(), imei: imei.optional(), productId: platformId.optional() })
  .refine((c) => c.deviceId !== undefined || c.imei !== undefined, { message: 'give ctwing.deviceId or ctwing.imei (or both)' });

/** OneNET: dev_id (older platform), IMEI (NB-IoT suite), or productId + deviceName (OneNET Studio). */
export const onenetIdentitySchema = z
  .strictObject({ deviceId: platformId.optional(), imei: imei.optional(), productId: platformId.optional(), deviceName: platformId.optional() })
  .refine((c) => c.deviceId !== undefined || c.imei !== undefined || c.deviceName !== undefined, {
    message: 'give onenet.deviceId, onenet.imei or onenet.deviceName (with onenet.productId)',
  })
  .refine((c) => c.deviceName === undefined || c.productId !== undefined, { message: 'onenet.deviceName needs onenet.productId (OneNET Studio names are per product)', path: ['productId'] });

export type CtwingIdentity = z.output<typeof ctwingIdentitySchema>;
export type OnenetIdentity = z.output<typeof onenetIdentitySchema>;
