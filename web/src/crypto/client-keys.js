/**
 * Derive the client keys in the Argon2id worker, reporting estimated progress (Argon2id itself
 * cannot report, so progress follows the duration measured on this device last time).
 */

import * as errors from "./errors.js";
import { checkKdfParams } from "./kdf.js";

/** The worker's URL: named by the page (the build gives it a content-hashed name). */
function workerUrl() {
  return document.querySelector('meta[name="rxvault-argon2-worker"]')?.content ?? "/assets/argon2-worker.js";
}
const ESTIMATE_KEY = "rxvault.kdf-ms"; // a duration, not a secret
let counter = 0;
let spare = null;

/**
 * Start a worker ahead of time (while the patient types) so its WebAssembly is ready. Each
 * worker serves one derivation and is then terminated, which frees its memory.
 */
export function prepareKeyWorker() {
  if (!spare) spare = new Worker(workerUrl(), { type: "module" });
}

export function deriveClientKeysInWorker(password, salt, params, onProgress = () => {}) {
  checkKdfParams(params);
  const worker = spare ?? new Worker(workerUrl(), { type: "module" });
  spare = null;
  const id = ++counter;
  const estimate = Number(localStorage.getItem(ESTIMATE_KEY)) || 1500;
  const started = performance.now();
  onProgress(0);
  const timer = setInterval(() => {
    const fraction = Math.min(0.95, (performance.now() - started) / estimate);
    onProgress(fraction);
  }, 50);
  return new Promise((resolve, reject) => {
    worker.onmessage = (event) => {
      clearInterval(timer);
      worker.terminate();
      const data = event.data;
      if (data.id !== id) return;
      if (data.ok) {
        localStorage.setItem(ESTIMATE_KEY, String(Math.round(data.ms)));
        onProgress(1);
        resolve({ authKey: data.authKey, unlockKey: data.unlockKey });
      } else {
        const Kind = errors[data.name] ?? Error;
        const error = new Kind(data.message);
        reject(error);
      }
    };
    worker.onerror = (event) => {
      clearInterval(timer);
      worker.terminate();
      reject(new Error(`the key derivation could not run: ${event.message}`));
    };
    worker.postMessage({ id, password, salt, params });
  });
}
