// Bulk registration from CSV (RFC 4180: comma separated, a header row, fields optionally in double
// quotes with "" for a quote inside; CRLF or LF). Each record keeps the line it starts on, so a refused
// row is reported where the operator sees it in their editor.
//
// Columns (header names, any order; only id, family and district are required):
//   id, family, district, profile, site, lat, lon, address, owner_unit, expected_interval
//   (ms or "60s", "5m", "1h"), edge, tags ("key=value;key=value"), hj212_mn, hj212_password,
//   opcua_server, opcua_vars ("car=1;bank=A"), secret (an MQTT secret to use instead of a generated one),
//   ctwing_device_id, ctwing_imei, ctwing_product_id, onenet_device_id, onenet_imei, onenet_product_id,
//   onenet_device_name (devices reporting through CTWing / OneNET pushes),
//   gb26875_address (12 hex digits: a GB/T 26875.3 transmission device's source address)
import { restoreCell } from '../csv/cell.ts';
import { CloudError } from '../errors.ts';
import type { ImportRow } from './store.ts';

export const CSV_COLUMNS = [
  'id', 'family', 'district', 'profile', 'site', 'lat', 'lon', 'address', 'owner_unit', 'expected_interval', 'expected_interval_ms',
  'edge', 'tags', 'hj212_mn', 'hj212_password', 'opcua_server', 'opcua_vars', 'gb26875_address', 'secret',
  'ctwing_device_id', 'ctwing_imei', 'ctwing_product_id', 'onenet_device_id', 'onenet_imei', 'onenet_product_id', 'onenet_device_name',
] as const;
const REQUIRED = ['id', 'family', 'district'];
const STOP = /[,\r\n]/g;

export interface CsvRecord {
  line: number;
  fields: string[];
  /** Set when the record cannot be read (an unterminated quote, text after a closing quote). */
  error?: string;
}

/** Splits CSV text into records with the line each starts on. Blank lines are skipped. */
export function parseCsv(text: string): CsvRecord[] {
  const out: CsvRecord[] = [];
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0; // byte-order mark
  let line = 1;
  const n = text.length;
  while (i < n) {
    const start = line;
    const fields: string[] = [];
    let error: string | undefined;
    let blank = true;
    for (;;) {
      let field = '';
      if (text[i] === '"') {
        blank = false;
        i++;
        let closed = false;
        while (i < n) {
          const c = text[i]!;
          if (c === '"') {
            if (text[i + 1] === '"') {
              field += '"';
              i += 2;
              continue;
            }
            i++;
            closed = true;
            break;
          }
          if (c === '\n') line++;
          field += c;
          i++;
        }
        if (!closed) error ??= `a quoted field opened on line ${start} is never closed`;
        // Anything between the closing quote and the next separator is a mistake.
        STOP.lastIndex = i;
        const m = STOP.exec(text);
        const end = m ? m.index : n;
        if (end > i) {
          error ??= `text after a closing quote in field ${fields.length + 1}`;
          i = end;
        }
      } else {
        STOP.lastIndex = i;
        const m = STOP.exec(text);
        const end = m ? m.index : n;
        field = text.slice(i, end);
        if (field.includes('"')) error ??= `a quote inside unquoted field ${fields.length + 1} (quote the whole field and double the quote: "a ""b"" c")`;
        if (field !== '') blank = false;
        i = end;
      }
      fields.push(field);
      if (text[i] === ',') {
        blank = false;
        i++;
        continue;
      }
      break;
    }
    // End of record: CRLF, LF, lone CR or end of text.
    if (text[i] === '\r') i++;
    if (text[i] === '\n') i++;
    line++;
    if (blank && !error) continue;
    out.push(error ? { line: start, fields, error } : { line: start, fields });
  }
  return out;
}

function pairs(text: string, what: string): Record<string, string> | string {
  const out: Record<string, string> = {};
  for (const part of text.split(';')) {
    if (part.trim() === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) return `${what}: "${part}" is not key=value (write "key=value;key=value")`;
    const k = part.slice(0, eq).trim();
    if (k in out) return `${what}: ${k} is given twice`;
    out[k] = part.slice(eq + 1).trim();
  }
  return out;
}

function number(text: string, what: string): number | string {
  const t = text.trim();
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(t)) return `${what}: "${text}" is not a number`;
  return Number(t);
}

/**
 * CSV text → import rows. A file that cannot be a device list at all (no header, unknown or missing
 * columns, too many rows) is refused as a whole with CSV_INVALID; a bad row becomes a refused row.
 */
