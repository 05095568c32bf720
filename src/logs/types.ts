// The kept output of functions and services (PRODUCT.md §12, issue 12): what the management API
// reads and follows. The store (./store.ts) implements it; the API sees only this port.

/** `system`: a service runtime's own notes (fetching, installing, restarts). */
export type LogStreamName = 'stdout' | 'stderr' | 'system';

/**
 * One kept line. `at` is an ISO time; `function` the function's path, or `service` the service's
 * name. A source name starting with `/` is a function's path, any other a service's name.
 */
export interface LogEntry {
  at: string;
  stream: LogStreamName;
  line: string;
  function?: string;
  service?: string;
}

export interface LogQuery {
  /** Only lines at or after this time (ms since the epoch). */
  since?: number;
  /** Only the last `tail` lines (after `since`). */
  tail?: number;
}

/** What the API may do with the kept function logs of an application. */
export interface AppLogs {
  /**
   * The kept lines of one function or service (`source`: a path or a service name) or of every
   * function of the application (`source` null), oldest first.
   */
  read(namespace: string, app: string, source: string | null, q: LogQuery): Promise<LogEntry[]>;
  /**
   * Calls `onEntry` for each new line of the source (or of every function) until the returned
   * function is called; `onEnd` is called once if the store closes first (server shutdown).
   */
  follow(namespace: string, app: string, source: string | null, onEntry: (e: LogEntry) => void, onEnd: () => void): () => void;
}
