// Builds the portal into src/rxvault/web/ (served by the rxvault server) and the browser test
// pages into build/web-tests/. Run by `make web` after `npm ci`; no network, no CDN.
import * as esbuild from "esbuild";
import { cpSync, mkdirSync, rmSync, copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { basename, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..");
const portalOut = join(root, "src", "rxvault", "web");
const testsOut = join(root, "build", "web-tests");

const common = {
  bundle: true,
  format: "esm",
  target: ["chrome120", "firefox121", "safari17"],
  minify: true,
  sourcemap: false,
  legalComments: "none",
  logLevel: "warning",
  absWorkingDir: here,
};

rmSync(portalOut, { recursive: true, force: true });
mkdirSync(join(portalOut, "assets"), { recursive: true });
// Content-hashed names, so a browser never mixes files of two releases from its cache.
const hashed = { ...common, entryNames: "[name]-[hash]", metafile: true };
const built = {};
for (const entryPoints of [
  { app: join(here, "src", "app", "main.js"), "argon2-worker": join(here, "src", "crypto", "argon2-worker.js") },
  { app: join(here, "src", "styles", "app.css") },
]) {
  const result = await esbuild.build({ ...hashed, entryPoints, outdir: join(portalOut, "assets") });
  for (const [file, info] of Object.entries(result.metafile.outputs)) {
    if (!info.entryPoint) continue;
    const name = basename(info.entryPoint).replace(/^main\.js$/, "app.js").replace(/^app\.css$/, "app.css");
    built[name] = "/" + relative(portalOut, join(here, file)).split("\\").join("/");
  }
}
let page = readFileSync(join(here, "src", "index.html"), "utf8");
for (const [name, url] of Object.entries(built)) page = page.replaceAll(`/assets/${name}`, url);
if (page.includes('"/assets/app.js"') || page.includes('"/assets/argon2-worker.js"')) throw new Error("index.html: an asset was not replaced");
writeFileSync(join(portalOut, "index.html"), page);
cpSync(join(here, "src", "static"), portalOut, { recursive: true });

rmSync(testsOut, { recursive: true, force: true });
mkdirSync(testsOut, { recursive: true });
await esbuild.build({ ...common, minify: false, entryPoints: { vectors: join(here, "test", "vectors.js") }, outdir: testsOut });
copyFileSync(join(here, "test", "vectors.html"), join(testsOut, "index.html"));
copyFileSync(join(here, "node_modules", "axe-core", "axe.min.js"), join(testsOut, "axe.min.js"));
console.log(`portal built into ${portalOut}; test pages into ${testsOut}`);
