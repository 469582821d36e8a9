// CLI: `edge --config <file>`. Loads and validates the configuration, starts the edge, and on SIGINT or
// SIGTERM flushes (bounded by shutdown.flushTimeoutMs) before closing.
import { parseArgs } from 'node:util';
import { loadEdgeConfig } from './config/load.ts';
import { startEdge } from './agent/agent.ts';
import { EdgeError } from './errors.ts';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { config: { type: 'string', short: 'c' } } });
  if (!values.config) {
    process.stderr.write('usage: edge --config <file.yaml|file.json>\n');
    process.exit(2);
  }
  const config = loadEdgeConfig(values.config);
  const edge = await startEdge(config);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`${signal}: flushing (up to ${config.shutdown.flushTimeoutMs} ms), then closing\n`);
    try {
      await edge.flush(config.shutdown.flushTimeoutMs);
    } catch (err) {
      process.stderr.write(`${(err as Error).message}\n`);
    }
    await edge.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof EdgeError ? err.message : (err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
