/**
 * What every family's pipeline file (sd-pipeline.ts, sdxl-pipeline.ts, sd3-pipeline.ts,
 * flux-pipeline.ts) builds for the one ONNX denoiser: its text encoders and tokenizers, how a
 * prompt becomes the network's conditioning, how the network is fed and how time is read (a trained
 * schedule, or flow matching), and the settings that change what the model computes. The shared
 * steps the pipelines take (opening an encoder, its penultimate hidden state, concatenations) are
 * here, written once.
 *
 * @module
 */
import { join } from "node:path";
import type { InferenceSession } from "npm:onnxruntime-node@1.30.0";
import { InvalidArgumentError, ModelLoadError, ModelRuntimeError } from "../../errors.ts";
import type { Shape, WordTokens } from "../denoiser.ts";
import {
  type FlowConvention,
  type FlowLayout,
  type FlowScheduler,
  flowSchedulerConfig,
} from "../flow.ts";
import type { EncoderFolder, ModelFolder } from "../sd/folder.ts";
import { readFolderJson } from "../sd/folder.ts";
import type { PromptTokenizer } from "../sd/prompt-tokenizer.ts";
import type { NoiseSchedule } from "../sd/schedule.ts";
import { type ClipTokenizer, loadTokenizer } from "../sd/tokenizer.ts";
import { loadT5Tokenizer } from "../sd/t5-tokenizer.ts";
import type { OnnxCondition } from "./onnx-model.ts";
import { OnnxTextEncoder } from "./text-encoder.ts";
import type { NetworkSpec, OnnxUnet } from "./unet.ts";
import type { JointAttentionLayout } from "./cross-attention.ts";

/** Choices of a family's pipeline a user may make (`loadModel` options). */
export interface PipelineOptions {
  /**
   * FLUX.1-dev's embedded guidance scale (default 1.0, recorded in every result): the model is
   * guidance-distilled, so its prediction, and the information read from it, is the guided one
   * at this scale. Refused for models without a guidance input (FLUX.1-schnell, the others).
   */
  readonly guidance?: number;
  /**
   * T5's token count, the pipelines' `max_sequence_length` (SD 3: default 256, up to 512; FLUX.1:
   * default 512 for dev, 256 for schnell, up to 512)
   */
  readonly maxSequenceLength?: number;
  /**
   * SDXL's unconditional (the empty prompt ""): `"model"` (default) does what model_index.json's
   * `force_zeros_for_empty_prompt` says (zeros: diffusers' default), `"zeros"` zero embeddings
   * and pooled vector, `"encoded"` the encoders' output for "".
   */
  readonly unconditional?: "model" | "zeros" | "encoded";
}

/** One text encoder of a pipeline with its tokenizer, as `encoderTokens` reports it. */
export interface PipelineEncoder {
  /** the encoder's folder name, e.g. "text_encoder_3" */
  readonly name: string;
  /** its tokenizer, with the encoder's own context (CLIP 77, T5 the max length) */
  readonly tokenizer: PromptTokenizer;
}

/**
 * How a flow-matching pipeline reads time and lays out its network's sample (SD 3, FLUX.1): the
 * denoiser maps each (α, x_α) to (t, x_t) through src/models/flow.ts and asks the network for v̂.
 */
export interface FlowTiming {
  /** the training law, trained range and scheduler (`Denoiser.flow`) */
  readonly convention: FlowConvention;
  /** the network's `timestep` for a flow time t (SD 3: 1000·t; FLUX.1: t) */
  readonly timestep: (t: number) => number;
  /** the network's sample dims per item, when it is not the latent (FLUX.1: packed tokens) */
  readonly networkShape?: readonly number[];
  /**
   * the network's layout of an item's sample and output when it is not the latent's (FLUX.1's
   * `_pack_latents` and `_unpack_latents`), applied inside the flow conversion
   */
  readonly layout?: FlowLayout;
}

