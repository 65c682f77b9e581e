// The public API of the peer transport.

export { PeerTransport, peerRequest } from "./transport.js";
export type {
  Logger,
  NetworkStats,
  PeerHttpHandler,
  PeerHttpRequest,
  PeerHttpResponse,
  PeerNetworkStats,
  PeerReply,
  PeerStats,
  PeerTimeouts,
  RefusalReason,
  TransportFaults,
  TransportOptions,
  TransportTls,
} from "./transport.js";
export { TransportError, TransportErrorCode, isTransportError } from "./errors.js";
export { goErrorText, remoteTlsAlert } from "./tls_alerts.js";
export { decodeMessage, encodeMessage } from "./codec.js";
