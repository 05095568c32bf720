// What a group of CLI commands gets from main(): the shared client options, the API client for an
// invocation, and the printers (so every command prints --json and errors the same way).
import type { Command } from 'commander';
import type { ApiClient } from './client.js';

export interface ClientOpts {
  server?: string;
  token?: string;
  dataDir?: string;
  json?: boolean;
}

export interface CommandContext {
  clientOptions: (cmd: Command) => Command;
  client: (o: ClientOpts) => Promise<ApiClient>;
  show: (o: ClientOpts, data: unknown, human: () => string) => void;
  out: (s: string) => void;
}
