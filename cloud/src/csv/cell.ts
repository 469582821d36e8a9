// One CSV cell as citysense writes it: neutralised against formula injection, then quoted (RFC 4180).
// Every CSV the cloud writes goes through csvCell, and every CSV it reads through restoreCell, so an
// exported file imports back to the same values.
//
// OWASP "CSV Injection": a spreadsheet runs a cell that starts with = + - @ (or a tab or CR, which
// some strip before looking) as a formula — `=HYPERLINK(...)` in an owner unit would run on the duty
// officer's machine. Such a cell is written with a leading apostrophe, which spreadsheets show as text.
// To keep the mapping reversible a cell that already starts with apostrophes before such a character
// gets one more, and restoreCell takes exactly one off. Plain numbers (`-33.5`) are left alone: they are
// not formulas, and a coordinate must stay a number in the spreadsheet.
const TRIGGER = /^'*[=+\-@\t\r]/;
const PLAIN_NUMBER = /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/;
const QUOTED_TRIGGER = /^'+[=+\-@\t\r]/;

/** The cell's text with a leading `'` when a spreadsheet would run it as a formula. */
export function neutraliseCell(text: string): string {
  return TRIGGER.test(text) && !PLAIN_NUMBER.test(text) ? `'${text}` : text;
}

/** The inverse of neutraliseCell, for CSV that citysense reads (the registry import). */
export function restoreCell(text: string): string {
  return QUOTED_TRIGGER.test(text) ? text.slice(1) : text;
}

/** A value as one CSV cell: neutralised, and quoted when it holds a comma, quote or line break. */
export function csvCell(v: unknown): string {
  return quoteCell(neutraliseCell(v === undefined || v === null ? '' : String(v)));
}

/**
 * Quoting only, for the credential columns of an import file (secret, hj212_password): the registry
 * import takes those exactly as written, and they are never exported, so nobody opens them as a sheet.
 */
export function quoteCell(v: unknown): string {
  const t = v === undefined || v === null ? '' : String(v);
  return /[",\r\n]/.test(t) ? `"${t.replace(/"/g, '""')}"` : t;
}

/** One CSV line (no line break). */
export function csvLine(values: readonly unknown[]): string {
  return values.map(csvCell).join(',');
}
