// A byte scan of a JSON payload before JSON.parse: size, nesting depth and member count. JSON.parse
// builds every object, array and string of the text before the decoder can look at one of them, so a
// payload of 60,000 one-byte members or 30,000 nested arrays costs its full object graph even though the
// message is refused right after. This scan reads the bytes once, allocates nothing, and refuses such a
// payload first; what passes builds at most `maxMembers` values.
export interface JsonLimits {
  /** Payload bytes (MQTT packets are capped by mqtt.maxPacketBytes as well). */
  maxBytes: number;
  /** Nesting of objects and arrays: the contract's payloads need 3 (`{"metrics":{...}}`, attrs). */
  maxDepth: number;
  /** Members of all objects and elements of all arrays together. */
  maxMembers: number;
}

export const DEFAULT_JSON_LIMITS: Readonly<JsonLimits> = Object.freeze({ maxBytes: 65_536, maxDepth: 8, maxMembers: 1024 });

export type JsonShapeProblem = { reason: 'payload_too_large' | 'too_deep' | 'too_many_members'; detail: string };

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_OBJ = 0x7b;
const OPEN_ARR = 0x5b;
const CLOSE_OBJ = 0x7d;
const CLOSE_ARR = 0x5d;

/**
 * The first limit the payload passes, or undefined. Malformed JSON is left to JSON.parse (this only
 * counts brackets and commas outside strings): a count that is off for broken text errs on the side
 * of refusing, and broken text is refused anyway.
 */
export function jsonShapeProblem(b: Uint8Array, lim: Readonly<JsonLimits>): JsonShapeProblem | undefined {
  if (b.length > lim.maxBytes) return { reason: 'payload_too_large', detail: `${b.length} bytes, the limit is ${lim.maxBytes} (decoders.json.maxBytes)` };
  let depth = 0;
  let members = 0;
  let inString = false;
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
      continue;
    }
    if (c === QUOTE) inString = true;
    else if (c === OPEN_OBJ || c === OPEN_ARR) {
      if (++depth > lim.maxDepth) return { reason: 'too_deep', detail: `nested deeper than ${lim.maxDepth} (decoders.json.maxDepth)` };
      // The container's first member (an empty one is over-counted by one: harmless).
      if (++members > lim.maxMembers) break;
    } else if (c === CLOSE_OBJ || c === CLOSE_ARR) depth--;
    else if (c === COMMA && ++members > lim.maxMembers) break;
  }
  if (members > lim.maxMembers) return { reason: 'too_many_members', detail: `more than ${lim.maxMembers} members and elements (decoders.json.maxMembers)` };
  return undefined;
}
