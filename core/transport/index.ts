// The public API of the peer transport (core/transport): Raft messages and snapshots between members over HTTP/2,
// plus the peer listener's request endpoints (see README.md in this folder).

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
