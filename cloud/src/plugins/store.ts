// Exposes the cloud's embedded store (store/db.ts) as app.store, opened with the app and closed with it.
import type { FastifyPluginAsync } from 'fastify';
import { openCloudStore, type CloudStore } from '../store/db.ts';
import { shared } from './shared.ts';

declare module 'fastify' {
  interface FastifyInstance {
    store: CloudStore;
  }
}

export const storePlugin: FastifyPluginAsync<{ path: string }> = shared('citysense-store', async (app, opts) => {
  const store = openCloudStore(opts.path);
  app.decorate('store', store);
  app.addHook('onClose', async () => store.close());
});
