// Messages between the parse pool (pool.ts) and its worker threads (worker.ts). Results are plain
// data (structured clone): the same ParseResult / SpecParseResult the core parsers return.
import type { ParseResult } from '../../core/manifest/index.js';
import type { SpecParseResult } from '../../core/services/spec/index.js';

export type ParseRequest =
  | { kind: 'manifest'; text: string; file: string }
  | { kind: 'spec'; text: string; file: string };

export type ParseAnswer<R extends ParseRequest> = R extends { kind: 'manifest' } ? ParseResult : SpecParseResult;

export type ToWorker = { t: 'parse'; id: number; req: ParseRequest };

export type FromWorker =
  | { t: 'ready' }
  | { t: 'done'; id: number; result: ParseResult | SpecParseResult }
  /** The parser threw (a bug: the parsers return their problems). */
  | { t: 'failed'; id: number; message: string };
