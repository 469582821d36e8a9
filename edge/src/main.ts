// CLI: `edge --config <file>`. Loads and validates the configuration, starts the edge, and on SIGINT or
// SIGTERM flushes (bounded by shutdown.flushTimeoutMs) before closing.
import { parseArgs } from 'node:util';
import { loadEdgeConfig } from './config/load.ts';
import { startEdge } from './agent/agent.ts';
import { EdgeError } from './errors.ts';

const USAGE = `usage: npm run edge -- --config <edge.yaml|edge.json>
  -c, --config <file>   the edge's configuration (start from edge/config/edge.example.yaml)
  -h, --help            this text
Environment: CITYSENSE_EDGE_TOKEN (the edge's token for the cloud), CITYSENSE_CLOUD_URL, CITYSENSE_EDGE_LOG_LEVEL.
All keys, limits and metrics: edge/README.md.
`;

/** The command line, or a usage message and exit 2 for a mistake in it (no stack trace). */
function args(): { config?: string | undefined } {
  try {
    const { values } = parseArgs({ options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } } });
    if (values.help) {
      process.stdout.write(USAGE);
      process.exit(0);
    }
    return values;
  } catch (err) {
    process.stderr.write(`citysense edge: ${(err as Error).message}\n${USAGE}`);
    process.exit(2);
  }
}

async function main(): Promise<void> {
  const values = args();
  if (!values.config) {
    process.stderr.write(`citysense edge: --config is required\n${USAGE}`);
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
