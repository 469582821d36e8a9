// The device registry: which devices may connect, with which secret, and what every reading of theirs
// is tagged with. Loaded once at start from a file (YAML or JSON) or from the config's inline list.
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument } from 'yaml';
import type { Family } from '@citysense/proto';
import { EdgeError } from '../errors.ts';
import { registryFileSchema, type DeviceEntry } from '../config/schema.ts';
import { formatIssues } from '../config/issues.ts';
import { credentialFromPlain, credentialFromSha256, credentialFromVerifier, type StoredCredential } from './credentials.ts';
import type { ProfileRuntime } from '../profiles/apply.ts';
import type { ProfileSet } from '../profiles/load.ts';
import type { CtwingIdentity, OnenetIdentity } from '../inputs/http-push/config.ts';

export interface Device {
  id: string;
  family: Family;
  district: string;
  /** district plus the registry's extra tags: what every reading and event of this device carries. */
  tags: Readonly<Record<string, string>>;
  /** The device's model: decoding, naming, ranges, value-based events. */
  profile: ProfileRuntime;
  /** The MQTT secret's verifier (never the secret); undefined = no MQTT login (e.g. read over OPC-UA). */
  secret: StoredCredential | undefined;
  /** HJ 212 stations: MN and the access password's (PW) verifier. */
  hj212?: { mn: string; password: StoredCredential | undefined };
  /** GB/T 26875.3 transmission devices: the 6-byte source address, 12 hex digits in wire order. */
  gb26875?: { address: string };
  /** OPC-UA devices: the server and the values of the profile's NodeId placeholders. */
  opcua?: { server: string; vars: Readonly<Record<string, string>> };
  /**
   * How the operators' IoT platforms name this device (CTWing, OneNET), for the HTTP push receivers.
   * The IMEI is personal data (it identifies a subscriber's module): it is used to find the device and
   * never written to readings, tags or logs.
   */
  push?: { ctwing?: CtwingIdentity; onenet?: OnenetIdentity };
}

/** The keys a push receiver looks a device up by (see pushKeys). */
export type PushKey = `${'ctwing' | 'onenet'}:${'id' | 'imei' | 'name'}:${string}`;

/** Every key under which a device's platform identities are found. */
export function pushKeys(push: Device['push']): PushKey[] {
  const keys: PushKey[] = [];
  const c = push?.ctwing;
  if (c?.deviceId) keys.push(`ctwing:id:${c.deviceId}`);
  if (c?.imei) keys.push(`ctwing:imei:${c.imei}`);
  const o = push?.onenet;
  if (o?.deviceId) keys.push(`onenet:id:${o.deviceId}`);
  if (o?.imei) keys.push(`onenet:imei:${o.imei}`);
  if (o?.deviceName) keys.push(`onenet:name:${o.productId ?? ''}/${o.deviceName}`);
  return keys;
}

export interface DeviceRegistry {
  get(id: string): Device | undefined;
  /** The HJ 212 station with this MN. */
  byMn(mn: string): Device | undefined;
  /** The device a platform push names (pushKeys). */
  byPushKey(key: PushKey): Device | undefined;
  /** The GB/T 26875.3 transmission device with this source address (12 hex digits, wire order). */
  byGbAddress(address: string): Device | undefined;
  all(): Iterable<Device>;
  readonly size: number;
}

function credential(c: { plain?: string | undefined; sha256?: string | undefined; hash?: string | undefined }): StoredCredential | undefined {
  if (c.hash !== undefined) return credentialFromVerifier(c.hash);
  if (c.sha256 !== undefined) return credentialFromSha256(c.sha256);
  if (c.plain !== undefined) return credentialFromPlain(c.plain);
  return undefined;
}

function toDevice(d: DeviceEntry, profile: ProfileRuntime): Device {
  const secret = credential({ plain: d.secret, sha256: d.secretSha256, hash: d.secretHash });
  const model = profile.profile.model;
  const device: Device = {
    id: d.id,
    family: d.family,
    district: d.district,
    tags: Object.freeze({ ...(model ? { model } : {}), ...d.tags, district: d.district }),
    profile,
    secret,
  };
  if (d.hj212) {
    device.hj212 = { mn: d.hj212.mn, password: credential({ plain: d.hj212.password, sha256: d.hj212.passwordSha256, hash: d.hj212.passwordHash }) };
  }
  if (d.gb26875) device.gb26875 = Object.freeze({ address: d.gb26875.address });
  if (d.opcua) device.opcua = Object.freeze({ server: d.opcua.server, vars: Object.freeze({ ...d.opcua.vars }) });
  if (d.ctwing || d.onenet) {
    device.push = Object.freeze({ ...(d.ctwing ? { ctwing: Object.freeze({ ...d.ctwing }) } : {}), ...(d.onenet ? { onenet: Object.freeze({ ...d.onenet }) } : {}) });
  }
  return Object.freeze(device);
}

