// Loopback ports for service processes, handed out from a range: a port is reserved while a process
// of this runtime holds it, and a candidate is taken only if it can be bound on 127.0.0.1 right now.
import { createServer } from 'node:net';
import { serviceError } from './errors.js';

export class PortPool {
  private readonly held = new Set<number>();
  private next: number;

  constructor(private readonly from: number, private readonly to: number) {
    if (!Number.isInteger(from) || !Number.isInteger(to) || from < 1 || to > 65535 || from > to) {
      throw serviceError('invalid-spec', `port range [${from}, ${to}] is not valid`);
    }
    this.next = from;
  }

  /** Reserves a free port of the range. */
  async take(): Promise<number> {
    const size = this.to - this.from + 1;
    for (let i = 0; i < size; i++) {
      const port = this.next;
      this.next = port >= this.to ? this.from : port + 1;
      if (this.held.has(port)) continue;
      this.held.add(port);
      if (await bindable(port)) return port;
      this.held.delete(port);
    }
    throw serviceError('start', `no free port in [${this.from}, ${this.to}]`);
  }

  /**
   * Marks a port pinned by a spec as used; false when a process of this pool (any service sharing
   * it) already holds it. Other processes on the host are not checked: the service will tell.
   */
  hold(port: number): boolean {
    if (this.held.has(port)) return false;
    this.held.add(port);
    return true;
  }

  release(port: number): void {
    this.held.delete(port);
  }
}

export function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ host: '127.0.0.1', port, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}