/** What a family's pipeline file builds for the ONNX denoiser. */
export interface OnnxPipeline {
  /** the family's name in messages ("SDXL") */
  readonly title: string;
  /** every text encoder it runs, in its order, with its tokenizer */
  readonly encoders: readonly PipelineEncoder[];
  /** the first (CLIP) tokenizer: attention maps' token positions */
  readonly tokenizer: ClipTokenizer;
  /** the encoder sessions (timing counters; released with the model) */
  readonly textEncoders: readonly OnnxTextEncoder[];
  /** token positions of the network's encoder_hidden_states */
  readonly contextLength: number;
  /** how the network differs from an SD UNet (its inputs and how each is fed) */
  readonly network: NetworkSpec;
  /** the trained discrete schedule (SD 1.x/2.x, SDXL) */
  readonly schedule?: NoiseSchedule;
  /** flow matching (SD 3, FLUX.1) */
  readonly flow?: FlowTiming;
  /** settings that change what the model computes (recorded in its identity) */
  readonly settings: Readonly<Record<string, string | number | boolean>>;
  /** why the network's cross-attention cannot be read, when it cannot */
  readonly attentionUnavailable?: string;
  /**
   * a transformer's joint attention (SD 3, FLUX.1): its sequence's layout and the text tokens of
   * each word; the attention maps are then its image-query × text-key blocks
   */
  readonly jointAttention?: JointAttentionLayout;
  /** encodes a prompt as the family's pipeline does */
  encode(prompt: string): Promise<OnnxCondition>;
  /** checks the network against the encoders once both are open (widths, inputs) */
  check?(network: OnnxUnet): void;
}

/** What a pipeline file is given to build its pipeline. */
export interface PipelineContext {
  /** the validated folder */
  readonly folder: ModelFolder;
  /** opens a session (released by the loader if loading fails) */
  readonly open: (path: string) => Promise<InferenceSession>;
  /** the latent the network denoises (C, h, w) */
  readonly shape: Shape;
  /** the image resolution in pixels (square) */
  readonly resolution: number;
  /** the user's choices */
  readonly options: PipelineOptions;
}

/**
 * A tokenizer for one encoder of a folder: CLIP from its vocab/merges (or tokenizer.json), T5 from
 * its tokenizer.json at the pipeline's max length.
 *
 * @example
 * ```ts ignore
 * const tokenizer = await encoderTokenizer(folder.encoders[2], 256);
 * ```
 */
export async function encoderTokenizer(
  part: EncoderFolder,
  maxLength?: number,
): Promise<PromptTokenizer> {
  if (part.kind === "clip") return await loadTokenizer(part.tokenizerDir);
  if (maxLength === undefined) {
    throw new ModelLoadError(`${part.name}: a T5 tokenizer needs the pipeline's max length`);
  }
  return await loadT5Tokenizer(part.tokenizerDir, maxLength);
}

/**
 * Opens one encoder's session as a text encoder.
 *
 * @example
 * ```ts ignore
 * const clip = await openEncoder(context, folder.encoders[0]);
 * ```
 */
export async function openEncoder(
  context: PipelineContext,
  part: EncoderFolder,
): Promise<OnnxTextEncoder> {
  return new OnnxTextEncoder(await context.open(part.modelPath), part.modelPath);
}

/**
 * The name of a CLIP encoder's penultimate hidden state, `hidden_states[-2]` as diffusers' SDXL and
 * SD 3 pipelines read it: optimum exports `hidden_states.0` (the embeddings) … `hidden_states.L`
 * (the last layer, before the final norm), so it is `hidden_states.{L−1}` (CLIP-L: 11, CLIP-G: 31).
 * When the encoder's config.json states `num_hidden_layers`, L must equal it.
 *
 * @throws {ModelLoadError} an export without hidden_states outputs, or one that disagrees with its
 *   config
 *
 * @example
 * ```ts
 * import { penultimateHiddenState } from "./pipeline.ts";
 * const outputs = new Map(["last_hidden_state", "hidden_states.0", "hidden_states.1", "hidden_states.2"]
 *   .map((name) => [name, { name, type: "float32", shape: [1, 77, 8] }]));
 * console.assert(penultimateHiddenState(outputs, "text_encoder/model.onnx", 2) === "hidden_states.1");
 * ```
 */
