// The exact text of one top-level member of a JSON object. OneNET signs `msg` as it sent it: re-serialising
// the parsed value could order or space it differently, so the signature is checked over the raw text.
// Called only on a body JSON.parse accepted, so the scanner need not handle malformed input.

/** The raw text of `key`'s value in the top-level object `json`, or undefined. */
export function rawMember(json: string, key: string): string | undefined {
  let i = skipWs(json, 0);
  if (json[i] !== '{') return undefined;
  i++;
  for (;;) {
    i = skipWs(json, i);
    if (json[i] === '}') return undefined;
    const keyEnd = endOfString(json, i);
    const name = JSON.parse(json.slice(i, keyEnd)) as string;
    i = skipWs(json, keyEnd);
    i = skipWs(json, i + 1); // the ':'
    const end = endOfValue(json, i);
    if (name === key) return json.slice(i, end);
    i = skipWs(json, end);
    if (json[i] === ',') i++;
    else return undefined;
  }
}

function skipWs(s: string, i: number): number {
  while (i < s.length && (s[i] === ' ' || s[i] === '\n' || s[i] === '\r' || s[i] === '\t')) i++;
  return i;
}

/** Index just past the string starting at i (s[i] === '"'). */
function endOfString(s: string, i: number): number {
  for (let j = i + 1; j < s.length; j++) {
    if (s[j] === '\\') j++;
    else if (s[j] === '"') return j + 1;
  }
  return s.length;
}

function endOfValue(s: string, i: number): number {
  const c = s[i];
  if (c === '"') return endOfString(s, i);
  if (c === '{' || c === '[') {
    let depth = 0;
    for (let j = i; j < s.length; j++) {
      const d = s[j];
      if (d === '"') j = endOfString(s, j) - 1;
      else if (d === '{' || d === '[') depth++;
      else if (d === '}' || d === ']') {
        if (--depth === 0) return j + 1;
      }
    }
    return s.length;
  }
  let j = i;
  while (j < s.length && s[j] !== ',' && s[j] !== '}' && s[j] !== ']' && s[j] !== ' ' && s[j] !== '\n' && s[j] !== '\r' && s[j] !== '\t') j++;
  return j;
}
