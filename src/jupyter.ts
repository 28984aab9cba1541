/**
 * The Jupyter rich-display hook of Deno's kernel, as a typed symbol.
 *
 * @module
 */

/**
 * `Symbol.for("Jupyter.display")`: the Deno Jupyter kernel calls an object's method under this key
 * and shows the MIME bundle it returns (e.g. `{"image/png": base64}`, `{"image/svg+xml": svg}`).
 * Declared as a `unique symbol` so TypeScript lets classes and callers index with it.
 *
 * @example
 * ```ts
 * import { JUPYTER_DISPLAY } from "./jupyter.ts";
 * const note = { [JUPYTER_DISPLAY]: () => ({ "text/plain": "hello" }) };
 * console.assert(note[Symbol.for("Jupyter.display") as typeof JUPYTER_DISPLAY]()["text/plain"] === "hello");
 * ```
 */
export const JUPYTER_DISPLAY: unique symbol = Symbol.for("Jupyter.display") as never;

/**
 * A Jupyter MIME bundle: MIME type → content (base64 for binary types).
 *
 * @example
 * ```ts
 * import type { MimeBundle } from "./jupyter.ts";
 * const bundle: MimeBundle = { "text/plain": "42" };
 * console.assert(bundle["text/plain"] === "42");
 * ```
 */
export type MimeBundle = Record<string, string>;
