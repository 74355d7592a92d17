/** Awaiting events of the client's emitter, for tests that must not sleep. */

/** How long a test waits for an event before it fails, in ms. */
const EVENT_TIMEOUT_MS = 15_000;

/**
 * The next `name` event of `emitter` that `matches`, or a rejection naming what never came.
 *
 * @param {{ on: Function, off: Function }} emitter
 * @param {string} name
 * @param {(event: any) => boolean} [matches]
 * @param {number} [timeout] ms before giving up; default 15 s
 * @returns {Promise<any>}
 */
export function nextEvent(emitter, name, matches = () => true, timeout = EVENT_TIMEOUT_MS) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(name, handler);
      reject(new Error(`no "${name}" event within ${timeout} ms`));
    }, timeout);
    function handler(event) {
      if (!matches(event)) return;
      clearTimeout(timer);
      emitter.off(name, handler);
      resolve(event);
    }
    emitter.on(name, handler);
  });
}

/** How long {@link eventually} waits at most, in ms: only a broken server waits this long. */
const EVENTUALLY_WITHIN_MS = 20_000;

/**
 * Waits until `check` resolves true, checking every 20 ms, for server-side state that has
 * no event of its own (as `tests/common/eventually.rs` does); rejects naming `what` after
 * 20 s.
 *
 * @param {string} what
 * @param {() => boolean | Promise<boolean>} check
 * @returns {Promise<void>}
 */
export async function eventually(what, check) {
  const deadline = Date.now() + EVENTUALLY_WITHIN_MS;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
