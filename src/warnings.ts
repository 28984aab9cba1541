/**
 * The one place library code reports something a user should know but that is not an error (a
 * device fallback, a guessed resolution, a prompt cut by the context). Replace the handler to
 * collect, silence or reformat warnings; the default writes one line to stderr.
 *
 * @module
 */

/** Receives each warning, one line of text. */
export type WarningHandler = (message: string) => void;

const toStderr: WarningHandler = (message) => console.warn(message);
let handler: WarningHandler = toStderr;

/**
 * Replaces the warning handler and returns the previous one; `undefined` restores the default
 * (one line on stderr).
 *
 * @example
 * ```ts
 * import { setWarningHandler, warn } from "./warnings.ts";
 * const seen: string[] = [];
 * const previous = setWarningHandler((m) => seen.push(m));
 * warn("infodiff: something to know");
 * setWarningHandler(previous);
 * console.assert(seen.length === 1);
 * ```
 */
export function setWarningHandler(next: WarningHandler | undefined): WarningHandler {
  const previous = handler;
  handler = next ?? toStderr;
  return previous;
}

/**
 * Reports a warning through the current handler.
 *
 * @example
 * ```ts
 * import { warn } from "./warnings.ts";
 * warn("infodiff: example warning (printed to stderr)");
 * ```
 */
export function warn(message: string): void {
  handler(message);
}
