// The bounded per-service log: stdout/stderr lines of the service's processes (and of its install and
// build), plus the runtime's own notes (`system`), each with its time. Oldest lines go first once the
// byte budget is spent; a single line is cut at MAX_LINE characters.
export type LogStreamName = 'stdout' | 'stderr' | 'system';

export interface LogLine {
  time: number;
  stream: LogStreamName;
  text: string;
}

const MAX_LINE = 16 * 1024;

export class LogBuffer {
  private lines: LogLine[] = [];
  private head = 0;
  private bytes = 0;

  /** `onLine` is also told each line (the server keeps them on disk: src/logs/). */
  constructor(private readonly maxBytes: number, private readonly onLine?: (l: LogLine) => void) {}

  add(stream: LogStreamName, text: string): void {
    const line = text.length > MAX_LINE ? text.slice(0, MAX_LINE) + '…' : text;
    const entry = { time: Date.now(), stream, text: line };
    this.onLine?.(entry);
    this.lines.push(entry);
    this.bytes += cost(entry);
    while (this.bytes > this.maxBytes && this.head < this.lines.length) {
      this.bytes -= cost(this.lines[this.head] as LogLine);
      this.head++;
    }
    // Compact now and then instead of shifting on every line.
    if (this.head > 1024 && this.head * 2 > this.lines.length) {
      this.lines = this.lines.slice(this.head);
      this.head = 0;
    }
  }

  /** `<ISO time> <stream> <text>`, oldest first. */
  read(): string[] {
    return this.lines.slice(this.head).map((l) => `${new Date(l.time).toISOString()} ${l.stream} ${l.text}`);
  }

  get size(): number {
    return this.bytes;
  }

  /** A writer that splits a byte stream into lines (a partial last line is kept until `end`). */
  writer(stream: Exclude<LogStreamName, 'system'>, prefix = ''): { write(b: Buffer | string): void; end(): void } {
    let rest = '';
    return {
      write: (b) => {
        rest += typeof b === 'string' ? b : b.toString('utf8');
        let i: number;
        while ((i = rest.indexOf('\n')) >= 0) {
          this.add(stream, prefix + rest.slice(0, i).replace(/\r$/, ''));
          rest = rest.slice(i + 1);
        }
        if (rest.length > MAX_LINE) {
          this.add(stream, prefix + rest);
          rest = '';
        }
      },
      end: () => {
        if (rest !== '') this.add(stream, prefix + rest);
        rest = '';
      },
    };
  }
}

// What a line counts against the budget: its text plus the time and stream columns.
function cost(l: LogLine): number {
  return Buffer.byteLength(l.text) + 32;
}
