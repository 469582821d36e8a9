// Marks a plugin as shared infrastructure: its decorators and hooks land in the context that registers
// it instead of an encapsulated child. This is exactly what the `fastify-plugin` package does (fastify
// checks Symbol.for('skip-override')); a few lines here spare a dependency.
import type { FastifyPluginAsync } from 'fastify';

export function shared<Options extends Record<string, unknown>>(name: string, plugin: FastifyPluginAsync<Options>): FastifyPluginAsync<Options> {
  Object.assign(plugin, {
    [Symbol.for('skip-override')]: true,
    [Symbol.for('fastify.display-name')]: name,
  });
  return plugin;
}
