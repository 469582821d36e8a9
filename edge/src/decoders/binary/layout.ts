// A fixed binary frame layout as data (the device's profile), so a new NB-IoT sensor model needs a layout,
// not code. Validated once at load; every mistake is reported with its path (`fields[2].offset`).
import { z } from 'zod';
import { BINARY_ERRORS } from './errors.ts';

/** The edge's metric-name rule (processors/normalise.ts), so every decoded name survives normalising. */
const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

export const FIELD_TYPES = ['u8', 'i8', 'u16', 'i16', 'u24', 'u32', 'i32', 'f32', 'f64', 'bits', 'hex', 'ascii'] as const;
export type FieldType = (typeof FIELD_TYPES)[number];

/** Bytes each fixed-size type takes; hex and ascii take `length`, bits `length` (1, 2 or 4, default 1). */
export const TYPE_SIZE: Readonly<Record<Exclude<FieldType, 'hex' | 'ascii' | 'bits'>, number>> = {
  u8: 1,
  i8: 1,
  u16: 2,
  i16: 2,
  u24: 3,
  u32: 4,
  i32: 4,
  f32: 4,
  f64: 8,
};
const INTEGER_TYPES: ReadonlySet<FieldType> = new Set(['u8', 'i8', 'u16', 'i16', 'u24', 'u32', 'i32']);
const NUMERIC_TYPES: ReadonlySet<FieldType> = new Set([...INTEGER_TYPES, 'f32', 'f64']);

const name = z.string().regex(NAME, 'must be a metric name: a letter or _, then letters, digits or _ (at most 64)');
const byteOrder = z.enum(['big', 'little']);
const finite = z.number(); // zod 4 refuses NaN and ±Infinity

const bitSchema = z.strictObject({
  name,
  bit: z.number().int().min(0).max(31),
  type: z.literal('bool').optional(),
  description: z.string().optional(),
});

const fieldSchema = z.strictObject({
  name,
  offset: z.number().int().min(0).max(65535),
  type: z.enum(FIELD_TYPES),
  /** Bytes of a hex or ascii field (required), or of a bits field (1, 2 or 4; default 1). */
  length: z.number().int().min(1).max(1024).optional(),
  /** Overrides the layout's byte order for this field. */
  byteOrder: byteOrder.optional(),
  /** value = raw × scale + add, then rounded to `decimals`. */
  scale: finite.refine((x) => x !== 0, 'must not be 0').optional(),
  add: finite.optional(),
  /** Decimal places kept; by default those of scale and add, so 0.1 × 253 gives 25.3, not 25.300000000000001. */
  decimals: z.number().int().min(0).max(12).optional(),
  /** Named flags of a bits field. */
  bits: z.array(bitSchema).min(1).optional(),
  /** Raw integer → state string (e.g. {"0": "normal", "2": "alarm"}); a raw value not listed is refused. */
  enum: z.record(z.string().regex(/^-?\d+$/, 'enum keys are raw integer values'), z.string().min(1).max(64)).optional(),
  unit: z.string().max(32).optional(),
  /** Valid range of the final value: outside it the value is refused (BINARY_OUT_OF_RANGE), the others go on. */
  min: finite.optional(),
  max: finite.optional(),
  description: z.string().optional(),
});

