// Placeholder replaced below.
export async function runPeers(_o: unknown): Promise<{ summary: Record<string, number>; details: unknown }> {
  throw new Error('not yet');
}
