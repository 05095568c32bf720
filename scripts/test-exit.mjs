// Loaded into every test process by scripts/run-tests.mjs (--import): how a test file's process
// ends. Not with --test-force-exit's process.exit() as soon as the last test has ended: isolated-vm's
// threads may then still be at work on an isolate (tearing down one just disposed, or running a
// garbage collection task of a live one), process.exit() shuts V8's platform down under them and
// the process dies of SIGSEGV (the file fails although all its tests passed: ~2% of runs of
// src/runtimes/js/sync.test.ts on a loaded machine, on Node 20 with isolated-vm 5 and on Node 24
// with isolated-vm 6). Nor with Node's normal exit alone: on Node 24 its teardown of the main
// isolate can finish a garbage collection that runs isolated-vm's handle finalizers after
// isolated-vm has shut down (SIGABRT, `environment != nullptr` assertion).
//
// So the process first lets its event loop run dry, which happens only once isolated-vm's threads
// are idle (isolated-vm keeps the loop alive while a thread works on an isolate), then exits at
// once from the 'exit' event, skipping the environment's teardown as --test-force-exit did. A
// process still running GRACE_MS after its last test (a leaked handle or child process: an esbuild
// service once kept a file's process idle for 13 minutes on a loaded machine) is made to exit then.
import { after } from 'node:test';

const GRACE_MS = 5_000;

// a hook of the root test: it runs after every test and hook of the file
after(() => {
  setTimeout(() => {
    process.stderr.write(`test process ${process.pid} (${process.argv.slice(1).join(' ')}) still running ${GRACE_MS} ms after its last test (a leaked handle or child process): exiting\n`);
    process.exit();
  }, GRACE_MS).unref();
});

process.on('exit', function exitNow(code) {
  // the listeners added after this one first (process.exit() here ends the process: when called
  // during the 'exit' event it exits without emitting it again)
  const listeners = process.listeners('exit');
  for (const listener of listeners.slice(listeners.indexOf(exitNow) + 1)) listener.call(process, code);
  process.exit();
});
