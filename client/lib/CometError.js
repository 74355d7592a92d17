/**
 * The one error type the client rejects with.
 *
 * @module comet-client/lib/CometError
 */

/**
 * A failed request or subscription: an error answered by the server (`code` is one of
 * {@link ErrorCode}, or a code of the action handler's own), or a failure seen by the
 * client (`timeout`, or one of {@link ClientErrorCode}), or a connection the server
 * refused with a close code in 4100–4199 (`closeCode`).
 */
export class CometError extends Error {
  /**
   * @param {string} code a short snake_case word to branch on
   * @param {string} message a sentence for humans
   * @param {{ route?: string, channel?: string, response?: object, closeCode?: number, reason?: string }} [details]
   */
  constructor(code, message, details = {}) {
    super(message);
    this.name = 'CometError';
    /** @type {string} */
    this.code = code;
    /** The action route of a failed request. @type {string | undefined} */
    this.route = details.route;
    /** The channel of a failed subscription. @type {string | undefined} */
    this.channel = details.channel;
    /** The server's whole answer, when there was one. @type {object | undefined} */
    this.response = details.response;
    /**
     * The close code of a connection the server refused (4100–4199), with its `reason`.
     * @type {number | undefined}
     */
    this.closeCode = details.closeCode;
    /** The close reason that came with `closeCode`. @type {string | undefined} */
    this.reason = details.reason;
  }
}
