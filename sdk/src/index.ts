export {
  createStreamGateClient,
  type RequestOptions,
  type StreamGateClient,
  type StreamGateClientOptions,
  type StreamGateSdk,
} from './client.js';
export { type GraphQLErrorShape, type InputProblem, StreamGateError, type StreamGateErrorCode } from './errors.js';
// Every operation's document, variables and result type, the input and enum types, and getSdk
// (for a transport of your own).
export * from './generated/sdk.js';
export {
  type Publisher,
  RELAY_CLOSE_CODES,
  type Relay,
  type RelayClose,
  type RelayCloseCode,
  RelayClosedError,
  type RelayFrame,
  type Watcher,
} from './relay.js';
