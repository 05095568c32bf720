// The age wrapper against the real `age` CLI (Debian's /usr/bin/age): files either side makes
// open on the other side, binary and armored, and wrong keys or altered files are refused.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgeError, decrypt, encrypt, generateIdentity, identityFileText, isAgeFile, isIdentity, isX25519Recipient, parseIdentityFile, recipientOf } from './age.js';

const AGE = 'age';

describe('age wrapper', () => {
  let dir: string;
  let identity: string;
  let recipient: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'zv-age-'));
    identity = await generateIdentity();
    recipient = await recipientOf(identity);
    await writeFile(join(dir, 'key.txt'), await identityFileText(identity), { mode: 0o600 });
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('makes X25519 identities in the age-keygen file format', async () => {
    assert.ok(isIdentity(identity));
    assert.ok(isX25519Recipient(recipient));
    const text = await readFile(join(dir, 'key.txt'), 'utf8');
    assert.match(text, /^# created: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n# public key: age1\w+\nAGE-SECRET-KEY-1\w+\n$/);
    assert.deepEqual(parseIdentityFile(text), [identity]);
    // age-keygen -y reads it back to the same recipient
    assert.equal(execFileSync('age-keygen', ['-y', join(dir, 'key.txt')], { encoding: 'utf8' }).trim(), recipient);
  });

  it('opens files the age CLI encrypted to the recipient, binary and armored', async () => {
    await writeFile(join(dir, 'x.env'), 'DB_PASSWORD=hunter2\n');
    execFileSync(AGE, ['-r', recipient, '-o', join(dir, 'x.env.age'), join(dir, 'x.env')]);
    execFileSync(AGE, ['-a', '-r', recipient, '-o', join(dir, 'x.env.asc'), join(dir, 'x.env')]);
    for (const f of ['x.env.age', 'x.env.asc']) {
      const bytes = await readFile(join(dir, f));
      assert.ok(isAgeFile(bytes), f);
      assert.equal(Buffer.from(await decrypt(bytes, [identity])).toString(), 'DB_PASSWORD=hunter2\n', f);
    }
  });

  it('makes files the age CLI opens with the identity file', async () => {
    for (const armor of [false, true]) {
      const out = join(dir, armor ? 'y.asc' : 'y.age');
      await writeFile(out, await encrypt('A=1\n', [recipient], { armor }));
      assert.equal(execFileSync(AGE, ['-d', '-i', join(dir, 'key.txt'), out], { encoding: 'utf8' }), 'A=1\n');
    }
  });

  it('refuses a file for another recipient, an altered file and a non-age file', async () => {
    const other = await recipientOf(await generateIdentity());
    const forOther = await encrypt('A=1\n', [other]);
    await assert.rejects(decrypt(forOther, [identity]), (e: unknown) => e instanceof AgeError && /another recipient/.test(e.message));
    const altered = await encrypt('A=1\n', [recipient]);
    altered[altered.length - 2] = altered[altered.length - 2]! ^ 1;
    await assert.rejects(decrypt(altered, [identity]), AgeError);
    assert.equal(isAgeFile(Buffer.from('A=1\n')), false);
    const crowded = await encrypt('A=1\n', [recipient, ...(await Promise.all(Array.from({ length: 64 }, async () => recipientOf(await generateIdentity()))))]);
    await assert.rejects(decrypt(crowded, [identity]), /more than 64 recipients/);
    await assert.rejects(encrypt('x', ['age1notarecipient']), /not an age recipient/);
  });

  it('parses key files with several identities and refuses anything else without echoing it', async () => {
    const second = await generateIdentity();
    assert.deepEqual(parseIdentityFile(`# c\n${identity}\n\n${second}\n`), [identity, second]);
    assert.throws(() => parseIdentityFile('# only comments\n'), /holds no age identity/);
    assert.throws(() => parseIdentityFile(`${identity}\nnot-a-key-SECRETISH\n`), (e: unknown) => e instanceof AgeError && /line 2/.test(e.message) && !e.message.includes('SECRETISH'));
  });
});
