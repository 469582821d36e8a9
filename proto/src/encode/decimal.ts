// Decimal form of numbers on the wire: a number that is exactly mantissa / 10^scale (scale 0-9) travels as
// the mantissa (sint64) and its scale, which is how sensors report values (35.2 → 352, scale 1).

/** 10^scale for the decimal scales the wire carries (0-9); decodeBatch refuses any other. */
export const POW10 = [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

/** Smallest number of decimal digits that represents `v` exactly, or -1 (then it travels as a double). */
export function decimalScale(v: number): number {
  if (!Number.isFinite(v) || Object.is(v, -0)) return -1;
  for (let scale = 0; scale < POW10.length; scale++) {
    const p = POW10[scale]!;
    const m = Math.round(v * p);
    if (!Number.isSafeInteger(m)) return -1;
    if (m / p === v) return scale;
  }
  return -1;
}

/** The mantissa of `v` at `scale`, or undefined when that is not exact. */
export function mantissa(v: number, scale: number): number | undefined {
  const p = POW10[scale]!;
  const m = Math.round(v * p);
  return Number.isSafeInteger(m) && (scale === 0 ? m : m / p) === v ? m : undefined;
}
