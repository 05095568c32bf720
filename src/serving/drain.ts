// Wraps a LoadedFunction so it can be retired without failing requests: after `retire()` the
// gateway no longer routes to it, in-flight invocations finish on the old code, then it is disposed.
import type { FunctionRequest, FunctionResponse } from '../core/function-contract.js';
import type { LoadedFunction } from '../runtimes/types.js';

/**
 * The two handlers a function handle passes a call's promise through (`.then(...)`): each calls
 * `ended` and hands the answer or the error on. Made once per handle, not per call: they sit on
 * every request's path.
 */
export function passThrough(ended: () => void): { answered: (r: FunctionResponse) => FunctionResponse; failed: (e: unknown) => never } {
  return {
    answered: (r) => {
      ended();
      return r;
    },
    failed: (e) => {
      ended();
      throw e;
    },
  };
}

export class DrainingFunction {
  private inflight = 0;
  private retiring: Promise<void> | null = null;
  private idle: (() => void) | null = null;

  constructor(readonly fn: LoadedFunction) {}

  get inFlight(): number {
    return this.inflight;
  }

  invoke(req: FunctionRequest): Promise<FunctionResponse> {
    this.inflight++;
    // .then rather than async/await: this sits on every request's path
    let running: Promise<FunctionResponse>;
    try {
      running = this.fn.invoke(req);
    } catch (e) {
      this.ended();
      return Promise.reject(e);
    }
    return running.then(this.passed.answered, this.passed.failed);
  }

  private readonly passed = passThrough(() => this.ended());

  private ended(): void {
    this.inflight--;
    if (this.inflight === 0 && this.idle) this.idle();
  }

  /** Counts a request handled outside `invoke` (a proxied one) as in flight until `done` is called. */
  begin(): () => void {
    this.inflight++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.ended();
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
