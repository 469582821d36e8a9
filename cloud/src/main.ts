// `citysense cloud --config <file>`: load and validate the config, start, close gracefully on a signal.
import { parseArgs } from 'node:util';
import { loadCloudConfig } from './config/load.ts';
import { CloudConfigError } from './errors.ts';
import { startCloud } from './start.ts';

async function main(): Promise<void> {
  const usage = 'usage: npm run cloud -- [--config cloud.yaml]   (or CITYSENSE_CLOUD_CONFIG)\nsee cloud/README.md for the keys and environment variables\n';
  let values: { config?: string | undefined; help?: boolean | undefined };
  try {
    values = parseArgs({ options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } } }).values;
  } catch (err) {
    // A mistake on the command line is the user's, not a crash: the message and the usage, no stack.
    process.stderr.write(`citysense cloud: ${(err as Error).message}\n${usage}`);
    process.exit(2);
  }
  if (values.help) {
    process.stdout.write(usage);
    return;
  }
  const configPath = values.config ?? process.env.CITYSENSE_CLOUD_CONFIG;
  const config = loadCloudConfig(configPath);
  const cloud = await startCloud(config);
  // SIGHUP re-reads the config's operators (roles, removals, passwords) without a restart: edges and
  // streams stay connected, and the new records apply from the next request on (docs/security.md).
  // Nothing else of the config is re-read; a config that no longer validates changes nothing.
  process.on('SIGHUP', () => {
    try {
      cloud.app.operatorAuth.setOperators(loadCloudConfig(configPath).operators);
      cloud.app.log.info('SIGHUP: operators reloaded');
    } catch (err) {
      cloud.app.log.error({ err: (err as Error).message }, 'SIGHUP: the config does not validate; operators unchanged');
    }
  });
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
