import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sqlite, sqliteCandidates, sqliteLoaded } from './driver.js';

test('the better-sqlite3 line that fits the running Node is tried first', () => {
  assert.deepEqual(sqliteCandidates('20.20.2'), ['better-sqlite3', 'better-sqlite3-node22']);
  assert.deepEqual(sqliteCandidates('22.23.3'), ['better-sqlite3-node22', 'better-sqlite3']);
  assert.deepEqual(sqliteCandidates('24.21.0'), ['better-sqlite3-node22', 'better-sqlite3']);
});

test('the loaded better-sqlite3 is the line for this Node (12 on Node 20, 13 on 22 and 24), and works', () => {
  const Database = sqlite();
  const which = sqliteLoaded();
  assert.ok(which);
  const major = Number(process.versions.node.split('.')[0]);
  assert.equal(which.name, major >= 22 ? 'better-sqlite3-node22' : 'better-sqlite3');
  assert.equal(which.version.split('.')[0], major >= 22 ? '13' : '12');
  const db = new Database(':memory:');
  try {
    // many statements left to the garbage collector: better-sqlite3 12 built for Node 24.19+ aborts
    // the process when one is collected outside a JS context
    for (let i = 0; i < 2000; i++) assert.equal((db.prepare(`select ${i} as v`).get() as { v: number }).v, i);
  } finally {
    db.close();
  }
  console.log(`node ${process.versions.node}: ${which.name}@${which.version}`);
});
