// A loaded JS function: keeps one live isolate Instance, replaces it after a timeout or a memory
// kill, and turns what the isolate hands back into a FunctionResponse (through normalizeResult).
import { ZvError, toZvError } from '../../errors/registry.js';
import { normalizeResult } from '../../core/function-contract.js';
import type { FunctionRequest, FunctionResponse } from '../../core/function-contract.js';
import type { FunctionLogger, FunctionSource, LoadedFunction } from '../types.js';
import { Instance } from './instance.js';
import type { Packed } from './instance.js';
import type { CompiledCode } from './compile.js';
import { checkResponse, clipMessage, responseTooLarge } from '../response-cap.js';

/** Calls that take at least this long get their isolate's heap measured afterwards (see invoke). */
const CHECK_AFTER_MS = 1;

/** Errors that mean the isolate could not get memory outside its heap (array buffers). */
const ALLOCATION_FAILED = /^RangeError: (Array buffer allocation failed|.*could not allocate memory)/;

export class JsFunction implements LoadedFunction {
  private disposed = false;
  private creating: Promise<Instance> | null = null;

  constructor(
    private readonly source: FunctionSource,
    private readonly compiled: CompiledCode,
    private readonly log: FunctionLogger,
    private current: Instance | null,
    private readonly maxResponseBytes: number,
    private readonly onDispose: (fn: JsFunction) => void = () => {},
  ) {}

  async invoke(req: FunctionRequest): Promise<FunctionResponse> {
    if (this.disposed) throw new ZvError('FUNCTION_UNAVAILABLE', 'The function was unloaded');
    const inst = await this.instance();
    const started = performance.now();
    const packed = await inst.invoke(JSON.stringify(req));
    // Measuring the heap costs ~40 µs. A call that ends within CHECK_AFTER_MS cannot have written
    // enough to go far past the limit (memory is written at some GB/s), so only longer calls pay it.
    if (performance.now() - started >= CHECK_AFTER_MS && await inst.overLimit()) {
      if (this.current === inst) inst.kill('memory');
      throw new ZvError('FUNCTION_MEMORY_LIMIT', `The function went over its memory limit of ${this.source.memoryMb} MiB`);
    }
    if (packed.kind === 'error' && ALLOCATION_FAILED.test(packed.message)) {
      // an array buffer over the isolate's memory limit: the same as running out of heap
      this.log('stderr', `[zerverless] ${clipMessage(packed.message)}`);
      if (this.current === inst) inst.kill('memory');
      throw new ZvError('FUNCTION_MEMORY_LIMIT', `The function went over its memory limit of ${this.source.memoryMb} MiB`);
    }
    // the isolate refused anything over the cap before the copy; this is the exact count
    return checkResponse(this.toResponse(packed), this.maxResponseBytes);
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.current?.kill('disposed');
    this.current = null;
    const creating = this.creating;
    if (creating) await creating.then((i) => i.kill('disposed'), () => {});
    this.onDispose(this);
  }

  private instance(): Promise<Instance> {
    if (this.current && !this.current.dead) return Promise.resolve(this.current);
    this.current = null;
    if (!this.creating) {
      this.creating = Instance.create(this.source, this.compiled, this.log, this.maxResponseBytes).then(
        (inst) => {
          this.creating = null;
          if (this.disposed) {
            inst.kill('disposed');
            throw new ZvError('FUNCTION_UNAVAILABLE', 'The function was unloaded');
          }
          this.current = inst;
          return inst;
        },
        (e: unknown) => {
          this.creating = null;
          const err = toZvError(e, 'FUNCTION_UNAVAILABLE');
          // the code compiled at load, so a failure here is about this run, not the code
          throw err.code === 'FUNCTION_COMPILE_ERROR' ? new ZvError('FUNCTION_UNAVAILABLE', err.message, undefined, { cause: err }) : err;
        },
      );
    }
    return this.creating;
  }

  private toResponse(packed: Packed): FunctionResponse {
    switch (packed.kind) {
      case 'response':
        return { status: packed.status, headers: packed.headers, body: packed.body ?? '' };
      case 'error': {
        if (packed.stack) this.log('stderr', this.compiled.mapper.stack(packed.stack));
        let message = clipMessage(packed.message);
        if (/WebAssembly is not defined/.test(message)) message += ' (WebAssembly is not available to functions: its memory would not count against the memory limit)';
        throw new ZvError('FUNCTION_ERROR', message);
      }
      case 'bad':
        throw new ZvError('FUNCTION_BAD_RESPONSE', clipMessage(packed.reason));
      case 'toolarge':
        throw responseTooLarge(this.maxResponseBytes, packed.size, true);
      case 'value': {
        const r = normalizeResult(packed.value);
        if (!r.ok) throw new ZvError('FUNCTION_BAD_RESPONSE', r.reason);
        return r.response;
      }
    }
  }
}
