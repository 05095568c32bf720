import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isZvError } from '../errors/registry.js';
import { pickCredential, prefixMatches, splitUserinfo, validateUrlPrefix } from './urls.js';

describe('credential URL rules', () => {
  it('a prefix covers a URL only at a boundary', () => {
    assert.ok(prefixMatches('https://git.example.com', 'https://git.example.com/acme/app.git'));
    assert.ok(prefixMatches('https://git.example.com/', 'https://git.example.com/acme/app.git'));
    assert.ok(prefixMatches('https://git.example.com/acme', 'https://git.example.com/acme/app.git'));
    assert.ok(prefixMatches('https://git.example.com/acme/app', 'https://git.example.com/acme/app.git'));
    assert.ok(prefixMatches('https://git.example.com/acme/app.git', 'https://git.example.com/acme/app.git'));
    assert.ok(prefixMatches('git@github.com', 'git@github.com:acme/app.git'));
    assert.ok(prefixMatches('git@github.com:acme/', 'git@github.com:acme/app.git'));
    assert.ok(!prefixMatches('https://git.example.com', 'https://git.example.com.evil.io/acme/app.git'));
    assert.ok(!prefixMatches('https://git.example.com', 'https://git.example.com@evil.io/acme/app.git'));
    assert.ok(!prefixMatches('https://git.example.com/acme', 'https://git.example.com/acme-evil/app.git'));
    assert.ok(!prefixMatches('https://git.example.com/acme/app', 'https://git.example.com/acme/app.gitx'));
    assert.ok(!prefixMatches('ssh://git@host/a', 'https://host/a'));
  });

  it('picks the longest prefix of the namespace, then of *', () => {
    const creds = [
      { id: 1, namespace: 'team', urlPrefix: 'https://h/' },
      { id: 2, namespace: 'team', urlPrefix: 'https://h/acme' },
      { id: 3, namespace: '*', urlPrefix: 'https://h/acme/app' },
      { id: 4, namespace: 'other', urlPrefix: 'https://h/acme/app' },
      { id: 5, namespace: '*', urlPrefix: 'https://g/' },
    ];
    assert.equal(pickCredential(creds, 'team', 'https://h/acme/app.git')?.id, 2);
    assert.equal(pickCredential(creds, 'team', 'https://h/x.git')?.id, 1);
    assert.equal(pickCredential(creds, 'team', 'https://g/x.git')?.id, 5);
    assert.equal(pickCredential(creds, 'third', 'https://h/acme/app.git')?.id, 3);
    assert.equal(pickCredential(creds, 'third', 'https://q/x.git'), null);
  });

  it('takes user:password@ out of an https URL, decoded, leaving the rest as given', () => {
    assert.deepEqual(splitUserinfo('https://bob:s%40cret@Git.Example.com:8443/a/b.git?x#y'), { url: 'https://Git.Example.com:8443/a/b.git?x#y', username: 'bob', password: 's@cret' });
    assert.deepEqual(splitUserinfo('https://bob:p@ss@host/r'), { url: 'https://host/r', username: 'bob', password: 'p@ss' });
    assert.deepEqual(splitUserinfo('https://host/a@b'), { url: 'https://host/a@b' });
    assert.deepEqual(splitUserinfo('https://bob@host/r'), { url: 'https://bob@host/r' });
    assert.deepEqual(splitUserinfo('ssh://git@host/r'), { url: 'ssh://git@host/r' });
  });

  it('prefixes name a host, in the form of the credential type, without secrets', () => {
    for (const [p, kind] of [['https://h', 'https'], ['https://h:8443/acme/', 'https'], ['ssh://git@h:2222/', 'ssh'], ['git@github.com:acme/', 'ssh'], ['github.com:acme/', 'ssh']] as const) {
      assert.doesNotThrow(() => validateUrlPrefix(p, kind), p);
    }
    for (const [p, kind] of [
      ['', 'https'], ['https://', 'https'], ['http://h/', 'https'], ['https://u:p@h/', 'https'], ['https:// h', 'https'], ['ssh://h/', 'https'],
      ['https://h/', 'ssh'], ['ssh://', 'ssh'], ['ssh://u:p@h/', 'ssh'], ['-oProxyCommand=x', 'ssh'], ['ext::sh', 'ssh'],
    ] as const) {
      assert.throws(() => validateUrlPrefix(p, kind), (e) => isZvError(e, 'VALIDATION_FAILED'), `${kind} ${p}`);
    }
  });
});
