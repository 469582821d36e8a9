// MQTT 5 reason codes the edge sends [MQTT-2.4], and which refusal maps to which: one table, so the
// CONNACK, PUBACK and DISCONNECT a device gets and docs/protocols/mqtt-json.md say the same thing.
import { CONNECT_REFUSE, PUBLISH_REFUSE, type ConnectRefuseReason } from './auth.ts';

export const RC = {
  success: 0x00,
  /** DISCONNECT by the client: publish the Will. */
  disconnectWithWill: 0x04,
  unspecified: 0x80,
  malformedPacket: 0x81,
  protocolError: 0x82,
  implementationSpecific: 0x83,
  clientIdNotValid: 0x85,
  badUserNameOrPassword: 0x86,
  notAuthorized: 0x87,
  serverBusy: 0x89,
  badAuthenticationMethod: 0x8c,
  keepAliveTimeout: 0x8d,
  sessionTakenOver: 0x8e,
  topicNameInvalid: 0x90,
  receiveMaximumExceeded: 0x93,
  topicAliasInvalid: 0x94,
  packetTooLarge: 0x95,
  quotaExceeded: 0x97,
  payloadFormatInvalid: 0x99,
  qosNotSupported: 0x9b,
  serverShuttingDown: 0x8b,
} as const;

/** CONNACK reason for each refusal at CONNECT (MQTT 3.1.1 return codes in server.ts). */
export function connackReason(reason: ConnectRefuseReason | string): number {
  switch (reason) {
    case CONNECT_REFUSE.missingCredentials:
    case CONNECT_REFUSE.unknownDevice:
    case CONNECT_REFUSE.badPassword:
      return RC.badUserNameOrPassword;
    case 'busy':
      return RC.serverBusy;
    case 'client_id_rejected':
      return RC.clientIdNotValid;
    case CONNECT_REFUSE.badAuthMethod:
      return RC.badAuthenticationMethod;
    default:
      // no_mqtt_login, a throttled source: the device may not log in, whatever it sends.
      return RC.notAuthorized;
  }
}

/** PUBACK reason for a PUBLISH refused on its topic. */
export function topicRefusalReason(reason: string): number {
  return reason === PUBLISH_REFUSE.foreignTopic ? RC.notAuthorized : RC.topicNameInvalid;
}
