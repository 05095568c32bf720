// The end of an idle kept-alive connection, without the reset of a request already sent on it.
//
// Node closes a kept-alive connection when it has been idle for `keepAliveTimeout` (5 s), from a
// timer. When the event loop was blocked for longer than that (seen while a sync started 600
// Python workers), the timer runs late, in the loop's timers phase, before the poll phase reads
// what arrived meanwhile: a client that sent its next request on the connection during the block
// has it thrown away with the socket, and the unread data makes the kernel answer with a reset
// (the client sees ECONNRESET for a request the server never saw). Here the close waits for one
// poll phase (setImmediate): if anything arrived, a request is on its way and the connection
// stays; otherwise it closes as before. A client whose request crosses the close on the wire still
// sees the ordinary keep-alive race, which clients retry.
import type { Server } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Takes over the server's socket timeouts (a `timeout` listener on the server replaces Node's
 * default destroy). The server's sockets time out only when idle between requests: zerverless sets
 * no `server.timeout`; requests are bounded by `headersTimeout` and `requestTimeout`.
 */
export function closeIdleAfterPoll(server: Server): void {
  server.on('timeout', (socket: Socket) => {
    const read = socket.bytesRead;
    setImmediate(() => {
      if (socket.bytesRead === read) socket.destroy();
    });
  });
}
