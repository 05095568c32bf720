// Requests Node's HTTP parser refuses before the app sees them: request line and headers over
// 16 KiB (Node's maxHeaderSize; the URL counts) → 431, a malformed request → 400, both in the one
// error shape. Node's own answer destroys the socket right after writing, which resets the
// connection while the client's unread headers are still arriving (curl: "Recv failure:
// Connection reset by peer"); here the answer goes out and the connection closes when the client
// closes its side, or after the lingering bounds.
import type { Socket } from 'node:net';
import { ZvError } from '../errors/registry.js';
import type { LingerLimits } from './linger.js';

const REASONS: Record<number, string> = { 400: 'Bad Request', 431: 'Request Header Fields Too Large' };

const answered = new WeakSet<Socket>();

function answerOf(err: NodeJS.ErrnoException): ZvError {
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    return new ZvError('HEADERS_TOO_LARGE', 'the request line and headers are over 16 KiB together (a long URL counts)');
  }
  return new ZvError('BAD_REQUEST', `the request cannot be parsed (${err.code ?? err.message})`);
}

/** A `clientError` listener for the node server. */
export function clientErrorHandler(limits: LingerLimits): (err: NodeJS.ErrnoException, socket: Socket) => void {
  return (err, socket) => {
    // The parser reports the error again for every later chunk: they are read and dropped.
    if (answered.has(socket)) {
      if (socket.bytesRead - (startedAt.get(socket) ?? 0) > limits.maxBytes) socket.destroy();
      else idleTimers.get(socket)?.refresh();
      return;
    }
    answered.add(socket);
    if (err.code === 'ECONNRESET' || err.code === 'ERR_HTTP_REQUEST_TIMEOUT' || !socket.writable) {
      // a timeout keeps Node's plain answer; a client that is gone needs none
      if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT' && socket.writable) socket.write('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n');
      socket.destroy();
      return;
    }
    const e = answerOf(err);
    const body = JSON.stringify({ error: { code: e.code, message: e.message } });
    socket.write(
      `HTTP/1.1 ${e.status} ${REASONS[e.status] ?? 'Error'}\r\ncontent-type: application/json\r\n`
      + `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
    startedAt.set(socket, socket.bytesRead);
    const close = (): void => {
      clearTimeout(total);
      clearTimeout(idle);
      socket.destroy();
    };
    const total = setTimeout(close, limits.maxMs);
    const idle = setTimeout(close, limits.idleMs);
    total.unref();
    idle.unref();
    idleTimers.set(socket, idle);
    // The client read the answer and closed its side: nothing is left unread, close ours.
    socket.once('end', () => {
      clearTimeout(total);
      clearTimeout(idle);
      socket.destroySoon();
    });
    socket.once('close', () => {
      clearTimeout(total);
      clearTimeout(idle);
    });
  };
}

const startedAt = new WeakMap<Socket, number>();
const idleTimers = new WeakMap<Socket, NodeJS.Timeout>();
