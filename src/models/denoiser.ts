/**
 * The backend contract. A {@link Denoiser} is what a backend implements (the exact oracles, the
 * ONNX Stable Diffusion backend, the trained shapes model): a noise predictor with its shape,
 * trained range and prompt encoder. It knows nothing of queries or DDIM; the user-facing `Model`
 * (src/query/model.ts) wraps any denoiser with `info`, `generate` and `invert`.
 *
 * @module
 */
import { InvalidArgumentError, InvalidImageError } from "../errors.ts";
import type { TaggedArray } from "../images/image-array.ts";
import type { LogSnrRange } from "../numerics/log-snr.ts";
import type { LogSnrProfile } from "../numerics/proposal.ts";
import type { FlowConvention } from "./flow.ts";

export { imageArray, type TaggedArray } from "../images/image-array.ts";

export type { LogSnrRange } from "../numerics/log-snr.ts";

/** Shape of one data item (an image, or a latent for latent diffusion): channels, height, width. */
export type Shape = readonly [channels: number, height: number, width: number];

/**
 * A prompt after the model has encoded it (text-encoder output, or for the oracle the set of known
 * words). Backends extend it with what they need; the estimators only read `prompt`.
 */
export interface Condition {
  /** the prompt this condition was encoded from */
  readonly prompt: string;
}

/** One batched noise-prediction request: `size` items, each a noisy datum, a log-SNR and a condition. */
export interface NoiseBatch {
  /**
   * noisy data x_α, item-major, `size · d` values where d = c·h·w; the caller may overwrite it
   * once `predictNoise` has settled (a backend must not keep it)
   */
  readonly noisy: Float32Array;
  /** log-SNR α of each item (length `size`) */
  readonly logSnr: Float64Array;
  /** condition of each item (length `size`) */
  readonly conditions: readonly Condition[];
  /**
   * `true`: the caller reads every returned value and checks it is finite itself (the estimators'
   * reductions: a sum of squares is finite exactly when every term is), so the backend may skip
   * its own pass over the output. Default: `predictNoise` rejects a non-finite prediction with a
   * `ModelRuntimeError`.
   */
  readonly finiteChecked?: boolean;
}

/**
 * Anything an image can be given as. The oracles take a `Float32Array` of length c·h·w; image
 * backends also take a file path, PNG/JPEG bytes or a sharp instance. A bare `Float32Array` is
 * model data when it has c·h·w values and pixels when it has the image's 3·H·W; where both counts
 * are equal on a model whose data are not its pixels (an exact 2×2 space-to-depth latent: 12×16×16
 * = 3×32×32), say which with `{ pixels }` or `{ data }` — it is refused rather than guessed.
 */
export type ImageInput =
  | Float32Array
  | TaggedArray
  | string
  | Uint8Array
  | { toBuffer: unknown };

/** A discrete training schedule: the log-SNR of every trained timestep t at index t. */
export interface TrainedSchedule {
  /** α_t for t = 0…T−1 */
  readonly logSnr: Float64Array;
  /** T, the number of trained timesteps */
  readonly length: number;
  /**
   * The trained timesteps a `steps`-step DDIM run visits, ascending (the export's configured
   * spacing); absent: diffusers' default, "leading" k·⌊T/steps⌋
   */
  inferenceTimesteps?(steps: number): Int32Array;
}

/** One cross-attention layer's probabilities for one item. */
export interface AttentionLayerMap {
  /** the layer's name in the backend (an ONNX Softmax node) */
  readonly node: string;
  /** number of heads */
  readonly heads: number;
  /** rows of the layer's spatial grid */
  readonly height: number;
  /** columns of the layer's spatial grid */
  readonly width: number;
  /** tokens attended to (the context length) */
  readonly tokens: number;
  /** probabilities [heads, height·width, tokens], row-major */
  readonly probs: Float32Array;
}

