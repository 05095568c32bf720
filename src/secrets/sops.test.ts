// The SOPS decoder against files made by the reference sops tool (testdata/flux, from Flux's test
// data) and by this project's independent encoder (testdata/sops), plus tampering: every altered
// value, key, order or MAC is refused.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { decrypt, parseIdentityFile } from './age.js';
import { decryptSops, formatGoFloat, sopsFormatOf, SopsError, type SopsMap, type SopsValue } from './sops.js';

const data = (p: string): string => readFileSync(new URL(`./testdata/${p}`, import.meta.url), 'utf8');
const ids = (...files: string[]): string[] => files.flatMap((f) => parseIdentityFile(data(f)));

function unwrapWith(identities: string[]) {
  return async (list: { enc: string }[]): Promise<Uint8Array | null> => {
    for (const { enc } of list) {
      try {
        return await decrypt(Buffer.from(enc), identities);
      } catch {
        // another recipient
      }
    }
    return null;
  };
}

/** The decoded tree as plain JS (bigint as `123n` strings) for comparisons. */
function plain(v: SopsValue): unknown {
  if (typeof v === 'bigint') return `${v}n`;
  if (v instanceof Uint8Array) return Buffer.from(v).toString('utf8');
  if (Array.isArray(v)) return v.map(plain);
  if (v !== null && typeof v === 'object') return Object.fromEntries((v as SopsMap).entries.map(([k, x]) => [k, plain(x)]));
  return v;
}

async function open(file: string, identities: string[], text = data(file)): Promise<unknown> {
  return plain(await decryptSops(text, sopsFormatOf(file, text), unwrapWith(identities)));
}

describe('SOPS files made by the reference sops tool (Flux test data)', () => {
  const flux = ids('flux/age.txt', 'flux/age-global.txt');

  it('decrypts a Kubernetes Secret with encrypted_regex (YAML, sops 3.9.0) and checks its MAC', async () => {
    assert.deepEqual(await open('flux/secret.age.yaml', flux), {
      apiVersion: 'v1', kind: 'Secret', metadata: { name: 'age' }, stringData: { key: 'value' },
    });
  });

  it('decrypts a YAML file of sops 3.10.2', async () => {
    const t = (await open('flux/global-secret.yaml', flux)) as { stringData: { key: string } };
    assert.equal(t.stringData.key, 'global-value');
  });

  it('decrypts the dotenv form, metadata flattened into sops_ lines', async () => {
    assert.deepEqual(await open('flux/env.env', flux), { key: 'value' });
  });

  it('decrypts the JSON form (tab-indented)', async () => {
    assert.deepEqual(await open('flux/file.json', flux), { data: 'value' });
  });

  it('refuses an unencrypted value altered after encryption (the MAC covers it)', async () => {
    const text = data('flux/secret.age.yaml').replace('name: age', 'name: agf');
    await assert.rejects(open('flux/secret.age.yaml', flux, text), /fails its MAC check/);
  });

  it('refuses a file whose data key is for other recipients, naming them', async () => {
    await assert.rejects(open('flux/env.env', ids('sops/key.txt')), (e: unknown) =>
      e instanceof SopsError && /age1l44xcng8dqj32nlv6d930qvvrny05hglzcv9qpc7kxjc6902ma4qufys29/.test(e.message) && /none of which/.test(e.message));
  });
});

