import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { transitionEvent, type StatusPoint } from './notify.js';

const p = (status: StatusPoint['status'], commit: string | null = 'a', message = ''): StatusPoint => ({ status, commit, message });

describe('transitionEvent', () => {
  it('synced: the first sync, or a new commit; the same commit again is no event', () => {
    assert.equal(transitionEvent(p('pending', null), p('synced')), 'synced');
    assert.equal(transitionEvent(p('synced', 'a'), p('synced', 'b')), 'synced');
    assert.equal(transitionEvent(p('synced', 'a'), p('synced', 'a')), null);
  });
  it('recovered (not synced as well) from error or degraded', () => {
    assert.equal(transitionEvent(p('error', 'a', 'X: y'), p('synced', 'b')), 'recovered');
    assert.equal(transitionEvent(p('degraded', 'a', 'web failed'), p('synced', 'a')), 'recovered');
  });
  it('error: a new failure or a different one; the same failure again is no event', () => {
    assert.equal(transitionEvent(p('synced'), p('error', 'a', 'GIT_ERROR: x')), 'error');
    assert.equal(transitionEvent(p('error', 'a', 'GIT_ERROR: x'), p('error', 'a', 'GIT_ERROR: x')), null);
    assert.equal(transitionEvent(p('error', 'a', 'GIT_ERROR: x'), p('error', 'a', 'MANIFEST_INVALID: y')), 'error');
  });
  it('degraded: entering it, or with another commit or problem', () => {
    assert.equal(transitionEvent(p('synced'), p('degraded', 'a', 'web failed')), 'degraded');
    assert.equal(transitionEvent(p('degraded', 'a', 'web failed'), p('degraded', 'a', 'web failed')), null);
    assert.equal(transitionEvent(p('degraded', 'a', 'web failed'), p('degraded', 'b', 'web failed')), 'degraded');
  });
  it('pending and syncing are no event', () => {
    assert.equal(transitionEvent(p('synced'), p('syncing')), null);
    assert.equal(transitionEvent(p('synced'), p('pending')), null);
  });
});
