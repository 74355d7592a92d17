/**
 * A small event emitter, the same in browsers and in Node: the client, its transports and
 * its plugins talk through it.
 *
 * @module comet-client/lib/Emitter
 */

/**
 * Calls handlers by event name, in the order they were added.
 *
 * A handler that throws does not stop the others, nor the emitter's caller (often a
 * socket's message handler, in the middle of the client's bookkeeping): its error is
 * reported as an uncaught error on its own, the way a failing DOM event listener is.
 */
export class Emitter {
  /** @type {Map<string, Function[]>} */
  #handlers = new Map();

  /**
   * Adds `handler` for the event `name`.
   *
   * @param {string} name
   * @param {(event: any) => void} handler
   * @returns {this}
   */
  on(name, handler) {
    if (typeof handler !== 'function') {
      throw new TypeError(`handler for "${name}" must be a function`);
    }
    const handlers = this.#handlers.get(name);
    if (handlers) {
      handlers.push(handler);
    } else {
      this.#handlers.set(name, [handler]);
    }
    return this;
  }

  /**
   * Adds `handler` for the next `name` event only.
   *
   * @param {string} name
   * @param {(event: any) => void} handler
   * @returns {this}
   */
  once(name, handler) {
    const wrapper = (event) => {
      this.off(name, wrapper);
      handler(event);
    };
    wrapper.listener = handler;
    return this.on(name, wrapper);
  }

  /**
   * Removes `handler` from `name` (also when it was added with `once`), or every handler
   * of `name` when `handler` is left out.
   *
   * @param {string} name
   * @param {(event: any) => void} [handler]
   * @returns {this}
   */
  off(name, handler) {
    const handlers = this.#handlers.get(name);
    if (!handlers) return this;
    if (handler === undefined) {
      this.#handlers.delete(name);
      return this;
    }
    const index = handlers.findIndex((h) => h === handler || h.listener === handler);
    if (index !== -1) handlers.splice(index, 1);
    if (handlers.length === 0) this.#handlers.delete(name);
    return this;
  }

  /**
   * How many handlers `name` has.
   *
   * @param {string} name
   * @returns {number}
   */
  listenerCount(name) {
    return this.#handlers.get(name)?.length ?? 0;
  }

  /**
   * Calls every handler of `name` with `event`.
   *
   * @param {string} name
   * @param {any} [event]
   * @returns {boolean} whether `name` had any handler
   */
  emit(name, event) {
    const handlers = this.#handlers.get(name);
    if (!handlers) return false;
    for (const handler of [...handlers]) {
      try {
        handler.call(this, event);
      } catch (error) {
        reportError(error);
      }
    }
    return true;
  }
}

/**
 * Reports an error thrown by an event handler without unwinding the emitter: through the
 * browser's `reportError` where it exists, else as an uncaught error on the next
 * microtask (which Node reports, and by default exits on, as it would for any handler).
 *
 * @param {unknown} error
 */
function reportError(error) {
  if (typeof globalThis.reportError === 'function') {
    globalThis.reportError(error);
  } else {
    queueMicrotask(() => {
      throw error;
    });
  }
}
