// The registry as CSV (GET /v1/devices/export): the import's columns (csv.ts) without credentials, every
// cell neutralised against formula injection (csv/cell.ts), so an admin's export imports back to the
// same devices. Viewers and operators get personal values masked (personal.ts), which do not import back.
import { csvLine } from '../csv/cell.ts';
import type { DeviceRecord } from './model.ts';

export const EXPORT_COLUMNS = [
  'id', 'family', 'district', 'profile', 'site', 'lat', 'lon', 'address', 'owner_unit', 'expected_interval_ms', 'edge', 'tags',
  'hj212_mn', 'opcua_server', 'opcua_vars', 'ctwing_device_id', 'ctwing_imei', 'ctwing_product_id',
  'onenet_device_id', 'onenet_imei', 'onenet_product_id', 'onenet_device_name',
] as const;

const kv = (o: Record<string, string> | undefined) => (o ? Object.entries(o).map(([k, v]) => `${k}=${v}`).join(';') : '');

export function csvHeader(): string {
  return EXPORT_COLUMNS.join(',');
}

export function deviceCsvLine(d: DeviceRecord): string {
  return csvLine([
    d.id, d.family, d.district, d.profile, d.site, d.location?.lat, d.location?.lon, d.location?.address, d.owner_unit, d.expected_interval_ms,
    d.edge, kv(d.tags), d.hj212?.mn, d.opcua?.server, kv(d.opcua?.vars), d.ctwing?.device_id, d.ctwing?.imei, d.ctwing?.product_id,
    d.onenet?.device_id, d.onenet?.imei, d.onenet?.product_id, d.onenet?.device_name,
  ]);
}
