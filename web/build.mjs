// Builds the portal into src/rxvault/web/ (served by the rxvault server) and the browser test
// pages into build/web-tests/. Run by `make web` after `npm ci`; no network, no CDN.
import * as esbuild from "esbuild";
import { cpSync, mkdirSync, rmSync, copyFileSync } from "node:fs";
import { dirname, join } from "node:path";
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
};

rmSync(portalOut, { recursive: true, force: true });
mkdirSync(join(portalOut, "assets"), { recursive: true });
await esbuild.build({
  ...common,
  entryPoints: {
    app: join(here, "src", "app", "main.js"),
    "argon2-worker": join(here, "src", "crypto", "argon2-worker.js"),
  },
  outdir: join(portalOut, "assets"),
});
await esbuild.build({
  ...common,
  entryPoints: { app: join(here, "src", "styles", "app.css") },
  outdir: join(portalOut, "assets"),
});
copyFileSync(join(here, "src", "index.html"), join(portalOut, "index.html"));
cpSync(join(here, "src", "static"), portalOut, { recursive: true });

rmSync(testsOut, { recursive: true, force: true });
mkdirSync(testsOut, { recursive: true });
await esbuild.build({ ...common, minify: false, entryPoints: { vectors: join(here, "test", "vectors.js") }, outdir: testsOut });
copyFileSync(join(here, "test", "vectors.html"), join(testsOut, "index.html"));
copyFileSync(join(here, "node_modules", "axe-core", "axe.min.js"), join(testsOut, "axe.min.js"));
console.log(`portal built into ${portalOut}; test pages into ${testsOut}`);
