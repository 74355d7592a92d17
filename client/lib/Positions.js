/**
 * The positions of the channels subscribed with `recover`: where each stands in its
 * channel's history (the offset of the last publication delivered and the history's
 * epoch), what a resubscription resumes from, and which `pub` frames are duplicates.
 *
 * @module comet-client/lib/Positions
 */

/**
 * A position in a channel's history: after the publication `offset` of the history
 * `epoch`.
 *
 * @typedef {{ offset: number, epoch: string }} Position
 */

/**
 * What is known of one channel: its position, and the highest offset delivered in its
 * epoch (`seen`, `null` for none yet). The two differ after a `subscribed` frame: the
 * position is the channel's then, and the latest publication may still come (a
 * namespace's `send_latest`), which is no duplicate.
 *
 * @typedef {{ offset: number, epoch: string, seen: number | null }} Track
 */

/** The positions of a client's recovering channels, by channel. */
export class Positions {
  /** @type {Map<string, Track>} */
  #tracks = new Map();

  /**
   * @param {string} channel
   * @returns {Position | null} the channel's position (a copy), or null when none is known
   */
  get(channel) {
    const track = this.#tracks.get(channel);
    return track ? { offset: track.offset, epoch: track.epoch } : null;
  }

  /**
   * Starts the channel at `position` (a subscribe given `since`): what is at or before it
   * counts as delivered.
   *
   * @param {string} channel
   * @param {Position} position
   */
  start(channel, position) {
    this.#tracks.set(channel, { ...position, seen: position.offset });
  }

  /**
   * The server's `subscribed <channel> {"offset","epoch"}`: the channel's position now.
   *
   * @param {string} channel
   * @param {Position} position
   */
  subscribed(channel, position) {
    const track = this.#tracks.get(channel);
    const seen = track && track.epoch === position.epoch ? track.seen : null;
    this.#tracks.set(channel, { ...position, seen });
  }

  /**
   * The server's `gap <channel> {"offset","epoch"}`: publications were lost, and the
   * channel jumped to `position`.
   *
   * @param {string} channel
   * @param {Position} position
   */
  jumped(channel, position) {
    this.#tracks.set(channel, { ...position, seen: position.offset });
  }

  /**
   * A `pub <channel> <offset>` frame: advances the position, unless it is a duplicate.
   *
   * @param {string} channel
   * @param {number} offset
   * @returns {boolean} false for a duplicate (at or before what was delivered): drop it
   */
  published(channel, offset) {
    const track = this.#tracks.get(channel);
    if (!track) return true;
    if (track.seen !== null && offset <= track.seen) return false;
    track.seen = offset;
    track.offset = Math.max(track.offset, offset);
    return true;
  }

  /** @param {string} channel forgets its position (the subscription ended) */
  delete(channel) {
    this.#tracks.delete(channel);
  }
}
