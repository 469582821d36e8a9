// HJ 212-2017 Appendix A. Deliberately not CRC-16/MODBUS: the register is shifted right by 8 *before*
// each byte is folded in, so only its high byte survives from byte to byte and the result takes just
// 256 values. That is why frame.ts also checks length, structure and values instead of trusting this.

/** The Appendix A check value of `bytes` (the data segment only, without `##`, length, CRC or CRLF). */
export function hj212Crc(bytes: Uint8Array): number {
  let reg = 0xffff;
  for (const b of bytes) {
    reg = (reg >> 8) ^ b;
    for (let i = 0; i < 8; i++) {
      const lsb = reg & 1;
      reg >>= 1;
      if (lsb) reg ^= 0xa001;
    }
  }
  return reg;
}

/** The CRC as the frame prints it: 4 upper-case hex digits (HJ 212-2017 Appendix A). */
export function hj212CrcHex(segment: string | Uint8Array): string {
  const bytes = typeof segment === 'string' ? Buffer.from(segment, 'utf8') : segment;
  return hj212Crc(bytes).toString(16).toUpperCase().padStart(4, '0');
}