export function csvToImportRows(text: string, maxRows: number): ImportRow[] {
  const records = parseCsv(text);
  const header = records.shift();
  if (!header) throw new CloudError('CSV_INVALID', 'the body is empty: send a header line (id,family,district,...) and one line per device');
  if (header.error) throw new CloudError('CSV_INVALID', `header on line ${header.line}: ${header.error}`);
  const cols = header.fields.map((f) => f.trim().toLowerCase());
  const unknown = cols.filter((c) => !(CSV_COLUMNS as readonly string[]).includes(c));
  if (unknown.length) throw new CloudError('CSV_INVALID', `unknown column(s) ${unknown.map((c) => JSON.stringify(c)).join(', ')} on line ${header.line}; columns are ${CSV_COLUMNS.join(', ')}`);
  const dup = cols.find((c, i) => cols.indexOf(c) !== i);
  if (dup) throw new CloudError('CSV_INVALID', `column ${dup} appears twice in the header`);
  const missing = REQUIRED.filter((c) => !cols.includes(c));
  if (missing.length) throw new CloudError('CSV_INVALID', `the header lacks column(s) ${missing.join(', ')}`);
  if (records.length === 0) throw new CloudError('CSV_INVALID', 'the file has a header but no devices');
  if (records.length > maxRows) throw new CloudError('CSV_INVALID', `${records.length} rows is more than registry.maxImportRows (${maxRows}): split the file`);

  return records.map((rec): ImportRow => {
    if (rec.error) return { line: rec.line, input: { malformed: rec.error } };
    if (rec.fields.length !== cols.length) {
      return { line: rec.line, input: { malformed: `${rec.fields.length} field(s), but the header has ${cols.length} columns` } };
    }
    const v: Record<string, string> = {};
    cols.forEach((c, i) => {
      const f = rec.fields[i]!;
      // Cells citysense wrote were neutralised against formula injection (csv/cell.ts): take the `'` off
      // again. Credentials are never exported, and taken exactly as written.
      if (f.trim() !== '') v[c] = c === 'secret' || c === 'hj212_password' ? f : restoreCell(f.trim());
    });
    const input: Record<string, unknown> = {};
    for (const k of ['id', 'family', 'district', 'profile', 'site', 'owner_unit', 'expected_interval', 'edge', 'secret'] as const) {
      if (v[k] !== undefined) input[k] = v[k];
    }
    if (v.expected_interval_ms !== undefined) {
      const n = number(v.expected_interval_ms, 'expected_interval_ms');
      if (typeof n === 'string') return { line: rec.line, input: { malformed: n } };
      input.expected_interval_ms = n;
    }
    if (v.lat !== undefined || v.lon !== undefined || v.address !== undefined) {
      if (v.lat === undefined || v.lon === undefined) return { line: rec.line, input: { malformed: 'a location needs both lat and lon' } };
      const lat = number(v.lat, 'lat');
      const lon = number(v.lon, 'lon');
      if (typeof lat === 'string') return { line: rec.line, input: { malformed: lat } };
      if (typeof lon === 'string') return { line: rec.line, input: { malformed: lon } };
      input.location = { lat, lon, ...(v.address !== undefined ? { address: v.address } : {}) };
    }
    if (v.tags !== undefined) {
      const t = pairs(v.tags, 'tags');
      if (typeof t === 'string') return { line: rec.line, input: { malformed: t } };
      input.tags = t;
    }
    if (v.hj212_mn !== undefined || v.hj212_password !== undefined) {
      input.hj212 = { ...(v.hj212_mn !== undefined ? { mn: v.hj212_mn } : {}), ...(v.hj212_password !== undefined ? { password: v.hj212_password } : {}) };
    }
    if (v.gb26875_address !== undefined) input.gb26875 = { address: v.gb26875_address };
    if (v.opcua_server !== undefined || v.opcua_vars !== undefined) {
      const vars = v.opcua_vars !== undefined ? pairs(v.opcua_vars, 'opcua_vars') : {};
      if (typeof vars === 'string') return { line: rec.line, input: { malformed: vars } };
      input.opcua = { ...(v.opcua_server !== undefined ? { server: v.opcua_server } : {}), vars };
    }
    for (const platform of ['ctwing', 'onenet'] as const) {
      const o: Record<string, string> = {};
      for (const f of ['device_id', 'imei', 'product_id', 'device_name'] as const) {
        const val = v[`${platform}_${f}`];
        if (val !== undefined) o[f] = val;
      }
      if (Object.keys(o).length) input[platform] = o;
    }
    return { line: rec.line, input };
  });
}
