/**
 * The Web Worker that runs Argon2id (hash-wasm) off the page's thread, then expands the master
 * key into the auth key and the unlock key. The password and the master key never leave it.
 */

import { argon2id } from "hash-wasm";
import { checkKdfParams, clientKeysFromMaster, deriveMasterKey } from "./kdf.js";
import { wipe } from "./primitives.js";

// Compile and instantiate Argon2id's WebAssembly as soon as the worker starts (a tiny run), so
// that the patient's real derivation does not wait for it.
const ready = argon2id({
  password: "warm-up",
  salt: new Uint8Array(16),
  parallelism: 1,
  iterations: 1,
  memorySize: 8,
  hashLength: 32,
  outputType: "binary",
}).catch(() => null);

self.onmessage = async (event) => {
  const { id, password, salt, params } = event.data;
  await ready;
  try {
    checkKdfParams(params);
    const started = performance.now();
    const master = await deriveMasterKey(password, salt, params);
    const keys = await clientKeysFromMaster(master);
    wipe(master);
    self.postMessage({ id, ok: true, authKey: keys.authKey, unlockKey: keys.unlockKey, ms: performance.now() - started }, [
      keys.authKey.buffer,
      keys.unlockKey.buffer,
    ]);
  } catch (exc) {
    self.postMessage({ id, ok: false, name: exc.name, message: exc.message });
  }
};
