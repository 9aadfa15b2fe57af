/**
 * The Web Worker that runs Argon2id (hash-wasm) off the page's thread, then expands the master
 * key into the auth key and the unlock key. The password and the master key never leave it.
 */

import { checkKdfParams, clientKeysFromMaster, deriveMasterKey } from "./kdf.js";
import { wipe } from "./primitives.js";

self.onmessage = async (event) => {
  const { id, password, salt, params } = event.data;
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