export function penultimateHiddenState(
  outputs: ReadonlyMap<string, unknown>,
  source: string,
  configLayers?: number,
): string {
  const layers = [...outputs.keys()].flatMap((name) => {
    const match = /^hidden_states\.(\d+)$/.exec(name);
    return match ? [Number(match[1])] : [];
  });
  if (layers.length === 0) {
    throw new ModelLoadError(
      `${source} has no hidden_states.N outputs (found ${[...outputs.keys()].join(", ")}): the ` +
        `pipeline reads the encoder's penultimate hidden state (hidden_states[-2]), which ` +
        `optimum-cli exports for SDXL and SD 3 (it sets output_hidden_states); re-export the ` +
        `pipeline with optimum-cli export onnx`,
    );
  }
  const last = Math.max(...layers);
  if (configLayers !== undefined && configLayers !== last) {
    throw new ModelLoadError(
      `${source} exports hidden_states.0…${last} but its config.json says num_hidden_layers ` +
        `${configLayers}; expected hidden_states.0…${configLayers} (one per layer and the embeddings)`,
    );
  }
  if (!layers.includes(last - 1)) {
    throw new ModelLoadError(`${source} has no hidden_states.${last - 1} (the penultimate layer)`);
  }
  return `hidden_states.${last - 1}`;
}

/**
 * The penultimate hidden state an opened encoder exports, checked against its config.json's layer
 * count: what SDXL's and SD 3's pipelines read from each CLIP (`hidden_states[-2]`).
 *
 * @throws {ModelLoadError} as {@link penultimateHiddenState}
 *
 * @example
 * ```ts
 * import { penultimateStateOf } from "./pipeline.ts";
 * const outputs = new Map(["hidden_states.0", "hidden_states.1", "hidden_states.2"].map((n) => [n, {}]));
 * const part = { name: "text_encoder", tokenizer: "tokenizer", kind: "clip" as const,
 *   modelPath: "/nowhere/text_encoder/model.onnx", tokenizerDir: "/nowhere/tokenizer" };
 * console.assert(await penultimateStateOf({ outputs }, part, "/nowhere") === "hidden_states.1");
 * ```
 */
export async function penultimateStateOf(
  encoder: { readonly outputs: ReadonlyMap<string, unknown> },
  part: EncoderFolder,
  root: string,
): Promise<string> {
  return penultimateHiddenState(encoder.outputs, part.modelPath, await configLayers(part, root));
}

/**
 * `num_hidden_layers` of an encoder's config.json, when it has one.
 *
 * @example
 * ```ts
 * import { configLayers } from "./pipeline.ts";
 * const part = { name: "text_encoder", tokenizer: "tokenizer", kind: "clip" as const,
 *   modelPath: "/nowhere/text_encoder/model.onnx", tokenizerDir: "/nowhere/tokenizer" };
 * console.assert(await configLayers(part, "/nowhere") === undefined);
 * ```
 */
export async function configLayers(
  part: EncoderFolder,
  root: string,
): Promise<number | undefined> {
  const path = part.modelPath.replace(/model\.onnx$/, "config.json");
  try {
    await Deno.stat(path);
  } catch {
    return undefined;
  }
  const config = await readFolderJson(path, root);
  const layers = (config.text_config as Record<string, unknown> | undefined)?.num_hidden_layers ??
    config.num_hidden_layers;
  return typeof layers === "number" ? layers : undefined;
}

/**
 * Runs one encoder on a prompt and returns the named outputs (one prompt: batch 1), checking
 * each output's token count against the tokenizer's context.
 *
 * @example
 * ```ts ignore
 * const out = await runEncoder(clip, tokenizer, "a red circle", ["hidden_states.11"]);
 * ```
 */
export async function runEncoder(
  encoder: OnnxTextEncoder,
  tokenizer: PromptTokenizer,
  prompt: string,
  names: readonly string[],
): Promise<Map<string, Float32Array>> {
  const outputs = await encoder.run(tokenizer.inputIds(prompt), names);
  const values = new Map<string, Float32Array>();
  for (const [name, output] of outputs) {
    if (output.dims.length === 3 && output.dims[1] !== tokenizer.contextLength) {
      throw new ModelRuntimeError(
        `${encoder.source}: ${name} has ${output.dims[1]} token positions for ` +
          `${tokenizer.contextLength} ids; expected one per id`,
      );
    }
    values.set(name, output.values);
  }
  return values;
}

