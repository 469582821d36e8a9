// A device frame that a platform forwards as text: hex (OneNET NB-IoT data points, DTU firmware) or base64.
const HEX = /^(?:[0-9A-Fa-f]{2})+$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

export function frameFromText(s: string): Buffer | undefined {
  const t = s.trim();
  if (HEX.test(t)) return Buffer.from(t, 'hex');
  if (BASE64.test(t) && t.length % 4 === 0) return Buffer.from(t, 'base64');
  return undefined;
}
