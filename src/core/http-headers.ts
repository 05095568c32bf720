// Headers that belong to one HTTP connection, not to the message: never passed on by the gateway.

export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade',
  'proxy-authenticate', 'proxy-authorization', 'proxy-connection',
]);

/** Hop-by-hop headers plus `content-length`, which the sender recomputes for a body it holds whole. */
export const HOP_BY_HOP_AND_LENGTH: ReadonlySet<string> = new Set([...HOP_BY_HOP, 'content-length']);
