// Personal data in the registry (issue 11; PIPL): which fields are personal, how they are masked for
// viewers and operators, and the reference that stands for them in the audit log.
//
//   field              class                    masked as
//   owner_unit         name of a person or unit  first characters, then ****        王**** / Zhengz****
//   location.address   address                   first characters, then ****        郑州市金水**** 
//   ctwing.imei        subscriber module id      TAC (8 digits) + *******          86000000*******
//   onenet.imei        subscriber module id      same
//   (IMSI)             subscriber id             reserved: the registry never stores one
//   any of them that is a phone number          138****5678
//
// Not personal: id, family, district, profile, site (a site code), lat/lon (of the device's mounting
// point, not of a person; kept whole for maps), expected interval, edge, tags, HJ 212 MN, OPC-UA server,
// the platforms' device ids and product ids (they name a device, not its subscriber).
//
// Admins see the values whole, and each such read is written to the audit log (action
// `device.personal_read`, the device ids and the fields, never the values). Audit details of registry
// changes carry the masked values only; a deleted device's row, and with it its personal data, is gone.
import type { DeviceRecord } from './model.ts';

export type PersonalClass = 'name' | 'address' | 'imei';

/** The registry's personal fields, by path. */
export const PERSONAL_FIELDS: Readonly<Record<string, PersonalClass>> = Object.freeze({
  owner_unit: 'name',
  'location.address': 'address',
  'ctwing.imei': 'imei',
  'onenet.imei': 'imei',
});

const PHONE = /^\+?[\d][\d -]{6,18}\d$/;

/** One value masked by its class; a phone number keeps its first 3 and last 4 digits (138****5678). */
export function maskValue(cls: PersonalClass, v: string): string {
  const digits = v.replace(/[ -]/g, '');
  if (PHONE.test(v) && digits.length >= 7 && cls !== 'imei') return `${digits.slice(0, 3)}****${digits.slice(-4)}`;
  if (cls === 'imei') return `${v.slice(0, 8)}${'*'.repeat(Math.max(0, v.length - 8))}`;
  const chars = [...v];
  // Names: the first character (a surname) or a third of a unit's name; addresses: up to 5 characters
  // (city and district). Always 4 stars, so the length does not show either.
  const keep = cls === 'name' ? Math.min(Math.max(1, Math.floor(chars.length / 3)), 6) : Math.min(5, Math.ceil(chars.length / 3));
  return `${chars.slice(0, keep).join('')}****`;
}

/** The personal fields a device has a value in. */
export function personalFieldsOf(d: DeviceRecord): string[] {
  const out: string[] = [];
  if (d.owner_unit) out.push('owner_unit');
  if (d.location?.address) out.push('location.address');
  if (d.ctwing?.imei) out.push('ctwing.imei');
  if (d.onenet?.imei) out.push('onenet.imei');
  return out;
}

/** A copy of the device with every personal value masked (the same object when it has none). */
export function maskDevice<T extends DeviceRecord>(d: T): T {
  if (personalFieldsOf(d).length === 0) return d;
  const out = { ...d };
  if (d.owner_unit) out.owner_unit = maskValue('name', d.owner_unit);
  if (d.location?.address) out.location = { ...d.location, address: maskValue('address', d.location.address) };
  if (d.ctwing?.imei) out.ctwing = { ...d.ctwing, imei: maskValue('imei', d.ctwing.imei) };
  if (d.onenet?.imei) out.onenet = { ...d.onenet, imei: maskValue('imei', d.onenet.imei) };
  return out;
}