/**
 * Per-token concatenation along the channel axis, each token's channels zero-padded to `width`
 * (SDXL's `torch.concat(..., dim=-1)`; SD 3's, then its `pad` to T5's width).
 *
 * @example
 * ```ts
 * import { concatChannels } from "./pipeline.ts";
 * const out = concatChannels([new Float32Array([1, 2]), new Float32Array([3, 4, 5, 6])], 2, 4);
 * console.assert(out.join() === "1,3,4,0,2,5,6,0");
 * ```
 */
export function concatChannels(
  parts: readonly Float32Array[],
  tokens: number,
  width?: number,
): Float32Array {
  const widths = parts.map((p) => p.length / tokens);
  const sum = widths.reduce((a, b) => a + b, 0);
  const total = width ?? sum;
  if (sum > total || widths.some((w) => !Number.isInteger(w))) {
    throw new ModelRuntimeError(
      `cannot lay ${widths.join(" + ")} channels per token into ${total}`,
    );
  }
  const out = new Float32Array(tokens * total);
  for (let k = 0; k < tokens; k++) {
    let at = k * total;
    parts.forEach((part, p) => {
      out.set(part.subarray(k * widths[p], (k + 1) * widths[p]), at);
      at += widths[p];
    });
  }
  return out;
}

/**
 * One after another (SD 3's `torch.cat([clip, t5], dim=-2)`, pooled vectors' `dim=-1`).
 *
 * @example
 * ```ts
 * import { concatenate } from "./pipeline.ts";
 * console.assert(concatenate([Float32Array.of(1), Float32Array.of(2, 3)]).join() === "1,2,3");
 * ```
 */
