// The kept output of functions (PRODUCT.md §12, issue 12): what the management API reads and follows.
// The store (./store.ts) implements it; the API sees only this port.

export type LogStreamName = 'stdout' | 'stderr';

/** One kept line of a function's output. `at` is an ISO time; `function` the function's path. */
export interface LogEntry {
  at: string;
  stream: LogStreamName;
  line: string;
  function: string;
}

export interface LogQuery {
  /** Only lines at or after this time (ms since the epoch). */
  since?: number;
  /** Only the last `tail` lines (after `since`). */
  tail?: number;
}

/** What the API may do with the kept function logs of an application. */
export interface AppLogs {
  /** The kept lines of one function (`fn`) or of every function of the application (`fn` null), oldest first. */
  read(namespace: string, app: string, fn: string | null, q: LogQuery): Promise<LogEntry[]>;
  /**
   * Calls `onEntry` for each new line of the function (or of every function) until the returned
   * function is called; `onEnd` is called once if the store closes first (server shutdown).
   */
  follow(namespace: string, app: string, fn: string | null, onEntry: (e: LogEntry) => void, onEnd: () => void): () => void;
}