describe('SOPS files made by the independent encoder', () => {
  const mine = ids('sops/key.txt');

  it('decrypts YAML with every value type, an _unencrypted key, an empty value, a second recipient', async () => {
    assert.deepEqual(await open('sops/app.enc.yaml', mine), {
      DB_PASSWORD: 's3cr3t: with colon & spaces',
      API_TOKEN: 'tok-é✓',
      PORT: '5432n',
      RATIO: 0.25,
      DEBUG: true,
      EMPTY: '',
      PUBLIC_unencrypted: 'visible',
      MULTILINE: 'line one\nline two',
    });
  });

  it('ignores comments, which sops encrypts as #ENC[…,type:comment] lines outside the MAC', async () => {
    const text = data('sops/app.enc.yaml').replace('PORT:', '#ENC[AES256_GCM,data:AAAA,iv:AAAA,tag:AAAAAAAAAAAAAAAAAAAAAA==,type:comment]\nPORT:');
    const t = (await open('sops/app.enc.yaml', mine, text)) as Record<string, unknown>;
    assert.equal(t.PORT, '5432n');
  });

  it('decrypts the same values from JSON', async () => {
    const t = (await open('sops/app.enc.json', mine)) as Record<string, unknown>;
    assert.equal(t.DB_PASSWORD, 's3cr3t: with colon & spaces');
    assert.equal(t.PORT, '5432n');
    assert.equal(t.DEBUG, true);
  });

  it('decrypts dotenv values with = and newlines', async () => {
    assert.deepEqual(await open('sops/app.enc.env', mine), { DB_PASSWORD: 'pa=ss word', MULTILINE: 'a\nb', API_TOKEN: 'xyz' });
  });

  it('decrypts nested maps and lists (list items add nothing to the path) and keeps nulls', async () => {
    assert.deepEqual(await open('sops/nested.enc.yaml', mine), { db: { user: 'app', password: 'pw' }, hosts: ['a.example', 'b.example'], n: null });
  });

  it('decrypts a Secret with encrypted_regex and mac_only_encrypted', async () => {
    const t = (await open('sops/secret.enc.yaml', mine)) as { data: Record<string, string>; stringData: Record<string, string> };
    assert.equal(Buffer.from(t.data.DB_PASSWORD!, 'base64').toString(), 'from-data');
    assert.equal(t.stringData.API_TOKEN, 'from-string-data');
  });

  it('with mac_only_encrypted, plain values are outside the MAC, encrypted ones inside', async () => {
    const text = data('sops/secret.enc.yaml');
    await open('sops/secret.enc.yaml', mine, text.replace('name: app', 'name: other'));
    const lines = text.split('\n');
    const a = lines.findIndex((l) => l.includes('DB_PASSWORD: ENC['));
    const b = lines.findIndex((l) => l.includes('API_TOKEN: ENC['));
    const swapped = [...lines];
    // Moving an encrypted value to another key breaks its additional data.
    swapped[a] = lines[a]!.replace(/ENC\[.*\]/, /ENC\[.*\]/.exec(lines[b]!)![0]);
    await assert.rejects(open('sops/secret.enc.yaml', mine, swapped.join('\n')), /does not decrypt with the file's data key/);
  });

  it('refuses reordered keys, a changed unencrypted value, a removed key and a corrupt MAC', async () => {
    const text = data('sops/app.enc.yaml');
    const lines = text.split('\n');
    const reordered = [lines[1], lines[0], ...lines.slice(2)].join('\n');
    await assert.rejects(open('sops/app.enc.yaml', mine, reordered), /fails its MAC check/);
    await assert.rejects(open('sops/app.enc.yaml', mine, text.replace('PUBLIC_unencrypted: visible', 'PUBLIC_unencrypted: changed')), /fails its MAC check/);
    await assert.rejects(open('sops/app.enc.yaml', mine, lines.filter((l) => !l.startsWith('RATIO:')).join('\n')), /fails its MAC check/);
    await assert.rejects(open('sops/app.enc.yaml', mine, text.replace(/^( {4}mac: ENC\[AES256_GCM,data:)(.)/m, (_m, p: string, c: string) => p + (c === 'A' ? 'B' : 'A'))), /MAC/);
    await assert.rejects(open('sops/app.enc.yaml', mine, text.replace('lastmodified: "2026-12-05T22:30:00Z"', 'lastmodified: "2026-12-05T22:30:01Z"')), /MAC/);
  });

  it('refuses a flipped byte in a value, and a value that should be encrypted but is not', async () => {
    const text = data('sops/app.enc.yaml');
    const flipped = text.replace(/^(API_TOKEN: ENC\[AES256_GCM,data:)(.)/m, (_m, p: string, c: string) => p + (c === 'A' ? 'B' : 'A'));
    await assert.rejects(open('sops/app.enc.yaml', mine, flipped), /API_TOKEN: does not decrypt/);
    await assert.rejects(open('sops/app.enc.yaml', mine, text.replace(/^API_TOKEN: .*$/m, 'API_TOKEN: plain')), /API_TOKEN: is not a sops-encrypted value/);
  });

  it('refuses a file for another server and files without metadata or MAC', async () => {
    await assert.rejects(open('sops/other-recipient.enc.yaml', mine), /none of which is this server's key/);
    await assert.rejects(open('x.yaml', mine, 'A: 1\n'), /has no sops metadata/);
    const noMac = data('sops/app.enc.yaml').replace(/^ {4}mac: .*$/m, '');
    await assert.rejects(open('sops/app.enc.yaml', mine, noMac), /has no MAC/);
    await assert.rejects(open('x.env', mine, 'A=1\n'), /has no sops metadata/);
  });

  it('refuses aliases, several documents and unsupported metadata', async () => {
    await assert.rejects(open('x.yaml', mine, 'a: &x 1\nb: *x\nsops: {}\n'), /alias/);
    await assert.rejects(open('x.yaml', mine, 'a: 1\n---\nb: 2\n'), /several YAML documents/);
    await assert.rejects(open('x.yaml', mine, 'a: 1\nsops:\n  encrypted_comment_regex: x\n'), /encrypted_comment_regex/);
    await assert.rejects(open('x.yaml', mine, 'a: 1\nsops:\n  key_groups: [{age: []}, {age: []}]\n'), /Shamir/);
    const many = Array.from({ length: 65 }, (_, i) => `    - {recipient: r${i}, enc: x}`).join('\n');
    await assert.rejects(open('x.yaml', mine, `a: 1\nsops:\n  mac: x\n  age:\n${many}\n`), /more than 64 age recipients/);
  });
});

describe('SOPS helpers', () => {
  it('formats floats the way Go does for the MAC', () => {
    assert.equal(formatGoFloat(0.25), '0.25');
    assert.equal(formatGoFloat(1), '1');
    assert.equal(formatGoFloat(1e21), '1000000000000000000000');
    assert.equal(formatGoFloat(1.5e-7), '0.00000015');
    assert.equal(formatGoFloat(-2.5e22), '-25000000000000000000000');
  });

  it('tells the form by name, then by content', () => {
    assert.equal(sopsFormatOf('a.enc.json', ''), 'json');
    assert.equal(sopsFormatOf('a.yml', ''), 'yaml');
    assert.equal(sopsFormatOf('prod.env', ''), 'dotenv');
    assert.equal(sopsFormatOf('secrets', 'A=ENC[x]\nsops_mac=x\n'), 'dotenv');
    assert.equal(sopsFormatOf('secrets', '{"a": 1}'), 'json');
    assert.equal(sopsFormatOf('secrets', 'a: 1'), 'yaml');
  });
});