export function concatenate(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/**
 * The static width of a tensor's last axis, when the export fixed it.
 *
 * @example
 * ```ts
 * import { staticWidth } from "./pipeline.ts";
 * console.assert(staticWidth({ shape: ["batch", 77, 768] }) === 768);
 * console.assert(staticWidth({ shape: ["batch", "width"] }) === undefined);
 * ```
 */
export function staticWidth(
  info: { readonly shape: readonly (number | string)[] },
): number | undefined {
  const last = info.shape[info.shape.length - 1];
  return typeof last === "number" ? last : undefined;
}

/**
 * Refuses two widths that must be equal (an encoder's output against the network's input), when
 * both are known.
 *
 * @throws {ModelLoadError} naming both sides and their widths
 *
 * @example
 * ```ts
 * import { requireEqualWidths } from "./pipeline.ts";
 * requireEqualWidths("x", { source: "a", width: 4 }, { source: "b", width: undefined });
 * let refused = false;
 * try {
 *   requireEqualWidths("x", { source: "a", width: 4 }, { source: "b", width: 8 });
 * } catch {
 *   refused = true;
 * }
 * console.assert(refused);
 * ```
 */
export function requireEqualWidths(
  what: string,
  a: { readonly source: string; readonly width: number | undefined },
  b: { readonly source: string; readonly width: number | undefined },
): void {
  if (a.width !== undefined && b.width !== undefined && a.width !== b.width) {
    throw new ModelLoadError(
      `${what}: ${a.source} gives ${a.width} channels but ${b.source} takes ${b.width}; ` +
        `expected equal widths (encoders and denoiser of one pipeline)`,
    );
  }
}

/**
 * The T5 max length a pipeline runs: the user's, checked against the family's limit, else the
 * family's default.
 *
 * @throws {InvalidArgumentError} a length that is not an integer in 1…limit
 *
 * @example
 * ```ts
 * import { maxSequenceLength } from "./pipeline.ts";
 * console.assert(maxSequenceLength({}, 256, 512, "SD 3") === 256);
 * console.assert(maxSequenceLength({ maxSequenceLength: 512 }, 256, 512, "SD 3") === 512);
 * ```
 */
export function maxSequenceLength(
  options: PipelineOptions,
  fallback: number,
  limit: number,
  family: string,
): number {
  const value = options.maxSequenceLength ?? fallback;
  if (!Number.isInteger(value) || value < 1 || value > limit) {
    throw new InvalidArgumentError(
      `maxSequenceLength must be an integer in 1…${limit} for ${family} (its pipeline's ` +
        `max_sequence_length), got ${options.maxSequenceLength}`,
    );
  }
  return value;
}

/**
 * Refuses a pipeline option this family does not have, saying why.
 *
 * @throws {InvalidArgumentError} when the option is set
 *
 * @example
 * ```ts
 * import { refuseOption } from "./pipeline.ts";
 * refuseOption({}, "guidance", "no guidance input");
 * ```
 */
export function refuseOption(
  options: PipelineOptions,
  key: keyof PipelineOptions,
  why: string,
): void {
  if (options[key] !== undefined) {
    throw new InvalidArgumentError(`${key} ${JSON.stringify(options[key])}: ${why}`);
  }
}

/**
 * Each word of the prompt with its positions among a transformer's text tokens, which are several
 * encoders' tokens one after the other (SD 3: CLIP's 77 then T5's; FLUX.1: T5's): a word's
 * sub-tokens in every stretch, each stretch's positions shifted by its offset.
 *
 * @param prompt the prompt
 * @param stretches each encoder's tokenizer and where its tokens start in the text sequence
 *
 * @example
 * ```ts
 * import { jointWordTokens } from "./pipeline.ts";
 * const split = { wordPositions: (p: string) => p.split(" ").map((word, i) => ({ word, positions: [i + 1] })) };
 * const words = jointWordTokens("red circle", [{ tokenizer: split, offset: 0 }, { tokenizer: split, offset: 77 }]);
 * console.assert(words[1].word === "circle" && words[1].positions.join() === "2,79");
 * ```
 */
export function jointWordTokens(
  prompt: string,
  stretches: readonly {
    readonly tokenizer: { wordPositions(prompt: string): readonly WordTokens[] };
    readonly offset: number;
  }[],
): WordTokens[] {
  const each = stretches.map(({ tokenizer, offset }) =>
    tokenizer.wordPositions(prompt).map((w) => w.positions.map((p) => p + offset))
  );
  return stretches[0].tokenizer.wordPositions(prompt).map(({ word }, i) => ({
    word,
    positions: each.flatMap((words) => words[i] ?? []),
  }));
}

/**
 * A positive integer of the denoiser's config.json, when stated.
 *
 * @throws {ModelLoadError} a value that is not a positive integer
 *
 * @example
 * ```ts
 * import { transformerNumber } from "./pipeline.ts";
 * console.assert(transformerNumber({ patch_size: 2 }, "patch_size") === 2);
 * console.assert(transformerNumber(undefined, "patch_size") === undefined);
 * ```
 */
export function transformerNumber(
  config: Record<string, unknown> | undefined,
  key: string,
): number | undefined {
  const value = config?.[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
    throw new ModelLoadError(
      `transformer/config.json: ${key} is ${JSON.stringify(value)}; expected a positive integer`,
    );
  }
  return value;
}

/**
 * The latent's sides must split into the transformer's patches (image sides: multiples of 8·p).
 *
 * @throws {ModelLoadError} sides that do not split
 *
 * @example
 * ```ts
 * import { checkPatches } from "./pipeline.ts";
 * checkPatches([16, 8, 8], 2, "transformer/model.onnx");
 * ```
 */
export function checkPatches(
  shape: readonly number[],
  patch: number,
  source: string,
): void {
  if (shape[1] % patch !== 0 || shape[2] % patch !== 0) {
    throw new ModelLoadError(
      `${source}: the latent is ${shape[1]}×${
        shape[2]
      }, which does not split into ${patch}×${patch} ` +
        `patches; expected image sides that are multiples of the VAE's downsampling × ${patch}`,
    );
  }
}

/**
 * A flow-matching folder's scheduler (scheduler_config.json) and its trained timestep count.
 *
 * @throws {ModelLoadError} another scheduler, or malformed values, naming the file
 *
 * @example
 * ```ts ignore
 * const { scheduler, numTrainTimesteps } = flowScheduler(folder); // SD 3: shift 3, 1000
 * ```
 */
export function flowScheduler(
  folder: ModelFolder,
): { readonly scheduler: FlowScheduler; readonly numTrainTimesteps: number } {
  let scheduler: FlowScheduler;
  try {
    scheduler = flowSchedulerConfig(folder.schedulerConfig as Record<string, unknown>);
  } catch (error) {
    throw new ModelLoadError(
      `${join(folder.dir, "scheduler", "scheduler_config.json")}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  return { scheduler, numTrainTimesteps: scheduler.numTrainTimesteps ?? 1000 };
}
