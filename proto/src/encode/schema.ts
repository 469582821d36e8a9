// The numbers of citysense.v1 (proto/citysense/v1/ingest.proto) that the hand-written Batch encoder
// writes: one tag per field, built from its field number and wire type, named MESSAGE_FIELD after the
// .proto, and the enum codes. proto/test/encode-schema.test.ts parses ingest.proto with protobufjs and
// checks every name here against it both ways (each field of the encoded messages has its tag, each tag
// its field, numbers and wire types equal), so a schema change cannot silently diverge from the encoder.
import type { Family, Lane, Priority } from '../types.ts';

// Wire types (protobuf encoding spec).
const VARINT = 0;
const I64 = 1;
const LEN = 2;

/** A field's tag: (field number << 3) | wire type. Every tag of this schema fits in one byte. */
const tag = (fieldNo: number, wireType: number): number => (fieldNo << 3) | wireType;

// Batch
export const BATCH_EDGE_ID = tag(1, LEN);
export const BATCH_SEQ = tag(2, VARINT);
export const BATCH_CREATED_MS = tag(3, VARINT);
export const BATCH_BASE_TS_MS = tag(4, VARINT);
export const BATCH_DEVICES = tag(5, LEN);
export const BATCH_KEYS = tag(6, LEN);
export const BATCH_READINGS = tag(7, LEN);
export const BATCH_EVENTS = tag(8, LEN);
export const BATCH_SERIES = tag(9, LEN);
export const BATCH_DROPS = tag(10, LEN);
export const BATCH_LANE = tag(11, VARINT);

// Device
export const DEVICE_ID = tag(1, LEN);
export const DEVICE_FAMILY = tag(2, VARINT);
export const DEVICE_TAGS = tag(3, LEN);

// Value (row form)
export const VALUE_KEY = tag(1, VARINT);
export const VALUE_F64 = tag(2, I64);
export const VALUE_DEC = tag(3, VARINT);
export const VALUE_SCALE = tag(4, VARINT);
export const VALUE_FLAG = tag(5, VARINT);
export const VALUE_TEXT = tag(6, LEN);

// Reading (row form)
export const READING_DEVICE = tag(1, VARINT);
export const READING_TS_OFFSET_MS = tag(2, VARINT);
export const READING_VALUES = tag(3, LEN);
export const READING_QUALITY = tag(4, LEN);
export const READING_DEVICE_SEQ = tag(5, VARINT);
export const READING_TAGS = tag(6, LEN);

// Event
export const EVENT_DEVICE = tag(1, VARINT);
export const EVENT_TS_OFFSET_MS = tag(2, VARINT);
export const EVENT_TYPE = tag(3, LEN);
export const EVENT_ATTRS = tag(4, LEN);
export const EVENT_PRIORITY = tag(5, VARINT);
export const EVENT_ID = tag(6, LEN);
export const EVENT_DEVICE_SEQ = tag(7, VARINT);

// Series (column form); repeated numbers are packed (one LEN field)
export const SERIES_DEVICE = tag(1, VARINT);
export const SERIES_TS_DELTAS = tag(2, LEN);
export const SERIES_COLUMNS = tag(3, LEN);
export const SERIES_QUALITY = tag(4, LEN);
export const SERIES_DEVICE_SEQ_DELTAS = tag(5, LEN);
export const SERIES_TAGS = tag(6, LEN);

// Column
export const COLUMN_KEY = tag(1, VARINT);
export const COLUMN_SCALE = tag(2, VARINT);
export const COLUMN_DEC_DELTAS = tag(3, LEN);
export const COLUMN_F64 = tag(4, LEN);
export const COLUMN_FLAG = tag(5, LEN);
export const COLUMN_TEXT = tag(6, LEN);

// DropReport
export const DROP_REPORT_DEVICE_ID = tag(1, LEN);
export const DROP_REPORT_DATA_CLASS = tag(2, LEN);
export const DROP_REPORT_REASON = tag(3, LEN);
export const DROP_REPORT_COUNT = tag(4, VARINT);
export const DROP_REPORT_OLDEST_TS_MS = tag(5, VARINT);

// The entry of every map<string, string> (Device.tags, Reading.tags, Event.attrs, Series.tags)
export const MAP_ENTRY_KEY = tag(1, LEN);
export const MAP_ENTRY_VALUE = tag(2, LEN);

// Enum codes
export const FAMILY_CODE: Readonly<Record<Family, number>> = { environment: 1, elevator: 2, fire: 3, nbiot: 4 };
export const PRIORITY_CODE: Readonly<Record<Priority, number>> = { routine: 1, warning: 2, alarm: 3 };
export const LANE_CODE: Readonly<Record<Lane, number>> = { telemetry: 1, alarm: 2 };
