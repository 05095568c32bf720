// A raw HTTP/1.1 client for edge tests: sends one request whose body is `total` bytes (declared with
// content-length, or chunked) in 64 KiB writes, as fast as the socket takes them, and reports what
// it read (the status line, whether the server closed cleanly) or the socket error it hit.
import { connect } from 'node:net';

export interface RawOutcome {
  /** `413 Payload Too Large`, … or undefined when no status line was read. */
  status?: string;
  /** The whole answer as latin1 text. */
  response: string;
  /** ECONNRESET, EPIPE, … when the socket failed. */
  error?: string;
  /** Body bytes handed to the socket. */
  sent: number;
  ms: number;
}

export interface RawOptions {
  chunked?: boolean;
  method?: string;
  /** Do not read anything before the whole body is written (as a client that reads only afterwards). */
  readAfterSend?: boolean;
  /** Stop writing once this many body bytes are sent, leaving the request unfinished and the socket open. */
  stallAfter?: number;
  headers?: Record<string, string>;
  /** Gives up (destroys the socket) after this long. */
  timeoutMs?: number;
  /** End the socket once a whole answer (with content-length) is read, as curl does. */
  endAfterAnswer?: boolean;
}

export function sendBody(url: string, path: string, total: number, opts: RawOptions = {}): Promise<RawOutcome> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const started = Date.now();
    const sock = connect(Number(u.port), u.hostname);
    const got: Buffer[] = [];
    let sent = 0;
    let error: string | undefined;
    let done = false;
    const chunk = Buffer.alloc(64 * 1024, 'x');
    const limit = Math.min(total, opts.stallAfter ?? total);
    const timer = setTimeout(() => {
      error ??= 'TIMEOUT';
      sock.destroy();
    }, opts.timeoutMs ?? 120_000);
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const response = Buffer.concat(got).toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3}[^\r\n]*)/.exec(response);
      resolve({ status: m?.[1], response, error, sent, ms: Date.now() - started });
    };
    const pump = (): void => {
      while (sent < limit && !sock.destroyed) {
        const n = Math.min(chunk.length, limit - sent);
        const piece = opts.chunked ? Buffer.concat([Buffer.from(`${n.toString(16)}\r\n`), chunk.subarray(0, n), Buffer.from('\r\n')]) : chunk.subarray(0, n);
        sent += n;
        const last = sent >= total;
        const more = sock.write(last && opts.chunked ? Buffer.concat([piece, Buffer.from('0\r\n\r\n')]) : piece);
        if (last) {
          if (opts.readAfterSend) sock.resume();
          return;
        }
        if (!more) {
          sock.once('drain', pump);
          return;
        }
      }
    };
    sock.on('connect', () => {
      const headers = { host: u.host, 'content-type': 'text/plain', ...(opts.chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': String(total) }), ...opts.headers };
      sock.write(`${opts.method ?? 'POST'} ${path} HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`);
      if (opts.readAfterSend) sock.pause();
      pump();
    });
    sock.on('data', (d: Buffer) => {
      got.push(d);
      if (!opts.endAfterAnswer) return;
      const text = Buffer.concat(got).toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      const length = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end));
      if (end !== -1 && length && Buffer.byteLength(text.slice(end + 4), 'latin1') >= Number(length[1])) sock.end();
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      error ??= e.code ?? e.message;
      sock.resume();
    });
    sock.on('close', finish);
  });
}
