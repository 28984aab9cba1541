/**
 * Where the studies' attention baselines come from. The default reads the model's own
 * cross-attention capability; tests and users can plug in any other map source.
 *
 * @module
 */
import type { Heatmap } from "../images/heatmap.ts";
import type { Denoiser } from "../models/denoiser.ts";
import { supportsAttention } from "./capability.ts";
import { wordAttention, type WordAttentionOptions } from "./word-attention.ts";

/** A source of word attention maps for a model. */
export interface AttentionProvider {
  /** whether the model's attention can be read */
  supportsAttention(model: Denoiser): boolean;
  /**
   * whether the model's concept-attention maps can be read (`wordAttention` with
   * `maps: "concept"`); absent: never
   */
  supportsConceptAttention?(model: Denoiser): boolean;
  /** a word's DAAM-style attention map at data resolution, min–max normalised */
  wordAttention(
    model: Denoiser,
    data: Float32Array,
    prompt: string,
    word: string,
    options: WordAttentionOptions,
  ): Promise<Heatmap>;
}

/**
 * The default provider: the model's cross-attention capability (ONNX exports with unfused
 * attention), DAAM-aggregated by {@link wordAttention}.
 *
 * @example
 * ```ts
 * import { MODEL_ATTENTION } from "./provider.ts";
 * import { exampleDenoiser } from "../models/example.ts";
 * console.assert(!MODEL_ATTENTION.supportsAttention(exampleDenoiser()));
 * ```
 */
export const MODEL_ATTENTION: AttentionProvider = Object.freeze({
  supportsAttention,
  supportsConceptAttention: (model: Denoiser) => model.conceptAttention?.supported() ?? false,
  wordAttention,
});

/**
 * The provider a study uses: `false` → none (attention methods reported as unavailable), absent →
 * {@link MODEL_ATTENTION}, else the given one.
 *
 * @example
 * ```ts
 * import { MODEL_ATTENTION, studyAttention } from "./provider.ts";
 * console.assert(studyAttention(undefined) === MODEL_ATTENTION && studyAttention(false) === undefined);
 * ```
 */
export function studyAttention(
  option: AttentionProvider | false | undefined,
): AttentionProvider | undefined {
  return option === false ? undefined : option ?? MODEL_ATTENTION;
}
