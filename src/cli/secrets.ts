// `zerverless secrets recipient|encrypt`: the server's age public key, and local encryption of a
// dotenv (or JSON/YAML) file to it, writing FILE.age for `envFrom`. The plaintext never leaves
// this machine; the recipient comes from --recipient, from <data-dir>/age.key on the server host,
// or from GET /api/secrets/recipient.
import { readFile, writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { ZvError } from '../errors/registry.js';
import { MAX_SECRET_FILE_BYTES } from '../core/secrets.js';
import { encrypt, isAgeFile } from '../secrets/age.js';
import { AgeKeyring } from '../secrets/keyring.js';
import { pairsOfText, parseDotenv, SecretFormatError, sniffSecretFile, toSecretEnv } from '../secrets/keyring-formats.js';
import type { ClientOpts, CommandContext } from './context.js';

async function serverRecipient(ctx: CommandContext, o: ClientOpts): Promise<string> {
  if (o.dataDir) return (await AgeKeyring.read(o.dataDir)).recipient;
  const r = (await (await ctx.client(o)).request('GET', '/secrets/recipient')) as { recipient?: unknown } | null;
  if (typeof r?.recipient !== 'string') throw new ZvError('BAD_REQUEST', 'the server did not answer a recipient');
  return r.recipient;
}

/** The key names of a plaintext secrets file, checking that the server will read it. */
function keysOf(file: string, text: string): string[] {
  const inner = file.toLowerCase();
  try {
    const pairs = inner.endsWith('.json') ? pairsOfText(text, 'json') : inner.endsWith('.yaml') || inner.endsWith('.yml') ? pairsOfText(text, 'yaml') : parseDotenv(text);
    const { env, skipped } = toSecretEnv(pairs);
    if (skipped.length) process.stderr.write(`warning: ${skipped.map((k) => JSON.stringify(k)).join(', ')} are not environment variable names and will be skipped\n`);
    return Object.keys(env);
  } catch (e) {
    if (e instanceof SecretFormatError) throw new ZvError('VALIDATION_FAILED', `${file}: ${e.message}`);
    throw e;
  }
}

export function addSecretsCommands(program: Command, ctx: CommandContext): void {
  const secrets = program.command('secrets').description("secrets for functions' envFrom: the server's age recipient, local encryption");

  ctx.clientOptions(secrets.command('recipient').description("print the server's age public key (age1…); --data-dir reads <data-dir>/age.key on the server host"))
    .action(async (o: ClientOpts) => {
      const recipient = await serverRecipient(ctx, o);
      ctx.show(o, { recipient }, () => recipient);
    });

  ctx.clientOptions(secrets.command('encrypt <file>').description('encrypt a dotenv (or .json/.yaml) file to the server: writes FILE.age for envFrom'))
    .option('--recipient <age1…>', "encrypt to this recipient instead of asking the server (repeat for several)", (v: string, prev: string[] = []) => [...prev, v])
    .option('-o, --output <file>', 'where to write (default FILE.age)')
    .option('--armor', 'write the ASCII-armored form instead of binary')
    .action(async (file: string, o: ClientOpts & { recipient?: string[]; output?: string; armor?: boolean }) => {
      const bytes = await readFile(file).catch((e: NodeJS.ErrnoException) => {
        throw new ZvError('BAD_REQUEST', `cannot read ${file}: ${e.code ?? e.message}`);
      });
      if (bytes.length > MAX_SECRET_FILE_BYTES) throw new ZvError('VALIDATION_FAILED', `${file} is ${bytes.length} bytes; the server reads secrets files up to ${MAX_SECRET_FILE_BYTES}`);
      if (isAgeFile(bytes) || sniffSecretFile(file, bytes)) throw new ZvError('VALIDATION_FAILED', `${file} is already encrypted`);
      const keys = keysOf(file, bytes.toString('utf8'));
      const recipients = o.recipient?.length ? o.recipient : [await serverRecipient(ctx, o)];
      const output = o.output ?? `${file}.age`;
      let sealed: Uint8Array;
      try {
        sealed = await encrypt(bytes, recipients, { armor: o.armor ?? false });
      } catch (e) {
        throw new ZvError('VALIDATION_FAILED', e instanceof Error ? e.message : String(e));
      }
      await writeFile(output, sealed);
      ctx.show(o, { file: output, recipients, keys }, () =>
        `wrote ${output} for ${recipients.join(', ')} (${keys.length} key(s): ${keys.join(', ') || '-'}); commit it, keep ${file} out of git`);
    });
}