export const binaryLayoutSchema = z
  .strictObject({
    description: z.string().optional(),
    byteOrder: byteOrder.default('big'),
    /** Shortest frame accepted, when the frame has bytes past the last field (e.g. a checksum). */
    minLength: z.number().int().min(0).max(65535).optional(),
    /** Frame-type discriminator: the layout applies only when this byte has this value. */
    match: z.strictObject({ byte: z.number().int().min(0).max(65535), equals: z.number().int().min(0).max(255) }).optional(),
    fields: z.array(fieldSchema).min(1),
  })
  .superRefine((layout, ctx) => {
    const seen = new Map<string, string>();
    const claim = (n: string, path: Array<string | number>) => {
      const where = seen.get(n);
      if (where !== undefined) ctx.addIssue({ code: 'custom', path, message: `name ${n} is already used by ${where}` });
      else seen.set(n, formatPath(path));
    };
    layout.fields.forEach((f, i) => {
      const at = (...rest: Array<string | number>) => ['fields', i, ...rest];
      const issue = (message: string, ...rest: Array<string | number>) => ctx.addIssue({ code: 'custom', path: at(...rest), message });
      if ((f.type === 'hex' || f.type === 'ascii') && f.length === undefined) issue(`a ${f.type} field needs a length in bytes`, 'length');
      if (f.type === 'bits') {
        if (f.length !== undefined && ![1, 2, 4].includes(f.length)) issue('a bits field is 1, 2 or 4 bytes long', 'length');
        if (f.bits === undefined) issue('a bits field needs the list of its named bits', 'bits');
        const width = 8 * (f.length ?? 1);
        f.bits?.forEach((b, j) => {
          if (b.bit >= width) issue(`bit ${b.bit} is outside a ${width}-bit field`, 'bits', j, 'bit');
          claim(b.name, at('bits', j, 'name'));
        });
      } else {
        claim(f.name, at('name'));
        if (f.bits !== undefined) issue('bits are only for a field of type bits', 'bits');
      }
      if (!['hex', 'ascii', 'bits'].includes(f.type) && f.length !== undefined) issue(`a ${f.type} field has a fixed size; length is for hex, ascii and bits`, 'length');
      if (!NUMERIC_TYPES.has(f.type)) {
        for (const k of ['scale', 'add', 'decimals', 'min', 'max', 'unit'] as const) {
          if (f[k] !== undefined) issue(`${k} applies to numeric fields, not ${f.type}`, k);
        }
      }
      if (f.enum !== undefined) {
        if (!INTEGER_TYPES.has(f.type)) issue(`enum applies to integer fields, not ${f.type}`, 'enum');
        for (const k of ['scale', 'add', 'decimals', 'min', 'max'] as const) {
          if (f[k] !== undefined) issue(`${k} cannot be combined with enum (the value is a state, not a number)`, k);
        }
      }
      if (f.min !== undefined && f.max !== undefined && f.min > f.max) issue(`min ${f.min} is above max ${f.max}`, 'min');
      if (f.byteOrder !== undefined && (fieldSize(f) === 1 || f.type === 'hex' || f.type === 'ascii')) {
        issue(`byteOrder means nothing for a ${f.type === 'hex' || f.type === 'ascii' ? f.type : '1-byte'} field`, 'byteOrder');
      }
    });
  });

export type BinaryLayout = z.output<typeof binaryLayoutSchema>;
export type BinaryLayoutInput = z.input<typeof binaryLayoutSchema>;
export type BinaryField = BinaryLayout['fields'][number];

/** Bytes a field takes in the frame. */
export function fieldSize(f: Pick<BinaryField, 'type' | 'length'>): number {
  if (f.type === 'hex' || f.type === 'ascii') return f.length ?? 0;
  if (f.type === 'bits') return f.length ?? 1;
  return TYPE_SIZE[f.type];
}

/** Shortest frame the layout can decode: past its last field, its match byte and minLength. */
export function requiredLength(layout: BinaryLayout): number {
  let n = layout.minLength ?? 0;
  for (const f of layout.fields) n = Math.max(n, f.offset + fieldSize(f));
  if (layout.match) n = Math.max(n, layout.match.byte + 1);
  return n;
}

export interface LayoutIssue {
  /** Where the mistake is, e.g. `fields[2].offset` ('' for the layout itself). */
  path: string;
  message: string;
}

export type LayoutResult =
  | { ok: true; layout: BinaryLayout }
  | { ok: false; code: 'BINARY_BAD_LAYOUT'; message: string; issues: LayoutIssue[] };

/** Validate a layout (from a profile file, already parsed from JSON/YAML). Never throws. */
export function loadBinaryLayout(input: unknown): LayoutResult {
  const r = binaryLayoutSchema.safeParse(input);
  if (r.success) return { ok: true, layout: r.data };
  // An unknown key is reported at its own path (`fields[1].scael`), where the typo is.
  const issues = r.error.issues.flatMap((i) =>
    i.code === 'unrecognized_keys'
      ? i.keys.map((k) => ({ path: formatPath([...i.path, k]), message: 'unknown key (a typo?)' }))
      : [{ path: formatPath(i.path), message: i.message }],
  );
  return {
    ok: false,
    code: 'BINARY_BAD_LAYOUT',
    message: `${BINARY_ERRORS.BINARY_BAD_LAYOUT}: ${issues.map((i) => `${i.path || '(layout)'}: ${i.message}`).join('; ')}`,
    issues,
  };
}

/** ['fields', 2, 'offset'] → 'fields[2].offset' */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out;
}
