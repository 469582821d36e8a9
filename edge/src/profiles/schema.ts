// A device profile: everything the edge needs to know about one sensor model, as data, so that a new
// model needs a file, not code (docs/profiles.md). Validated once at start; mistakes name their path.
import { z } from 'zod';
import { FAMILIES } from '@citysense/proto';
import { binaryLayoutSchema } from '../decoders/binary/index.ts';
import { gb26875ProfileSchema } from '../decoders/gb26875/index.ts';

/** InfluxDB field names we write without escaping (the normaliser's rule). */
export const METRIC_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const metricName = z.string().regex(METRIC_NAME, 'a metric name is a letter or _, then letters, digits or _ (at most 64)');
const eventType = z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, 'an event type is lower-case letters, digits and _ (e.g. fire_alarm)');
const scalar = z.union([z.number(), z.boolean(), z.string()]);

/** How a metric is checked and named. `source` is the name in the payload when it differs. */
const metricSchema = z.strictObject({
  source: z.string().min(1).optional(),
  unit: z.string().optional(),
  description: z.string().optional(),
  type: z.enum(['number', 'boolean', 'string']).optional(),
  min: z.number().optional(),
  max: z.number().optional(),
  /** Multiply, then add: a unit conversion at the edge (e.g. mg/m³ → µg/m³ is scale 1000). */
  scale: z.number().optional(),
  add: z.number().optional(),
});

/**
 * A value that becomes an event. Edge-triggered: the event fires when the condition becomes true for a
 * device (not again while it stays true), and `clearType`, when given, fires when it becomes false.
 */
const conditionSchema = z
  .strictObject({
    metric: metricName,
    equals: scalar.optional(),
    in: z.array(scalar).min(1).optional(),
    above: z.number().optional(),
    below: z.number().optional(),
  })
  .refine((c) => [c.equals, c.in, c.above, c.below].filter((x) => x !== undefined).length === 1, {
    message: 'give exactly one of equals, in, above, below',
  });

const eventRuleSchema = z.strictObject({
  type: eventType,
  when: conditionSchema,
  priority: z.enum(['routine', 'warning', 'alarm']).optional(),
  clearType: eventType.optional(),
  /** Attributes of the event: literal strings, or `{metric}` to copy a value of the same reading. */
  attrs: z.record(z.string(), z.string()).optional(),
  description: z.string().optional(),
});

const jsonFormatSchema = z.strictObject({
  /** Key of the metrics object in the payload (contracts.md: `metrics`). */
  metricsKey: z.string().min(1).default('metrics'),
  tsKey: z.string().min(1).default('ts'),
  /** Some devices send seconds. */
  tsUnit: z.enum(['ms', 's']).default('ms'),
});

const hj212FormatSchema = z.strictObject({
  /** Which commands carry readings: 2011 real-time, 2051 minute, 2061 hour, 2031 day. */
  commands: z.array(z.enum(['2011', '2051', '2061', '2031'])).default(['2011', '2051', '2061', '2031']),
});

const opcuaFormatSchema = z.strictObject({
  /** Metric → NodeId; `{name}` placeholders are filled from the device's `opcua.vars` (e.g. `{car}`). */
  nodes: z.record(metricName, z.string().min(1)),
  samplingIntervalMs: z.number().int().min(0).default(250),
  publishingIntervalMs: z.number().int().min(10).default(250),
  queueSize: z.number().int().min(1).default(10),
});

export const INPUTS = ['mqtt', 'hj212-tcp', 'opcua', 'http-push', 'gb26875-tcp'] as const;
export const FORMATS = ['json', 'binary', 'hj212', 'opcua', 'gb26875'] as const;

export const profileSchema = z
  .strictObject({
    id: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'a profile id is lower-case letters, digits, . _ -'),
    description: z.string().optional(),
    /** When set, every device naming this profile must be of this family. */
    family: z.enum(FAMILIES).optional(),
    /** Default `model` tag for the device's readings (the registry's tags win). */
    model: z.string().optional(),
    /**
     * Where the data arrives: MQTT on the edge's broker, the HJ 212 TCP listener, an OPC-UA server, or an
     * operator platform's push (CTWing, OneNET; a push device may also use an mqtt profile of format
     * binary or json: the platform forwards the same frame).
     */
    input: z.enum(INPUTS),
    /** How the payload decodes. */
    format: z.enum(FORMATS),
    json: jsonFormatSchema.optional(),
    binary: binaryLayoutSchema.optional(),
    /** How a binary frame travels in the MQTT payload: raw bytes, hex text, or `auto` (hex text when it reads as hex). */
    binaryEncoding: z.enum(['auto', 'raw', 'hex']).default('auto'),
    hj212: hj212FormatSchema.optional(),
    opcua: opcuaFormatSchema.optional(),
    /** GB/T 26875.3 fire-panel frames: component → building/floor/zone, state bits → events (docs/protocols/fire-gb26875.md). */
    gb26875: gb26875ProfileSchema.optional(),
    metrics: z.record(metricName, metricSchema).default({}),
    /** Metrics the profile does not list: keep them (generic devices) or refuse them (strict models). */
    unknownMetrics: z.enum(['accept', 'refuse']).default('accept'),
    /** A value outside [min, max]: refuse that value (others go on), or keep it and mark the reading. */
    outOfRange: z.enum(['refuse', 'flag']).default('refuse'),
    events: z.array(eventRuleSchema).default([]),
    /**
     * MQTT 5 user properties kept with the data: those named in `tags` become tags of the message's
     * readings (the registry's own tags win) and attributes of its events; any other is ignored. A tag is
     * a series in InfluxDB: list only names whose values are few (a floor, a line), never an id per message.
     */
    userProperties: z
      .strictObject({
        tags: z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, 'a tag name is a letter or _, then letters, digits or _ (at most 64)')).min(1).max(16),
        /** A longer value is ignored (not cut). */
        maxValueLength: z.number().int().min(1).max(1024).default(128),
      })
      .optional(),
  })
  .superRefine((p, ctx) => {
    const need = { binary: p.binary, opcua: p.opcua } as const;
    if (p.format === 'binary' && !need.binary) ctx.addIssue({ code: 'custom', path: ['binary'], message: 'format binary needs a binary layout' });
    if (p.format === 'opcua' && !need.opcua) ctx.addIssue({ code: 'custom', path: ['opcua'], message: 'format opcua needs opcua.nodes' });
    if (p.format === 'gb26875' && !p.gb26875) ctx.addIssue({ code: 'custom', path: ['gb26875'], message: 'format gb26875 needs a gb26875 section (components at least {})' });
    const allowed: Record<(typeof INPUTS)[number], readonly string[]> = {
      mqtt: ['json', 'binary', 'hj212', 'gb26875'],
      'hj212-tcp': ['hj212'],
      opcua: ['opcua'],
      'http-push': ['json', 'binary'],
      'gb26875-tcp': ['gb26875'],
    };
    if (!allowed[p.input].includes(p.format)) {
      ctx.addIssue({ code: 'custom', path: ['format'], message: `input ${p.input} carries ${allowed[p.input].join(' or ')}, not ${p.format}` });
    }
    for (const [name, m] of Object.entries(p.metrics)) {
      if (m.min !== undefined && m.max !== undefined && m.min > m.max) {
        ctx.addIssue({ code: 'custom', path: ['metrics', name, 'max'], message: 'max is below min' });
      }
    }
  });

export type ProfileInput = z.input<typeof profileSchema>;
export type Profile = z.output<typeof profileSchema>;
export type EventRule = z.output<typeof eventRuleSchema>;
export type MetricSpec = z.output<typeof metricSchema>;
