// Copy the browser builds of the console's npm dependencies into vendor/ (no bundler).
//   uplot            -> vendor/uPlot.esm.js, vendor/uPlot.min.css
//   @msgpack/msgpack -> vendor/msgpack/*.js (its ES module build, .mjs renamed to .js so
//                       that any static file server sends a JavaScript MIME type)
// Run with `npm run build` after `npm ci`; the server serves web/ as /web/.
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const modules = join(here, "node_modules");
const vendor = join(here, "vendor");

function need(path) {
  try {
    statSync(path);
  } catch {
    console.error(`build: ${relative(here, path)} is missing; run \`npm ci\` in web/ first`);
    process.exit(1);
  }
  return path;
}

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

rmSync(vendor, { recursive: true, force: true });
mkdirSync(join(vendor, "msgpack"), { recursive: true });

const uplot = need(join(modules, "uplot", "dist"));
cpSync(join(uplot, "uPlot.esm.js"), join(vendor, "uPlot.esm.js"));
cpSync(join(uplot, "uPlot.min.css"), join(vendor, "uPlot.min.css"));

const esm = need(join(modules, "@msgpack", "msgpack", "dist.esm"));
let files = 0;
for (const src of walk(esm).filter((p) => p.endsWith(".mjs"))) {
  const dst = join(vendor, "msgpack", relative(esm, src)).replace(/\.mjs$/, ".js");
  mkdirSync(dirname(dst), { recursive: true });
  const text = readFileSync(src, "utf8")
    .replace(/((?:from|import)\s*["']\.{1,2}\/[^"']*?)\.mjs(["'])/g, "$1.js$2")
    .replace(/^\/\/# sourceMappingURL=.*$/m, "");
  writeFileSync(dst, text);
  files++;
}

const versions = Object.fromEntries(["uplot", "@msgpack/msgpack"].map((name) =>
  [name, JSON.parse(readFileSync(join(modules, name, "package.json"), "utf8")).version]));
writeFileSync(join(vendor, "VERSIONS.json"), JSON.stringify(versions, null, 2) + "\n");
console.log(`build: vendor/ ready (uplot ${versions.uplot}, @msgpack/msgpack ${versions["@msgpack/msgpack"]}, ${files} msgpack modules)`);
