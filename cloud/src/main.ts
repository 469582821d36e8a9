// `citysense cloud --config <file>`: load and validate the config, start, close gracefully on a signal.
import { parseArgs } from 'node:util';
import { loadCloudConfig } from './config/load.ts';
import { CloudConfigError } from './errors.ts';
import { startCloud } from './start.ts';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    process.stdout.write('usage: cloud [--config cloud.yaml]\nsee cloud/README.md for the keys and environment variables\n');
    return;
  }
  const config = loadCloudConfig(values.config ?? process.env.CITYSENSE_CLOUD_CONFIG);
  const cloud = await startCloud(config);
  let closing = false;
  const stop = (signal: string) => {
    if (closing) {
      // A second signal: the operator wants out now.
      process.exit(1);
    }
    closing = true;
    cloud.app.log.info({ signal }, 'closing: finishing in-flight batches');
    cloud.close().then(
      () => process.exit(0),
      (err: unknown) => {
        cloud.app.log.error({ err }, 'close failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((err: unknown) => {
  if (err instanceof CloudConfigError) process.stderr.write(`citysense cloud: ${err.message}\n`);
  else process.stderr.write(`citysense cloud: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
