// CTWing AEP's side of a subscription push, simulated: the platform posts one JSON message per report to
// the subscriber's URL and counts anything but 200 as a failure, retrying at most 3 times
// (docs/protocols/ctwing.md). Written from the published message formats, not from the edge's receiver.
// CTWing signs nothing: the subscriber's secret is in the URL path.

export const CTWING_RETRIES = 3;

export interface CtwingIdentity {
  deviceId: string;
  imei: string;
  productId: string;
  tenantId?: string;
  /** What this platform puts in IMSI when the module did not report one. */
  imsi?: string;
}

export interface PushCounts {
  /** Messages accepted (200) by the subscriber. */
  delivered: number;
  /** Posts repeated after a failure. */
  retried: number;
  /** Messages given up after all retries. */
  failed: number;
  /** The last refusal's status and body. */
  lastRefusal?: { status: number; body: string };
}

export interface PushAttempt {
  ok: boolean;
  status: number;
  body: string;
  attempts: number;
}

export interface PushTransportOptions {
  /** The subscriber's push URL, e.g. http://127.0.0.1:8082/push/ctwing/<pathToken>. */
  url: string;
  retries?: number;
  /** Delay before a retry (the platforms wait seconds; tests and the demo less). */
  retryDelayMs?: number;
  timeoutMs?: number;
}

/** POSTs a JSON body, retrying like the platforms: any non-200 (or no answer) is a failure. */
export async function postWithRetry(o: PushTransportOptions, body: string, counts: PushCounts): Promise<PushAttempt> {
  const retries = o.retries ?? CTWING_RETRIES;
  let last: PushAttempt = { ok: false, status: 0, body: '', attempts: 0 };
  for (let attempt = 0; attempt <= retries; attempt++) {
    if (attempt > 0) {
      counts.retried++;
      await new Promise((r) => setTimeout(r, o.retryDelayMs ?? 1000));
    }
    try {
      const res = await fetch(o.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(o.timeoutMs ?? 5000) });
      const text = await res.text();
      last = { ok: res.status === 200, status: res.status, body: text, attempts: attempt + 1 };
      if (last.ok) {
        counts.delivered++;
        return last;
      }
      counts.lastRefusal = { status: res.status, body: text.slice(0, 300) };
      // A refusal that a retry cannot change (4xx but 408/429): the platform retries anyway; so do we,
      // unless told not to, so the subscriber's repeat handling is exercised as in the field.
    } catch (err) {
      last = { ok: false, status: 0, body: (err as Error).message, attempts: attempt + 1 };
    }
  }
  counts.failed++;
  return last;
}

/** One simulated CTWing product subscription for one device. */
export class CtwingPush {
  readonly counts: PushCounts = { delivered: 0, retried: 0, failed: 0 };
  private packetSn = 0;

  constructor(
    readonly opts: PushTransportOptions,
    readonly device: CtwingIdentity,
  ) {}

  private base(messageType: string, ts: number): Record<string, unknown> {
    return {
      tenantId: this.device.tenantId ?? '2000000001',
      productId: this.device.productId,
      deviceId: this.device.deviceId,
      IMEI: this.device.imei,
      messageType,
      timestamp: ts,
    };
  }

  /** A transparent product's report: the device's bytes as APPdata. */
  dataReport(frame: Buffer, ts = Date.now()): Promise<PushAttempt> {
    this.packetSn++;
    return this.send({
      ...this.base('dataReport', ts),
      upPacketSN: this.packetSn,
      upDataSN: -1,
      topic: 'v1/up/ad',
      serviceId: '',
      protocol: 'lwm2m',
      deviceType: '',
      assocAssetId: '',
      IMSI: this.device.imsi ?? 'undefined',
      payload: { APPdata: frame.toString('base64') },
    });
  }

  /** A product whose data the platform decodes with its object model: properties by identifier. */
  propertyReport(serviceId: number, values: Record<string, number | boolean | string>, ts = Date.now()): Promise<PushAttempt> {
    this.packetSn++;
    return this.send({ ...this.base('dataReport', ts), upPacketSN: this.packetSn, upDataSN: '', serviceId, protocol: 'lwm2m', payload: { serviceId, serviceData: values } });
  }

  eventReport(frame: Buffer, eventType: 1 | 2 | 3, serviceId: number, ts = Date.now()): Promise<PushAttempt> {
    this.packetSn++;
    return this.send({ ...this.base('eventReport', ts), upPacketSN: this.packetSn, eventType, serviceId, payload: { APPdata: frame.toString('base64') } });
  }

  onlineOffline(online: boolean, ts = Date.now()): Promise<PushAttempt> {
    return this.send({ ...this.base('deviceOnlineOfflineReport', ts), eventType: online ? 1 : 0, iccid: 'undefined' });
  }

  commandResponse(taskId: number, resultCode: 'SENT' | 'DELIVERED' | 'SUCCESSFUL' | 'FAILED', ts = Date.now()): Promise<PushAttempt> {
    return this.send({ ...this.base('commandResponse', ts), taskId, result: { resultCode, resultDetail: {} } });
  }

  /** Sends a message as built (also a replay of an earlier one: the platform's retry after a lost answer). */
  send(message: Record<string, unknown>): Promise<PushAttempt> {
    return postWithRetry(this.opts, JSON.stringify(message), this.counts);
  }
}
