/**
 * Backend-neutral access to cross-attention probabilities: any {@link Denoiser} whose backend
 * implements {@link CrossAttention} (the ONNX backend on an unfused UNet export) has them.
 *
 * @module
 */
import { InvalidArgumentError } from "../errors.ts";
import type {
  AttentionPrediction,
  CrossAttention,
  Denoiser,
  NoiseBatch,
} from "../models/denoiser.ts";

/**
 * True when attention maps can be read from the model: its backend implements the capability and
 * says the maps can be read (false for the oracles, fused-attention exports and UNets without
 * cross-attention).
 *
 * @example
 * ```ts
 * import { supportsAttention } from "./capability.ts";
 * import { exampleDenoiser } from "../models/example.ts";
 * import { loadModel } from "../query/load-model.ts";
 * console.assert(!supportsAttention(exampleDenoiser()));
 * const model = await loadModel("fixtures/models/attention-tiny", { device: "cpu" });
 * console.assert(supportsAttention(model));
 * await model.dispose();
 * ```
 */
export function supportsAttention(model: Denoiser): boolean {
  return model.attention?.supported() ?? false;
}

/**
 * The model's attention capability, or an error saying why there is none.
 *
 * @throws {InvalidArgumentError} for a model without cross-attention (e.g. an oracle)
 *
 * @example
 * ```ts
 * import { requireAttention } from "./capability.ts";
 * import { exampleDenoiser } from "../models/example.ts";
 * let refused = false;
 * try { requireAttention(exampleDenoiser()); } catch { refused = true; }
 * console.assert(refused);
 * ```
 */
export function requireAttention(model: Denoiser): CrossAttention {
  if (!model.attention) {
    throw new InvalidArgumentError(
      `${model.name} has no cross-attention that could be read; expected a model whose backend ` +
        `exposes it, e.g. loadModel() on an unfused UNet export (the oracles have no attention: ` +
        `check supportsAttention(model) first)`,
    );
  }
  return model.attention;
}

/**
 * Predicts ε̂ for a batch (as `model.predictNoise`) and returns each item's cross-attention
 * probabilities per layer.
 *
 * @throws {InvalidArgumentError} for a model without cross-attention (e.g. an oracle)
 * @throws {ModelLoadError} for a fused-attention export or a UNet without cross-attention
 *
 * @example
 * ```ts
 * import { predictWithAttention } from "./capability.ts";
 * import { loadModel } from "../query/load-model.ts";
 * const model = await loadModel("fixtures/models/attention-tiny", { device: "cpu" });
 * const condition = await model.encode("a red circle");
 * const { layers } = await predictWithAttention(model, {
 *   noisy: new Float32Array(3 * 8 * 8), logSnr: new Float64Array([0]), conditions: [condition],
 * });
 * console.assert(layers[0].length === 2);
 * await model.dispose();
 * ```
 */
export function predictWithAttention(
  model: Denoiser,
  batch: NoiseBatch,
): Promise<AttentionPrediction> {
  return requireAttention(model).predict(batch);
}

/**
 * The model's concept-attention maps (a diffusion transformer's output-space maps), or an error
 * saying why there are none.
 *
 * @throws {InvalidArgumentError} for a model without them (UNets, oracles)
 *
 * @example
 * ```ts
 * import { requireConceptAttention } from "./capability.ts";
 * import { loadModel } from "../query/load-model.ts";
 * const model = await loadModel("fixtures/models/tiny-flux", { device: "cpu" });
 * console.assert(requireConceptAttention(model).supported());
 * await model.dispose();
 * ```
 */
export function requireConceptAttention(model: Denoiser): CrossAttention {
  if (!model.conceptAttention) {
    throw new InvalidArgumentError(
      `${model.name} has no concept-attention maps; expected a diffusion transformer (SD 3, ` +
        `FLUX.1) loaded with loadModel(), whose attention outputs can be compared (a UNet's ` +
        `cross-attention gives the maps: use the default attention)`,
    );
  }
  return model.conceptAttention;
}

/**
 * The model's concept-attention maps with extra concept words (ConceptAttention's concepts): each
 * word one token after the prompt's, streamed beside the prompt without changing the image stream
 * (see `CrossAttention.withConcepts`).
 *
 * @param words the concepts, e.g. `["sky", "dog"]`: non-blank, each once
 * @throws {InvalidArgumentError} for a model without concept attention (UNets, oracles), one whose
 *   concept attention takes no words (SD 3, with the reason), or bad words
 * @throws {ModelLoadError} for a fused-attention export
 *
 * @example
 * ```ts
 * import { requireConceptWords } from "./capability.ts";
 * import { loadModel } from "../query/load-model.ts";
 * const model = await loadModel("fixtures/models/tiny-flux", { device: "cpu" });
 * const concepts = requireConceptWords(model, ["sky", "dog"]);
 * console.assert(concepts.concepts?.join() === "sky,dog");
 * console.assert(concepts.contextLength === model.conceptAttention!.contextLength + 2);
 * await model.dispose();
 * ```
 */
export function requireConceptWords(model: Denoiser, words: readonly string[]): CrossAttention {
  const concept = requireConceptAttention(model);
  if (!concept.withConcepts) {
    throw new InvalidArgumentError(
      `${model.name}'s concept attention takes no extra concept words; expected a FLUX.1 ` +
        `transformer loaded with loadModel()`,
    );
  }
  return concept.withConcepts(words);
}
