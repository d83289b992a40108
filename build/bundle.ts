// `npm run bundle`: the image's one-folder build (dist/), cli.ts and every dependency bundled by
// esbuild. One plugin: kafkajs's byte-at-a-time CRC-32C module is replaced by
// shared/kafka/kafkajs-patches.ts, as cli.ts does through the module cache when not bundled.
import { build, type Plugin } from 'esbuild';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const fastCrc32c = fileURLToPath(new URL('../shared/kafka/kafkajs-patches.ts', import.meta.url));

const kafkajsCrc32c: Plugin = {
  name: 'kafkajs-fast-crc32c',
  setup(bundle) {
    bundle.onResolve({ filter: /^\.\.\/crc32C$/ }, (args) =>
      (/[\\/]kafkajs[\\/]src[\\/]protocol[\\/]recordBatch[\\/]/.test(args.importer) ? { path: 'kafkajs-crc32c', namespace: 'mtrelay' } : undefined));
    bundle.onLoad({ filter: /^kafkajs-crc32c$/, namespace: 'mtrelay' }, () => ({
      contents: `module.exports = require(${JSON.stringify(fastCrc32c)}).fastCrc32c;`,
      loader: 'js',
      resolveDir: root,
    }));
  },
};

const result = await build({
  entryPoints: [`${root}/cli.ts`],
  bundle: true,
  platform: 'node',
  target: 'node24',
  format: 'esm',
  splitting: true,
  outdir: `${root}/dist`,
  outExtension: { '.js': '.mjs' },
  entryNames: 'mtrelay',
  external: ['node:sqlite'],
  sourcemap: true,
  logLevel: 'warning',
  metafile: true,
  // Bundled CommonJS dependencies call require() for Node.js built-ins.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  plugins: [kafkajsCrc32c],
});
const replaced = Object.keys(result.metafile.inputs).some((input) => input === 'mtrelay:kafkajs-crc32c');
if (!replaced) throw new Error("kafkajs's CRC-32C module was not replaced: its path changed? See build/bundle.ts");
