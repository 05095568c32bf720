// Lingering close, as nginx does it: after the server answered a request early (413: the body is
// over --max-body) the client is usually still sending. Closing a socket with unread data makes
// the kernel send a reset, and a client that is still writing then fails with EPIPE/ECONNRESET
// and never reads the answer (curl: "Send failure: Broken pipe"). So the rest of the body is read
// and thrown away, within bounds (bytes, total time, time without data), and the connection is
// closed once the body ended, the client closed its side, or a bound was hit.
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';

export interface LingerLimits {
  /** Most bytes read and discarded after the answer (then the connection is reset). */
  maxBytes: number;
  /** Longest lingering in all (nginx lingering_time: 30 s). */
  maxMs: number;
  /** Longest wait for more data (nginx lingering_timeout: 5 s). */
  idleMs: number;
}

export const MIN_LINGER_BYTES = 64 * 1024 * 1024;

/** The bounds for a server with this --max-body: four times it, at least 64 MiB; 30 s; 5 s idle. */
export function lingerLimits(maxBodyBytes: number): LingerLimits {
  return { maxBytes: Math.max(4 * maxBodyBytes, MIN_LINGER_BYTES), maxMs: 30_000, idleMs: 5_000 };
}

const lingering = new WeakSet<IncomingMessage>();

/**
 * Reads and discards the rest of `incoming`'s body within `limits`. Call it when answering before
 * the body arrived. Node (for a `connection: close` answer) and the Hono adapter's own drain (for
 * an unread body) close the connection with `socket.destroySoon()`, which here waits until nothing
 * is left unread (or a bound is hit) before it ends and destroys the socket; the answer is written
 * at once. When the body ends and nobody asked to close, the connection stays usable.
 */
export function lingerClose(incoming: IncomingMessage, limits: LingerLimits): void {
  const socket = incoming.socket as Socket | null;
  if (!socket || socket.destroyed || lingering.has(incoming) || incoming.complete) return;
  lingering.add(incoming);
  const destroySoon = socket.destroySoon.bind(socket);
  let read = 0;
  let bodyDone = false;
  let closing = false;

  const stop = (): void => {
    clearTimeout(total);
    clearTimeout(idle);
    // A kept-alive connection carries more requests: one listener per lingered answer would pile up.
    socket.off('close', stop);
  };
  // A bound was hit: reset the connection (what is unread is lost; the answer had its chance).
  const abort = (): void => {
    stop();
    socket.destroy();
  };
  // Nothing is left unread (or the client is gone): close normally once the answer is out; a
  // connection whose answer did not ask to close is left alone (it may carry the next request).
  const settle = (): void => {
    if (bodyDone) return;
    bodyDone = true;
    stop();
    if (closing) destroySoon();
    else Reflect.deleteProperty(socket, 'destroySoon');
  };
  const total = setTimeout(abort, limits.maxMs);
  const idle = setTimeout(abort, limits.idleMs);
  total.unref();
  idle.unref();

  // Not a half-close (nginx shuts the writing side down): many clients end their own side when
  // they see a FIN and then fail the writes they still have, so the FIN waits for the body.
  socket.destroySoon = () => {
    closing = true;
    if (bodyDone) destroySoon();
  };
  socket.once('close', stop);

  // Whoever read the body before (a web stream over it) stops getting it: it is thrown away here.
  incoming.removeAllListeners('data');
  incoming.on('data', (chunk: Buffer) => {
    read += chunk.length;
    if (read > limits.maxBytes) abort();
    else idle.refresh();
  });
  incoming.once('end', settle);
  incoming.once('error', settle);
  incoming.once('close', settle);
  incoming.resume();
}
