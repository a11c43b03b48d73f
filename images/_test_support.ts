/**
 * Assertions shared by the image recipes' tests. Private to `images/`.
 *
 * @module
 */

import { VmonError } from "../core/errors.ts";

/**
 * Calls `fn` and checks that it throws a `VmonError` whose message contains `text`.
 *
 * @param fn The call expected to throw.
 * @param text A part of the expected message.
 */
export function assertVmonError(fn: () => unknown, text: string): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof VmonError)) throw new Error(`expected VmonError, got ${e}`);
    if (!e.message.includes(text)) throw new Error(`expected "${text}" in "${e.message}"`);
    return;
  }
  throw new Error(`expected VmonError "${text}", nothing thrown`);
}
