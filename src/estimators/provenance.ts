/**
 * Provenance: what every query result records about how it was made (infodiff version, model
 * identity, image identity, prompt, the query, every estimator setting, the prompts a text
 * encoder cut), so a number in a results file can be traced and reproduced.
 *
 * @module
 */
import type { ImageIdentity } from "../images/image-identity.ts";
import type { ModelIdentity } from "../models/denoiser.ts";
import type { PromptTruncation } from "./truncation.ts";

/** How a result was made. */
export interface Provenance {
  /** the infodiff version */
  readonly infodiff: string;
  /** when the result was computed (ISO 8601) */
  readonly created: string;
  /** the model */
  readonly model: ModelIdentity;
  /** the image */
  readonly image: ImageIdentity;
  /** the prompt */
  readonly prompt: string;
  /** the terminal and its arguments, e.g. `{ terminal: "about", word: "red" }` */
  readonly query: Readonly<Record<string, unknown>>;
  /** every estimator setting, defaults filled in (`allowTruncation: true` when it was set) */
  readonly settings: Readonly<Record<string, unknown>>;
  /**
   * every prompt the result was computed from that a text encoder's context cut: the encoder, the
   * tokens it kept of the prompt's, and the words past its context. Empty: the model saw every
   * prompt whole. Absent: a result of an infodiff that did not record it.
   */
  readonly truncation?: readonly PromptTruncation[];
}

/**
 * A copy of a result with its provenance attached (results are immutable; the copy keeps the
 * result's class, so its methods and display work as before).
 *
 * @example
 * ```ts
 * import { withProvenance } from "./provenance.ts";
 * import { Estimate } from "./estimate.ts";
 * const e = new Estimate(1, 0.1, 10);
 * const p = { infodiff: "0", created: "", model: { name: "m", backend: "b", sha256: "" },
 *   image: { kind: "data", sha256: "" }, prompt: "a", query: { terminal: "total" }, settings: {},
 *   truncation: [] } as const;
 * const traced = withProvenance(e, p);
 * console.assert(traced instanceof Estimate && traced.provenance === p && e.provenance === undefined);
 * ```
 */
export function withProvenance<T extends { readonly provenance?: Provenance }>(
  result: T,
  provenance: Provenance,
): T & { readonly provenance: Provenance } {
  const copy = Object.create(
    Object.getPrototypeOf(result),
    Object.getOwnPropertyDescriptors(result),
  );
  Object.defineProperty(copy, "provenance", { value: provenance, enumerable: true });
  return Object.freeze(copy);
}
