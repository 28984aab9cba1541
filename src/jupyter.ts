/**
 * The Jupyter rich-display hook of the Deno kernel (REFERENCE §11): an object with a method under
 * this symbol returning a MIME bundle is displayed as that bundle.
 *
 * @module
 */

/**
 * `Symbol.for("Jupyter.display")`, shared so that every result class uses the same typed key.
 *
 * @example
 * ```ts
 * import { JUPYTER_DISPLAY } from "./jupyter.ts";
 * const shown = { [JUPYTER_DISPLAY]: () => ({ "text/plain": "hi" }) };
 * console.assert(shown[JUPYTER_DISPLAY]()["text/plain"] === "hi");
 * ```
 */
export const JUPYTER_DISPLAY: unique symbol = Symbol.for("Jupyter.display") as never;

/** A MIME bundle: MIME type → content. */
export type MimeBundle = Record<string, string>;

/**
 * The display bundle of any value that has one, else `undefined`.
 *
 * @example
 * ```ts
 * import { displayBundle } from "./jupyter.ts";
 * console.assert(displayBundle(42) === undefined);
 * ```
 */
export function displayBundle(value: unknown): MimeBundle | undefined {
  const hook = (value as Record<symbol, unknown> | null)?.[Symbol.for("Jupyter.display")];
  return typeof hook === "function" ? hook.call(value) : undefined;
}

/**
 * Escapes text for HTML display bundles.
 *
 * @example
 * ```ts
 * import { escapeHtml } from "./jupyter.ts";
 * console.assert(escapeHtml('<a & "b">') === "&lt;a &amp; &quot;b&quot;&gt;");
 * ```
 */
export function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"]/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!,
  );
}