/** A device's entry must fit its profile: family, and the addressing its input needs. */
function checkAgainstProfile(d: DeviceEntry, p: ProfileRuntime['profile'], at: string): string | undefined {
  if (p.family && p.family !== d.family) return `${at}.family: profile "${p.id}" is for ${p.family} devices, not ${d.family}`;
  if (p.input === 'hj212-tcp' && !d.hj212) return `${at}.hj212: profile "${p.id}" arrives over the HJ 212 listener: give hj212.mn (and hj212.password)`;
  if (p.input === 'gb26875-tcp' && !d.gb26875) return `${at}.gb26875: profile "${p.id}" arrives over the GB/T 26875.3 listener: give gb26875.address (the device's 6-byte source address, 12 hex digits)`;
  if (p.input === 'http-push' && !d.ctwing && !d.onenet) return `${at}.ctwing: profile "${p.id}" arrives by platform push: give ctwing or onenet (the platform's device id, IMEI or name)`;
  if ((d.ctwing || d.onenet) && p.format !== 'binary' && p.format !== 'json') return `${at}.profile: "${p.id}" (format ${p.format}) cannot decode a platform push (binary or json profiles only)`;
  if (p.input === 'opcua' && !d.opcua) return `${at}.opcua: profile "${p.id}" is read over OPC-UA: give opcua.server (and opcua.vars)`;
  if (p.input === 'opcua' && p.opcua) {
    for (const [metric, node] of Object.entries(p.opcua.nodes)) {
      for (const m of node.matchAll(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g)) {
        if (d.opcua?.vars[m[1]!] === undefined) return `${at}.opcua.vars.${m[1]}: profile "${p.id}" needs it for ${metric} (${node})`;
      }
    }
  }
  return undefined;
}

/** Builds a registry from validated entries; duplicate ids are refused with both positions. */
export function buildRegistry(entries: readonly DeviceEntry[], source: string, profiles: ProfileSet, pathPrefix = 'devices'): DeviceRegistry {
  const byId = new Map<string, Device>();
  const byMn = new Map<string, Device>();
  const byPush = new Map<string, Device>();
  const byGb = new Map<string, Device>();
  const firstIndex = new Map<string, number>();
  entries.forEach((e, i) => {
    const at = `${pathPrefix}[${i}]`;
    const profile = profiles.get(e.profile);
    if (!profile) {
      throw new EdgeError('PROFILE_UNKNOWN', `${source}: ${at}.profile: no profile "${e.profile}" (known: ${profiles.ids().join(', ')})`);
    }
    const misfit = checkAgainstProfile(e, profile.profile, at);
    if (misfit) throw new EdgeError('REGISTRY_INVALID', `${source}: ${misfit}`);
    const prev = firstIndex.get(e.id);
    if (prev !== undefined) {
      throw new EdgeError(
        'REGISTRY_INVALID',
        `${source}: ${pathPrefix}[${i}].id: duplicate device id "${e.id}" (also ${pathPrefix}[${prev}])`,
      );
    }
    firstIndex.set(e.id, i);
    const device = toDevice(e, profile);
    byId.set(e.id, device);
    if (device.hj212) {
      const other = byMn.get(device.hj212.mn);
      if (other) throw new EdgeError('REGISTRY_INVALID', `${source}: ${at}.hj212.mn: MN ${device.hj212.mn} is also ${other.id}'s`);
      byMn.set(device.hj212.mn, device);
    }
    if (device.gb26875) {
      const other = byGb.get(device.gb26875.address);
      if (other) throw new EdgeError('REGISTRY_INVALID', `${source}: ${at}.gb26875.address: address ${device.gb26875.address} is also ${other.id}'s`);
      byGb.set(device.gb26875.address, device);
    }
    for (const key of pushKeys(device.push)) {
      const other = byPush.get(key);
      if (other) throw new EdgeError('REGISTRY_INVALID', `${source}: ${at}: platform identity ${key.split(':').slice(0, 2).join(' ')} is also ${other.id}'s`);
      byPush.set(key, device);
    }
  });
  return { get: (id) => byId.get(id), byMn: (mn) => byMn.get(mn), byPushKey: (k) => byPush.get(k), byGbAddress: (a) => byGb.get(a.toLowerCase()), all: () => byId.values(), size: byId.size };
}

export function loadRegistryFile(file: string, profiles: ProfileSet): DeviceRegistry {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new EdgeError('REGISTRY_UNREADABLE', `${file}: ${(err as Error).message}`, { cause: err });
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new EdgeError('REGISTRY_SYNTAX', doc.errors.map((e) => `${file}: ${e.message}`).join('\n'));
  }
  const r = registryFileSchema.safeParse(doc.toJS());
  if (!r.success) {
    throw new EdgeError('REGISTRY_INVALID', '\n' + formatIssues(r.error.issues, { name: file, doc, lines }).join('\n'));
  }
  return buildRegistry(r.data.devices, file, profiles);
}

/**
 * A registry whose content can be replaced while the edge runs (the cloud's slice changed): inputs hold
 * this object and always see the current devices. Connected devices stay connected until they reconnect.
 */
export class LiveRegistry implements DeviceRegistry {
  constructor(private current: DeviceRegistry) {}
  swap(next: DeviceRegistry): void {
    this.current = next;
  }
  get(id: string): Device | undefined {
    return this.current.get(id);
  }
  byMn(mn: string): Device | undefined {
    return this.current.byMn(mn);
  }
  byPushKey(key: PushKey): Device | undefined {
    return this.current.byPushKey(key);
  }
  byGbAddress(address: string): Device | undefined {
    return this.current.byGbAddress(address);
  }
  all(): Iterable<Device> {
    return this.current.all();
  }
  get size(): number {
    return this.current.size;
  }
}
