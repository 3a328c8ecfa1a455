// comms-sdk: the REST API with an app's key (`CommsClient`, generated from the
// server's OpenAPI document), chat through endpoints (`connectEndpoint`), and
// the check of webhook deliveries (`verifyWebhook`).

export * from "./generated.js";
export { CommsError } from "./client.js";
export type { ClientOptions } from "./client.js";
export {
  ConnectionClosedError,
  connectEndpoint,
  endpointUrl,
  EndpointConnection,
  NotConnectedError,
  QueueFullError,
  SendError,
} from "./connection.js";
export type {
  ConnectionEvent,
  ConnectionState,
  ConnectOptions,
  ReceivedMessage,
  ReconnectOptions,
  RoomMember,
  SendReceipt,
  WebSocketConstructor,
  WebSocketLike,
  Welcome,
  WelcomeEndpoint,
} from "./connection.js";
export { verifyWebhook, WebhookError } from "./webhook.js";
export type { VerifyWebhookOptions, WebhookErrorCode, WebhookEvent, WebhookHeaders } from "./webhook.js";
