/**
 * Typed errors. Every error infodiff raises on purpose is an {@link InfoDiffError}; the subclasses
 * say which kind of thing was wrong so callers can `instanceof`-branch, and every message says what
 * was received and what was expected.
 *
 * @module
 */

/**
 * Base class of every error infodiff raises on purpose.
 *
 * @example
 * ```ts
 * import { InfoDiffError } from "./errors.ts";
 * try {
 *   throw new InfoDiffError("boom");
 * } catch (e) {
 *   console.assert(e instanceof InfoDiffError);
 * }
 * ```
 */
export class InfoDiffError extends Error {
  /**
   * Creates the error.
   * @param message what was wrong and what was expected
   * @param options `cause`: the lower-level error this one wraps (kept, not pasted into the message)
   */
  constructor(message: string, options?: { readonly cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * The message of an error and of every error in its `cause` chain, one per line (`caused by: …`),
 * for printing where a stack trace would be noise (the command line).
 *
 * @example
 * ```ts
 * import { describeError, ModelLoadError } from "./errors.ts";
 * const error = new ModelLoadError("bad folder", { cause: new SyntaxError("Unexpected token") });
 * console.assert(describeError(error) === "bad folder\ncaused by: SyntaxError: Unexpected token");
 * ```
 */
export function describeError(error: unknown): string {
  const lines: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && depth < 8; depth++) {
    const text = current instanceof Error
      ? (depth === 0 ? current.message : `${current.name}: ${current.message}`)
      : String(current);
    lines.push(depth === 0 ? text : `caused by: ${text}`);
    current = current instanceof Error ? current.cause : undefined;
  }
  return lines.join("\n");
}

/**
 * An argument had the wrong type, range or value (samples ≤ 0, unknown estimator name, negative
 * variance, …).
 *
 * @example
 * ```ts
 * import { InvalidArgumentError } from "./errors.ts";
 * const e = new InvalidArgumentError("samples must be a positive integer, got 0");
 * console.assert(e.name === "InvalidArgumentError");
 * ```
 */
export class InvalidArgumentError extends InfoDiffError {}

/**
 * An image (or data array) does not fit the model: wrong size, NaN/Infinity, unreadable or empty.
 *
 * @example
 * ```ts
 * import { InvalidImageError } from "./errors.ts";
 * const e = new InvalidImageError("image has 10 values, expected 48 (shape 3×4×4)");
 * console.assert(e instanceof Error);
 * ```
 */
export class InvalidImageError extends InfoDiffError {}

/**
 * A word asked about is not in the prompt, or a prompt cannot be conditioned on.
 *
 * @example
 * ```ts
 * import { PromptError } from "./errors.ts";
 * const e = new PromptError('word "dog" is not in the prompt "a red circle"');
 * console.assert(e.message.includes("dog"));
 * ```
 */
export class PromptError extends InfoDiffError {}

/**
 * A model folder, file or graph is missing, malformed or of an unsupported kind.
 *
 * @example
 * ```ts
 * import { ModelLoadError } from "./errors.ts";
 * const e = new ModelLoadError("missing unet/model.onnx in /models/sd");
 * console.assert(e.name === "ModelLoadError");
 * ```
 */
export class ModelLoadError extends InfoDiffError {}

/**
 * A model produced an invalid result at run time (NaN or Infinity in a noise prediction, a wrong
 * output size).
 *
 * @example
 * ```ts
 * import { ModelRuntimeError } from "./errors.ts";
 * const e = new ModelRuntimeError("UNet output contains NaN at t=214");
 * console.assert(e instanceof Error);
 * ```
 */
export class ModelRuntimeError extends InfoDiffError {}

/**
 * A dataset file or row is malformed (COCO / ARO JSON, masks, missing images).
 *
 * @example
 * ```ts
 * import { DatasetError } from "./errors.ts";
 * const e = new DatasetError("annotation 3 has no segmentation");
 * console.assert(e.name === "DatasetError");
 * ```
 */
export class DatasetError extends InfoDiffError {}

/**
 * A study results file cannot be used as asked: it was written by another study, with other
 * settings or by another model; another process holds it; it is not a results file; or its folder
 * does not exist.
 *
 * @example
 * ```ts
 * import { ResultsFileError } from "./errors.ts";
 * const e = new ResultsFileError("out.jsonl was written with samples 2; this run has samples 16");
 * console.assert(e.name === "ResultsFileError");
 * ```
 */
export class ResultsFileError extends InfoDiffError {}
