// Wraps a LoadedFunction so it can be retired without failing requests: after `retire()` the
// gateway no longer routes to it, in-flight invocations finish on the old code, then it is disposed.
import type { FunctionRequest, FunctionResponse } from '../core/function-contract.js';
import type { LoadedFunction } from '../runtimes/types.js';

export class DrainingFunction {
  private inflight = 0;
  private retiring: Promise<void> | null = null;
  private idle: (() => void) | null = null;

  constructor(readonly fn: LoadedFunction) {}

  get inFlight(): number {
    return this.inflight;
  }

  invoke(req: FunctionRequest): Promise<FunctionResponse> {
    const done = this.begin();
    // .then rather than async/await: this sits on every request's path, and each async layer costs
    let running: Promise<FunctionResponse>;
    try {
      running = this.fn.invoke(req);
    } catch (e) {
      done();
      return Promise.reject(e);
    }
    return running.then(
      (r) => {
        done();
        return r;
      },
      (e: unknown) => {
        done();
        throw e;
      },
    );
  }

  /** Counts a request handled outside `invoke` (a proxied one) as in flight until `done` is called. */
  begin(): () => void {
    this.inflight++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.inflight--;
      if (this.inflight === 0 && this.idle) this.idle();
    };
  }

  /** Disposes once every in-flight invocation has finished (or after `maxWaitMs`). */
  retire(maxWaitMs: number): Promise<void> {
    this.retiring ??= (async () => {
      if (this.inflight > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, maxWaitMs);
          timer.unref();
          this.idle = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      await this.fn.dispose().catch(() => {});
    })();
    return this.retiring;
  }
}
