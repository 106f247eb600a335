// The one module that loads the .node file (the kernel and FUSE layers both
// use it), and turns a failure to load it into one message that says what to do.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { KrsiError } from './errors.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const addonPath = path.join(root, 'build', 'Release', 'krsifs.node');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function load(): any {
  const require = createRequire(import.meta.url);
  let addon;
  try {
    addon = require(addonPath);
  } catch (e) {
    const msg = (e as Error).message;
    throw new Error(
      `krsifs: cannot load the native addon at ${addonPath}: ${msg}\n` +
        `Build it with 'npm run build' (it needs libbpf-dev, libfuse3-dev and a C++ compiler; ` +
        `'npm run setup' installs them).`,
    );
  }
  addon.initialize(KrsiError);
  return addon;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const native: any = load();
