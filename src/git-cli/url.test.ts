// Tests of the pure git input policy: repository URLs, branch names, revisions, redaction.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isZvError } from '../errors/registry.js';
import { classifyRepoUrl, normaliseRevision, redactUrl, validateBranchName, validateRepoUrl } from './url.js';

const strict = { allowFileRepos: false };
const open = { allowFileRepos: true };

function refused(url: string, policy: { allowFileRepos: boolean }, reason?: RegExp): void {
  assert.throws(() => validateRepoUrl(url, policy), (e: unknown) => {
    assert.ok(isZvError(e, 'INVALID_REPO_URL'), `expected INVALID_REPO_URL for ${JSON.stringify(url)}, got ${String(e)}`);
    if (reason) assert.match(e.message, reason);
    return true;
  });
}

test('accepts https, ssh and scp-like URLs', () => {
  assert.equal(classifyRepoUrl('https://github.com/user/repo', strict), 'https');
  assert.equal(classifyRepoUrl('https://github.com/user/repo.git', strict), 'https');
  assert.equal(classifyRepoUrl('https://user:token@git.example.com:8443/group/repo.git', strict), 'https');
  assert.equal(classifyRepoUrl('ssh://git@github.com/user/repo.git', strict), 'ssh');
  assert.equal(classifyRepoUrl('ssh://git@[::1]:2222/repo', strict), 'ssh');
  assert.equal(classifyRepoUrl('git+ssh://git@host/repo', strict), 'ssh');
  assert.equal(classifyRepoUrl('git@github.com:user/repo.git', strict), 'ssh');
  assert.equal(classifyRepoUrl('deploy@git.internal:repos/app', strict), 'ssh');
  assert.equal(classifyRepoUrl('host:repo.git', strict), 'ssh');
});

test('file:// and local paths need allowFileRepos', () => {
  refused('file:///srv/repo', strict, /file:\/\/ repositories need --allow-file-repos/);
  refused('/srv/repo', strict, /local paths need --allow-file-repos/);
  refused('/etc', strict, /--allow-file-repos/);
  assert.equal(classifyRepoUrl('file:///srv/repo', open), 'file');
  assert.equal(classifyRepoUrl('/srv/repo with space', open), 'file');
  refused('file://host/srv/repo', open, /absolute path/);
  refused('./repo', open, /relative/);
  refused('repo', open, /relative/);
});

test('refuses option injection and remote-helper syntax', () => {
  refused('-oProxyCommand=x', open, /starts with '-'/);
  refused('--upload-pack=touch /tmp/pwned', open, /starts with '-'/);
  refused('ext::sh -c touch% /tmp/pwned', open, /remote-helper/);
  refused('fd::17', open, /remote-helper/);
  refused('fd::17/foo', open, /remote-helper/);
  refused('transport::https://x/y', open, /remote-helper/);
  refused('ssh://-oProxyCommand=x/repo', open, /host/);
  refused('ssh://-oProxyCommand=x@host/repo', open, /user name/);
  refused('-oProxyCommand=x@host:repo', open, /starts with '-'/);
  refused('git@-oProxyCommand=x:repo', open, /host/);
  refused('git@host%2d:repo', open, /host/);
});

test('refuses other transports with a reason', () => {
  refused('http://x', open, /http:\/\/ is not allowed.*https/);
  refused('http://github.com/u/r', open, /use https/);
  refused('git://github.com/u/r', open, /git:\/\/ is not allowed/);
  refused('ftp://host/repo', open, /'ftp:\/\/' is not supported/);
  refused('rsync://host/repo', open, /not supported/);
  refused('ssh://user:pw@host/repo', open, /password/);
  refused('https://', open);
  refused('https://host', open, /path is empty/);
  refused('https://ho st/repo', open, /whitespace/);
});

test('refuses control characters, newlines, empty and surrounding whitespace', () => {
  refused('https://github.com/u/r\n', open, /control characters/);
  refused('https://github.com/u/r\nhttps://evil/x', open, /control characters/);
  refused('https://github.com/u\u0000/r', open, /control characters/);
  refused('https://github.com/u/r\u007f', open, /control characters/);
  refused('', open, /empty/);
  refused(' https://github.com/u/r', open, /whitespace/);
  refused('https://x/' + 'a'.repeat(5000), open, /longer/);
});

test('messages hide passwords of https URLs', () => {
  assert.equal(redactUrl('fatal: https://user:s3cret@host/repo'), 'fatal: https://user:***@host/repo');
  assert.equal(redactUrl('ssh://git@host/repo'), 'ssh://git@host/repo');
  assert.throws(() => validateRepoUrl('http://user:s3cret@host/repo', open), (e: unknown) => {
    assert.ok(e instanceof Error);
    assert.doesNotMatch(e.message, /s3cret/);
    return true;
  });
});

test('branch names follow git check-ref-format --branch', () => {
  for (const ok of ['main', 'feature/x', 'release-1.2', 'v1', 'a.b/c_d', 'user@host']) validateBranchName(ok);
  const bad = ['', '-x', '--upload-pack=x', 'HEAD', '@', 'a..b', 'a b', 'a~1', 'a^', 'a:b', 'a?', 'a*', 'a[b',
    'a\\b', 'a@{1}', '/a', 'a/', 'a//b', 'a.', '.a', 'a/.b', 'a.lock', 'a/b.lock/c', 'a\nb', 'refs/heads/main'];
  for (const b of bad) {
    assert.throws(() => validateBranchName(b), (e: unknown) => isZvError(e, 'VALIDATION_FAILED'), JSON.stringify(b));
  }
});

test('revisions are full lower-case SHAs', () => {
  const sha = 'A'.repeat(40);
  assert.equal(normaliseRevision(sha), 'a'.repeat(40));
  assert.equal(normaliseRevision('b'.repeat(64)), 'b'.repeat(64));
  assert.equal(normaliseRevision('abc123'), undefined);
  assert.equal(normaliseRevision('main'), undefined);
  assert.equal(normaliseRevision('g'.repeat(40)), undefined);
});
