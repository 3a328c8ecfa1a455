// comms-sdk: the REST API with an app's key (`CommsClient`, generated from the
// server's OpenAPI document) and chat through endpoints (`connectEndpoint`).

export * from "./generated.js";
export { CommsError, segment } from "./client.js";
export type { ClientOptions } from "./client.js";
export { connectEndpoint, endpointUrl, EndpointConnection, NotConnectedError } from "./connection.js";
export type { ConnectOptions, ConnectionEvent, ReconnectOptions, Welcome, WelcomeEndpoint } from "./connection.js";
