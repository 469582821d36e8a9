export { MAX_STRING_LENGTH, OPCUA_VALUE_REJECT, mapDataValue, timestampMs, type DataValueLike, type OpcuaMappedValue, type OpcuaValueRejectCode } from './value.ts';
