// A bare aedes 1.2 broker for the broker reference step (bench/brokers.ts), in its own process so that
// its CPU is measured apart: aedes' default in-memory persistence (nothing on disk; nobody subscribes and
// nothing is retained, so it holds nothing), no authenticate/authorize hooks, one loopback listener on a
// port the OS picks. Driven over IPC: ← {type:'ready', port}. Exits when its parent goes away or on SIGTERM.
import { createServer, type AddressInfo } from 'node:net';
import { Aedes } from 'aedes';

process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));

const broker = await Aedes.createBroker();
const server = createServer(broker.handle);
server.listen(0, '127.0.0.1', () => process.send?.({ type: 'ready', port: (server.address() as AddressInfo).port }));
