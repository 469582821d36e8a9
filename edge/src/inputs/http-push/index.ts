// HTTP push receivers for the operators' IoT platforms (issue 18): CTWing AEP, OneNET, OneNET Studio.
export { startHttpPush, PUSH_STATUS, type HttpPushListener, type HttpPushOptions } from './server.ts';
export { httpPushSchema, type HttpPushConfig, type HttpPushConfigInput } from './config.ts';