/** ε̂ and, per item, every cross-attention layer's probabilities. */
export interface AttentionPrediction {
  /** noise predictions, item-major */
  readonly noise: Float32Array;
  /** per item, per layer (backend order) */
  readonly layers: readonly (readonly AttentionLayerMap[])[];
}

/** A prompt word and the positions of its sub-tokens in the text encoder's context. */
export interface WordTokens {
  /** the normalised word */
  readonly word: string;
  /** its sub-token positions (empty when the context cut it off) */
  readonly positions: readonly number[];
}

/**
 * The backend-neutral cross-attention capability (DAAM-style baselines read it). A backend that
 * can expose its cross-attention probabilities implements it; the others leave
 * `Denoiser.attention` undefined.
 */
export interface CrossAttention {
  /** tokens in the text encoder's context (77 for CLIP) */
  readonly contextLength: number;
  /** whether the maps can be read (e.g. false for a fused-attention export) */
  supported(): boolean;
  /**
   * why the maps cannot be read, where the backend knows beyond `supported()` being false (SD 3's
   * and FLUX.1's transformers attend jointly over image and text); studies report it
   */
  readonly unavailable?: string;
  /** every word of the prompt, in order, with its sub-token positions */
  wordTokens(prompt: string): readonly WordTokens[];
  /** ε̂ for the batch (as `predictNoise`) plus each item's cross-attention probabilities */
  predict(batch: NoiseBatch): Promise<AttentionPrediction>;
  /**
   * concept attention only, where the backend can add them: the same maps with extra concept words
   * the user names (ConceptAttention's concepts, e.g. `["sky", "dog"]`), each one token after the
   * prompt's, streamed beside the prompt without changing the image stream or the prediction
   */
  withConcepts?(words: readonly string[]): CrossAttention;
  /**
   * the extra concept words of a capability made by `withConcepts`, in order: word i is token
   * `contextLength − concepts.length + i` of every map
   */
  readonly concepts?: readonly string[];
}

/** A word of a prompt that a text encoder's context cut off. */
export interface CutWord {
  /** the word, lower-cased (as `promptWords` gives it) */
  readonly word: string;
  /** its position among the prompt's words (`promptWords` order) */
  readonly index: number;
  /** true when some of its tokens are still within the context (the encoder sees part of it) */
  readonly partly: boolean;
}

/**
 * How one text encoder of a model reads a prompt: how many of its tokens fit the encoder's
 * context, and which words fall past it. A model with several encoders (SDXL's two CLIPs, SD3's
 * or FLUX's T5 beside CLIP) reports one of these per encoder, each with its own context.
 */
export interface PromptTokens {
  /** the encoder, as the model names it (e.g. "text_encoder", "text_encoder_2") */
  readonly encoder: string;
  /** the encoder's context in tokens, begin/end markers included (77 for CLIP) */
  readonly contextLength: number;
  /** content tokens of the prompt the encoder sees (markers excluded) */
  readonly kept: number;
  /** content tokens of the whole prompt (markers excluded); `kept < total`: the prompt is cut */
  readonly total: number;
  /** the words wholly or partly past the context, in prompt order (empty when it fits) */
  readonly cutWords: readonly CutWord[];
}

/** Who a model is, for provenance: what every result records and what a resumed study compares. */
export interface ModelIdentity {
  /** the display name */
  readonly name: string;
  /** the backend, e.g. "onnx" or "mixture oracle" */
  readonly backend: string;
  /** SHA-256 (hex) of what defines the model: its files, or an oracle's specification */
  readonly sha256: string;
  /** where the model came from, when known (a hub repository and commit) */
  readonly source?: { readonly repo: string; readonly revision?: string; readonly commit: string };
  /** what it runs on (e.g. "onnxruntime-node 1.30.0, cpu"); recorded, not compared */
  readonly runtime?: string;
  /**
   * how its pipeline runs it, where that changes what the model computes (FLUX.1-dev's guidance,
   * SDXL's zero unconditional, T5's max length, the time_ids): part of what `sha256` hashes, so a
   * result made at another setting is another model's
   */
  readonly pipeline?: Readonly<Record<string, string | number | boolean>>;
}

