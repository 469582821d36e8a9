// A minimal MQTT publisher for the few precisely timed messages of the alert-latency step (fire alarms),
// on the same hand-encoded packets as the load generator: the clock starts right before the write.
import { connect, type Socket } from 'node:net';
import { BrokerParser, DISCONNECT, encodeConnect, encodePublishTemplate } from '../../device-sim/src/load/packets.ts';

export class RawPublisher {
  private socket!: Socket;
  private nextId = 1;
  private readonly acks = new Map<number, () => void>();
  constructor(
    readonly port: number,
    readonly deviceId: string,
    readonly secret: string,
  ) {}

  connect(timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${this.deviceId}: no CONNACK within ${timeoutMs} ms`)), timeoutMs);
      const s = connect({ host: '127.0.0.1', port: this.port, noDelay: true });
      this.socket = s;
      const parser = new BrokerParser(
        (id) => {
          this.acks.get(id)?.();
          this.acks.delete(id);
        },
        (p) => {
          if (p.type !== 'connack') return;
          clearTimeout(t);
          if (p.returnCode === 0) resolve();
          else reject(new Error(`${this.deviceId}: CONNACK ${p.returnCode}`));
        },
      );
      s.on('connect', () => s.write(encodeConnect({ clientId: this.deviceId, username: this.deviceId, password: this.secret, keepaliveS: 300 })));
      s.on('data', (b: Buffer) => parser.push(b));
      s.on('error', (err) => {
        clearTimeout(t);
        reject(err);
      });
    });
  }

  /** Publishes at QoS 1; resolves on PUBACK. */
  publish(kind: 'telemetry' | 'events', payload: string): Promise<void> {
    const id = this.nextId++;
    const tpl = encodePublishTemplate(`devices/${this.deviceId}/${kind}`, payload, 1);
    tpl.packet.writeUInt16BE(id, tpl.idOffset);
    const p = new Promise<void>((r) => this.acks.set(id, r));
    this.socket.write(tpl.packet);
    return p;
  }

  close(): void {
    this.socket?.end(DISCONNECT);
  }
}
