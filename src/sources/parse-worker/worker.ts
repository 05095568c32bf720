// Entry of a parse worker thread (see pool.ts): parses one file at a time with the pure core
// parsers and posts back the plain result. The pool terminates it if a parse runs over its time.
import { parentPort } from 'node:worker_threads';
import { parseManifest } from '../../core/manifest/index.js';
import { parseServiceSpec } from '../../core/services/spec/index.js';
import type { FromWorker, ToWorker } from './protocol.js';

const port = parentPort;
if (!port) throw new Error('the parse worker must run in a worker thread');
const post = (msg: FromWorker): void => port.postMessage(msg);

port.on('message', (msg: ToWorker) => {
  const { id, req } = msg;
  try {
    const result = req.kind === 'manifest' ? parseManifest(req.text, req.file) : parseServiceSpec(req.text, req.file);
    post({ t: 'done', id, result });
  } catch (e) {
    post({ t: 'failed', id, message: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
  }
});
post({ t: 'ready' });