/**
 * What a backend implements: a text-conditional denoiser in the variance-preserving
 * parameterisation `x_α = sqrt(σ(α))·x + sqrt(σ(−α))·ε`. Estimators and studies take a Denoiser.
 */
export interface Denoiser {
  /** a short human-readable name */
  readonly name: string;
  /** shape of the data the model denoises (c, h, w) */
  readonly shape: Shape;
  /** trained log-SNR range, if the model has one (sets the default log-SNR sampling) */
  readonly logSnrRange?: LogSnrRange;
  /** preferred number of items per {@link Denoiser.predictNoise} call */
  readonly batchSize: number;
  /**
   * True when one call can only evaluate one noise level (a scalar timestep input). The estimators
   * then put draws that share an α into the same call so that costs no extra calls.
   */
  readonly sharedLogSnr: boolean;
  /** image size that maps are upsampled to for display (latent models); absent: the data size */
  readonly imageSize?: { readonly width: number; readonly height: number };
  /** the discrete training schedule, if any (DDIM then steps on trained timesteps) */
  readonly schedule?: TrainedSchedule;
  /** cross-attention probabilities, for backends that can expose them */
  readonly attention?: CrossAttention;
  /**
   * concept-attention maps (a diffusion transformer's output-space maps, ConceptAttention with the
   * prompt's tokens as the concepts, and extra words through `withConcepts`), for backends that
   * can expose them: the same interface, each layer's map [1, h·w, tokens] a softmax over the
   * image tokens
   */
  readonly conceptAttention?: CrossAttention;
  /**
   * the model's calibrated integrand profile (`infodiff calibrate`), when it has one: the
   * estimators then draw α from the fitted, defensive proposal by default
   */
  readonly logSnrProfile?: LogSnrProfile;
  /**
   * present on a flow-matching model (SD 3/3.5, FLUX.1): its training law of t, trained range and
   * scheduler (src/models/flow.ts). It still returns ε̂ of the VP channel from `predictNoise`
   * (`flowPredictNoise` converts); the default log-SNR proposal comes from its training law, and
   * generation and inversion run its flow ODE.
   */
  readonly flow?: FlowConvention;
  /**
   * Maps a continuous log-SNR to the one the model really evaluates (the nearest trained timestep).
   * The estimators noise the data at the snapped value, so noise level and timestep always agree.
   */
  snapLogSnr?(logSnr: number): number;
  /**
   * Indices (in `promptWords` order) of the prompt's words that the text encoder cannot see
   * because they lie past its context length; absent or empty: the model sees every word.
   */
  truncatedWords?(prompt: string): readonly number[];
  /**
   * How each of the model's text encoders reads the prompt: tokens kept and words cut by its
   * context. Absent, or `[]`: the model has no context limit (the oracles). The estimators ask
   * before any model call, record every cut prompt in the result's provenance and refuse a
   * contrast whose two prompts are cut differently unless `allowTruncation` is set.
   *
   * @throws {PromptError} the prompt holds a special token of an encoder's tokenizer (e.g.
   *   `<|endoftext|>`): an encoder would read it as a control token, not as words
   */
  encoderTokens?(prompt: string): readonly PromptTokens[];
  /** Encodes a prompt once (implementations cache by prompt); `""` is the null prompt. */
  encode(prompt: string): Promise<Condition>;
  /** Predicts the noise ε̂(x_α, α | condition) for every item of the batch (`size · d` values). */
  predictNoise(batch: NoiseBatch): Promise<Float32Array>;
  /** Turns an image input into validated model data (length c·h·w), e.g. a VAE latent. */
  prepare(image: ImageInput): Promise<Float32Array>;
  /** Model data → CHW pixels in [−1, 1], for models whose data are not pixels (a VAE decoder). */
  decode?(data: Float32Array): Promise<Float32Array>;
  /** Who the model is (computed once; hashing model files can take seconds for a large UNet). */
  identity?(): Promise<ModelIdentity>;
  /** Releases native resources (ONNX sessions). Safe to call twice. */
  dispose(): Promise<void>;
}

