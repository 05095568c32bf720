// Builds the web console (web/console) into dist/console/: one ES module bundle and one stylesheet
// under assets/ with content-hashed names (served with a year's cache), and index.html naming them
// (served with no-cache). Run by `npm run build`; src/ui/console.ts serves the result at /ui.
import { build } from 'esbuild';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'web', 'console');
const out = join(root, 'dist', 'console');
// Build beside the target and switch at the end, so a server reading dist/console never sees half a build.
const tmp = `${out}.tmp-${process.pid}`;
await rm(tmp, { recursive: true, force: true });
const result = await build({
  entryPoints: [join(src, 'main.ts'), join(src, 'style.css')],
  outdir: join(tmp, 'assets'),
  entryNames: '[name]-[hash]',
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['chrome110', 'firefox110', 'safari16'],
  legalComments: 'none',
  metafile: true,
  logLevel: 'warning',
});
const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
const js = outputs.find((f) => f.endsWith('.js'));
const css = outputs.find((f) => f.endsWith('.css'));
if (!js || !css) throw new Error(`console build: missing output (${outputs.join(', ')})`);
const html = (await readFile(join(src, 'index.html'), 'utf8')).replace('{{js}}', js).replace('{{css}}', css);
await mkdir(tmp, { recursive: true });
await writeFile(join(tmp, 'index.html'), html);
await rm(out, { recursive: true, force: true });
const { rename } = await import('node:fs/promises');
await rename(tmp, out);