/**
 * The denoiser with some members replaced or added, everything else its own (methods bound to it,
 * so class backends with private fields work), and immutable: what `createModel` adds its verbs
 * with and what `packCalls` replaces `predictNoise` with. `kind` names the wrapper in the message
 * a mutation gets.
 *
 * @example
 * ```ts
 * import { withMembers } from "./denoiser.ts";
 * import { exampleDenoiser } from "./example.ts";
 * const base = exampleDenoiser();
 * const renamed = withMembers(base, { name: "renamed" });
 * console.assert(renamed.name === "renamed" && renamed.shape === base.shape);
 * ```
 */
export function withMembers<D extends Denoiser, M extends object>(
  denoiser: D,
  members: M,
  kind = "denoiser",
): Omit<D, keyof M> & M {
  const bound = new WeakMap<object, unknown>();
  const refuse = (what: string) => {
    throw new InvalidArgumentError(
      `cannot ${what} a ${kind} (${denoiser.name}): ${kind}s are immutable; build a new denoiser instead`,
    );
  };
  return new Proxy(denoiser, {
    get(target, key) {
      if (Object.hasOwn(members, key)) return members[key as keyof M];
      const value = Reflect.get(target, key, target);
      if (typeof value !== "function") return value;
      let method = bound.get(value);
      if (!method) bound.set(value, method = value.bind(target));
      return method;
    },
    has: (target, key) => Object.hasOwn(members, key) || Reflect.has(target, key),
    set: () => refuse("set a property of"),
    defineProperty: () => refuse("define a property on"),
    deleteProperty: () => refuse("delete a property of"),
  }) as unknown as Omit<D, keyof M> & M;
}

/**
 * The identity of any denoiser: its own, or for a backend that has none, its name with an empty
 * hash (which a resumed study cannot verify, and says so).
 *
 * @example
 * ```ts
 * import { modelIdentity } from "./denoiser.ts";
 * const id = await modelIdentity({ name: "custom" } as never);
 * console.assert(id.name === "custom" && id.sha256 === "");
 * ```
 */
export function modelIdentity(denoiser: Denoiser): Promise<ModelIdentity> {
  return denoiser.identity?.() ??
    Promise.resolve({ name: denoiser.name, backend: "unknown", sha256: "" });
}

/**
 * Number of values in one datum of the given shape.
 *
 * @example
 * ```ts
 * import { shapeSize } from "./denoiser.ts";
 * console.assert(shapeSize([4, 64, 64]) === 16384);
 * ```
 */
export function shapeSize(shape: Shape): number {
  return shape[0] * shape[1] * shape[2];
}

/**
 * Checks that data fit a model: a Float32Array of c·h·w finite values. Returns the data.
 *
 * @example
 * ```ts
 * import { checkModelData } from "./denoiser.ts";
 * checkModelData([1, 1, 2], new Float32Array([0, 1]), "image");
 * ```
 */
export function checkModelData(shape: Shape, data: Float32Array, what: string): Float32Array {
  const d = shapeSize(shape);
  if (!(data instanceof Float32Array) || data.length !== d) {
    const got = data instanceof Float32Array ? `${data.length} values` : typeof data;
    throw new InvalidImageError(
      `${what}: expected a Float32Array of ${d} values (shape ${shape.join("×")}), got ${got}`,
    );
  }
  for (let i = 0; i < d; i++) {
    if (!Number.isFinite(data[i])) {
      throw new InvalidImageError(`${what}: value ${i} is ${data[i]}; expected finite numbers`);
    }
  }
  return data;
}
