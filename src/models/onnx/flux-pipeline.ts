/**
 * FLUX.1 (dev and schnell) as its pipeline runs it (diffusers' pipeline_flux.py, `encode_prompt`,
 * `_pack_latents`, `_prepare_latent_image_ids`; optimum's export of its parts):
 *
 * 1. the prompt goes to CLIP's tokenizer (77 ids) and to T5's (`tokenizer_2`, the max length:
 *    default 512 for dev, 256 for schnell, up to 512);
 * 2. CLIP's `pooler_output` (768) is the transformer's `pooled_projections`; T5's
 *    `last_hidden_state` [L, 4096] is its `encoder_hidden_states`; the empty prompt "" is encoded
 *    like any other;
 * 3. the image is VAE-encoded: (mean − `shift_factor`) · `scaling_factor`, 16 channels; the latent
 *    [16, h, w] is packed 2×2 into h·w/4 tokens of 64 (`_pack_latents`), and the transformer's
 *    output is unpacked the same way back;
 * 4. `img_ids` = (0, row, column) of each packed token, `txt_ids` = zeros [L, 3], rank 2 as
 *    diffusers ≥ 0.31 builds them (rank 3, with a batch axis, before: read from the graph);
 * 5. time is flow matching (src/models/flow.ts): each (α, x_α) becomes t = σ(−α/2) and
 *    x_t = s·x_α, the transformer is fed `timestep` = t (diffusers passes sigma·1000 / 1000) and
 *    its velocity v̂ gives ε̂ = x_t + (1 − t)·v̂;
 * 6. FLUX.1-dev is guidance-distilled: its transformer takes `guidance` (the embedded guidance
 *    scale; here default 1.0, recorded in every result) and has no trained unconditional branch,
 *    so its "information" is about its guided prediction at that guidance. FLUX.1-schnell has no
 *    `guidance` input and is given none.
 *
 * @module
 */
import { InvalidArgumentError, ModelLoadError, ModelRuntimeError } from "../../errors.ts";
import { type Shape, shapeSize } from "../denoiser.ts";
import { flowConvention, type FlowLayout } from "../flow.ts";
import type { ClipTokenizer } from "../sd/tokenizer.ts";
import {
  checkPatches,
  encoderTokenizer,
  flowScheduler,
  jointWordTokens,
  maxSequenceLength,
  type OnnxPipeline,
  openEncoder,
  type PipelineContext,
  refuseOption,
  requireEqualWidths,
  runEncoder,
  staticWidth,
  transformerNumber,
} from "./pipeline.ts";
import { inputInfo } from "./session.ts";
import type { ConceptStream } from "./cross-attention.ts";
import type { OnnxTextEncoder } from "./text-encoder.ts";
import type { PromptTokenizer } from "../sd/prompt-tokenizer.ts";
import { loadT5Tokenizer } from "../sd/t5-tokenizer.ts";
import { TRANSFORMER_INPUTS, TRANSFORMER_OUTPUT } from "./tensor-roles.ts";
import type { NetworkInput } from "./unet.ts";
import type { InferenceSession } from "npm:onnxruntime-node@1.30.0";

const POOLED = "pooled_projections", POOLER = "pooler_output", T5_STATE = "last_hidden_state";
const GUIDANCE = "guidance", IMG_IDS = "img_ids", TXT_IDS = "txt_ids";

/**
 * T5 tokens each extra concept word is encoded to, padded (ConceptAttention's `encode_concepts`:
 * `_get_t5_prompt_embeds(concepts, max_sequence_length=64)`); the first token's state is kept.
 *
 * @example
 * ```ts
 * import { CONCEPT_T5_TOKENS } from "./flux-pipeline.ts";
 * console.assert(CONCEPT_T5_TOKENS === 64);
 * ```
 */
export const CONCEPT_T5_TOKENS = 64;

/**
 * FLUX.1-dev's guidance when none is given.
 *
 * @example
 * ```ts
 * import { DEFAULT_FLUX_GUIDANCE } from "./flux-pipeline.ts";
 * console.assert(DEFAULT_FLUX_GUIDANCE === 1);
 * ```
 */
export const DEFAULT_FLUX_GUIDANCE = 1.0;

/**
 * The FLUX.1 pipeline of a folder; `network` is the transformer's session (its inputs say dev or
 * schnell, and the rank of the ids).
 *
 * @example
 * ```ts ignore
 * const pipeline = await fluxPipeline(context, transformerSession);
 * const condition = await pipeline.encode("a red circle"); // 512 × 4096, pooled 768
 * ```
 */
export async function fluxPipeline(
  context: PipelineContext,
  network: InferenceSession,
): Promise<OnnxPipeline> {
  const { folder, options, shape } = context;
  refuseOption(options, "unconditional", 'FLUX.1 encodes "" as any prompt; expected it unset');
  const inputs = inputInfo(network);
  const guidance = fluxGuidance(
    inputs.has(GUIDANCE),
    folder.denoiserConfig?.guidance_embeds,
    options.guidance,
    folder.unetPath,
  );
  const length = maxSequenceLength(options, guidance === undefined ? 256 : 512, 512, "FLUX.1");
  const [partClip, partT5] = folder.encoders;
  const clipTokenizer = await encoderTokenizer(partClip) as ClipTokenizer;
  const t5Tokenizer = await encoderTokenizer(partT5, length);
  const clip = await openEncoder(context, partClip);
  const t5 = await openEncoder(context, partT5);
  if (!clip.outputs.has(POOLER)) {
    throw new ModelLoadError(
      `${partClip.modelPath} has no output ${POOLER}: FLUX.1's CLIP (CLIPTextModel) gives its ` +
        `pooled output as pooled_projections; found ${[...clip.outputs.keys()].join(", ")}`,
    );
  }
  checkPatches(shape, 2, folder.unetPath);
  const inChannels = transformerNumber(folder.denoiserConfig, "in_channels");
  if (inChannels !== undefined && inChannels !== 4 * shape[0]) {
    throw new ModelLoadError(
      `${folder.unetPath}: transformer/config.json says in_channels ${inChannels}, but the ` +
        `${shape[0]}-channel latent packs 2×2 into ${4 * shape[0]}; a FLUX.1 transformer with ` +
        `other input channels is a Fill (384) or Canny/Depth (128) variant, which infodiff does ` +
        `not run`,
    );
  }
  const packed = (shape[1] / 2) * (shape[2] / 2);
  const { scheduler } = flowScheduler(folder);
  const convention = flowConvention(scheduler, { imageSeqLen: packed });
  const ids = (name: string, values: Float32Array, rows: number): NetworkInput => {
    const info = inputs.get(name);
    if (!info) {
      throw new ModelLoadError(`${folder.unetPath}: FLUX.1's transformer has no input ${name}`);
    }
    // diffusers ≥ 0.31 exports the ids without a batch axis; before, [B, rows, 3]
    return info.shape.length === 3
      ? { name, kind: "item", values, dims: [rows, 3] }
      : { name, kind: "shared", values, dims: [rows, 3] };
  };
  return {
    title: "FLUX.1",
    encoders: [
      { name: partClip.name, tokenizer: clipTokenizer },
      { name: partT5.name, tokenizer: t5Tokenizer },
    ],
    tokenizer: clipTokenizer,
    textEncoders: [clip, t5],
    contextLength: length,
    network: {
      inputs: TRANSFORMER_INPUTS,
      output: TRANSFORMER_OUTPUT,
      extraInputs: [
        { name: POOLED, kind: "condition" },
        ids(IMG_IDS, latentImageIds(shape), packed),
        ids(TXT_IDS, new Float32Array(length * 3), length),
        ...(guidance === undefined ? [] : [{
          name: GUIDANCE,
          kind: "item" as const,
          values: Float32Array.of(guidance),
          dims: [],
        }]),
      ],
      toNoise: () => {}, // the velocity goes back to the flow conversion as it is
    },
    flow: {
      convention,
      timestep: (t) => t,
      networkShape: [packed, 4 * shape[0]],
      layout: fluxLayout(shape),
    },
    // FluxAttnProcessor concatenates [text; image] (the single-stream blocks' input is the same
    // concatenation); the text is T5's tokens
    jointAttention: {
      order: "text-image",
      textTokens: length,
      imageTokens: packed,
      wordTokens: (prompt) => jointWordTokens(prompt, [{ tokenizer: t5Tokenizer, offset: 0 }]),
      conceptStream: fluxConceptStream(
        { clip, clipTokenizer, t5, t5Dir: partT5.tokenizerDir },
        inputs.get(TXT_IDS)?.shape.length === 3,
      ),
    },
    settings: {
      ...(guidance === undefined ? { variant: "schnell (no guidance input)" } : { guidance }),
      maxSequenceLength: length,
    },
    async encode(prompt) {
      const inputIds = clipTokenizer.inputIds(prompt);
      const pooled = (await runEncoder(clip, clipTokenizer, prompt, [POOLER])).get(POOLER)!;
      const states = (await runEncoder(t5, t5Tokenizer, prompt, [T5_STATE])).get(T5_STATE)!;
      return {
        prompt,
        inputIds,
        lastHiddenState: states,
        networkInputs: new Map([[POOLED, pooled]]),
      };
    },
    check(unet) {
      requireEqualWidths(
        "FLUX.1's T5 and its transformer",
        { source: `${partT5.modelPath} (last_hidden_state)`, width: t5.hiddenSize },
        {
          source: `${folder.unetPath} (encoder_hidden_states)`,
          width: staticWidth(unet.hiddenInput),
        },
      );
      requireEqualWidths(
        "FLUX.1's pooled projection",
        {
          source: `${partClip.modelPath} (pooler_output)`,
          width: staticWidth(clip.outputs.get(POOLER)!),
        },
        {
          source: `${folder.unetPath} (pooled_projections)`,
          width: staticWidth(unet.extraInputs.get(POOLED)!.info),
        },
      );
      requireEqualWidths(
        "FLUX.1's packed latent",
        { source: `the ${shape.join("×")} latent packed 2×2`, width: 4 * shape[0] },
        { source: `${folder.unetPath} (hidden_states)`, width: staticWidth(unet.sample) },
      );
    },
  };
}

/** What FLUX.1's concept stream encodes its words with. */
interface ConceptEncoders {
  readonly clip: OnnxTextEncoder;
  readonly clipTokenizer: ClipTokenizer;
  readonly t5: OnnxTextEncoder;
  /** T5's tokenizer folder (a tokenizer of {@link CONCEPT_T5_TOKENS} is loaded from it) */
  readonly t5Dir: string;
}

/**
 * FLUX.1's concept stream, as ConceptAttention's diffusers FLUX pipeline makes it
 * (`encode_concepts`, `FluxTransformer2DModelWithConceptAttention.forward`): each word through T5
 * alone, padded to {@link CONCEPT_T5_TOKENS}, its first token's state a row of
 * `concept_hidden_states` [C, 4096] (for `encoder_hidden_states`); CLIP's pooled output of the
 * words joined by spaces the stream's `concept_pooled_projections` (for `pooled_projections`: the
 * concept tokens' own time-text embedding); zero ids `concept_ids` [C, 3] (for `txt_ids`).
 */
function fluxConceptStream(encoders: ConceptEncoders, batchedIds: boolean): ConceptStream {
  const { clip, clipTokenizer, t5, t5Dir } = encoders;
  let tokenizer: Promise<PromptTokenizer> | undefined;
  return {
    inputs: [
      {
        replaces: "encoder_hidden_states",
        name: "concept_hidden_states",
        conceptAxis: 1,
        kind: "item",
      },
      { replaces: POOLED, name: "concept_pooled_projections", kind: "item" },
      batchedIds
        ? { replaces: TXT_IDS, name: "concept_ids", conceptAxis: 1, kind: "item" }
        : { replaces: TXT_IDS, name: "concept_ids", conceptAxis: 0, kind: "shared" },
    ],
    async encode(words) {
      tokenizer ??= loadT5Tokenizer(t5Dir, CONCEPT_T5_TOKENS);
      const t5Concepts = await tokenizer;
      for (const word of words) {
        t5Concepts.refuseSpecialTokens(word);
        clipTokenizer.refuseSpecialTokens(word);
      }
      const rows = [];
      for (const word of words) {
        const states = (await runEncoder(t5, t5Concepts, word, [T5_STATE])).get(T5_STATE)!;
        rows.push(states.subarray(0, states.length / CONCEPT_T5_TOKENS));
      }
      const width = rows[0].length;
      const hidden = new Float32Array(words.length * width);
      rows.forEach((row, i) => hidden.set(row, i * width));
      const joined = words.join(" ");
      const pooled = (await runEncoder(clip, clipTokenizer, joined, [POOLER])).get(POOLER)!;
      return new Map([
        ["concept_hidden_states", { values: hidden, dims: [words.length, width] }],
        ["concept_pooled_projections", { values: pooled, dims: [pooled.length] }],
        ["concept_ids", { values: new Float32Array(words.length * 3), dims: [words.length, 3] }],
      ]);
    },
  };
}

/**
 * The guidance FLUX.1 is run at: dev (a `guidance` input) takes the given one or 1.0; schnell
 * (none) is refused one. The export and its config.json (`guidance_embeds`) must agree.
 *
 * @throws {ModelLoadError} a dev config whose export has no guidance input, or the reverse
 * @throws {InvalidArgumentError} guidance given to schnell, or a guidance that is not finite
 *
 * @example
 * ```ts
 * import { fluxGuidance } from "./flux-pipeline.ts";
 * console.assert(fluxGuidance(true, true, undefined, "t") === 1);
 * console.assert(fluxGuidance(false, false, undefined, "t") === undefined);
 * ```
 */
export function fluxGuidance(
  hasInput: boolean,
  configSays: unknown,
  given: number | undefined,
  source: string,
): number | undefined {
  if (configSays === true && !hasInput) {
    throw new ModelLoadError(
      `${source}: transformer/config.json sets guidance_embeds (FLUX.1-dev, guidance-distilled) ` +
        `but the export has no guidance input, so the guidance it was distilled at cannot be fed; ` +
        `re-export it with optimum-cli (it adds the guidance input for guidance_embeds)`,
    );
  }
  if (configSays === false && hasInput) {
    throw new ModelLoadError(
      `${source}: the export takes a guidance input but transformer/config.json says ` +
        `guidance_embeds false; expected the graph and its config to agree`,
    );
  }
  if (!hasInput) {
    if (given !== undefined) {
      throw new InvalidArgumentError(
        `guidance ${given}: this FLUX.1 export has no guidance input (FLUX.1-schnell is ` +
          `timestep-distilled, not guidance-distilled); expected guidance unset`,
      );
    }
    return undefined;
  }
  const guidance = given ?? DEFAULT_FLUX_GUIDANCE;
  if (typeof guidance !== "number" || !Number.isFinite(guidance)) {
    throw new InvalidArgumentError(`guidance must be a finite number, got ${given}`);
  }
  return guidance;
}

/**
 * diffusers' `_prepare_latent_image_ids(height // 2, width // 2)`: (0, row, column) of each packed
 * token, row-major, [h/2 · w/2, 3].
 *
 * @example
 * ```ts
 * import { latentImageIds } from "./flux-pipeline.ts";
 * console.assert(latentImageIds([16, 4, 6]).join() === "0,0,0,0,0,1,0,0,2,0,1,0,0,1,1,0,1,2");
 * ```
 */
export function latentImageIds(shape: Shape): Float32Array {
  const rows = shape[1] / 2, columns = shape[2] / 2;
  const ids = new Float32Array(rows * columns * 3);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < columns; j++) {
      ids[(i * columns + j) * 3 + 1] = i;
      ids[(i * columns + j) * 3 + 2] = j;
    }
  }
  return ids;
}

/**
 * diffusers' `_pack_latents`: each item's [C, H, W] latent as [H/2 · W/2, 4C] tokens, token
 * (i, j) holding channel c's 2×2 patch at 4c + 2a + b.
 *
 * @example
 * ```ts
 * import { packLatents, unpackLatents } from "./flux-pipeline.ts";
 * const latent = Float32Array.from({ length: 16 }, (_, i) => i); // [1, 4, 4]
 * const packed = packLatents(latent, 1, [1, 4, 4]);
 * console.assert(packed.slice(0, 4).join() === "0,1,4,5" && packed.slice(4, 8).join() === "2,3,6,7");
 * console.assert(unpackLatents(packed, 1, [1, 4, 4]).join() === latent.join());
 * ```
 */
export function packLatents(
  latents: Float32Array,
  items: number,
  shape: Shape,
  out?: Float32Array,
): Float32Array {
  const into = checkRepack(latents, items, shape, true, out), d = shapeSize(shape);
  const starts = patchStarts(shape);
  for (let n = 0; n < items; n++) {
    const at = (values: Float32Array) => values.subarray(n * d, (n + 1) * d);
    packItem(at(latents), starts, shape[2], 1, at(into));
  }
  return into;
}

/**
 * diffusers' `_unpack_latents`: the inverse of {@link packLatents}.
 *
 * @example
 * ```ts
 * import { packLatents, unpackLatents } from "./flux-pipeline.ts";
 * const latent = Float32Array.from({ length: 32 }, (_, i) => i); // [2, 4, 4]
 * console.assert(unpackLatents(packLatents(latent, 1, [2, 4, 4]), 1, [2, 4, 4]).join() === latent.join());
 * ```
 */
export function unpackLatents(
  tokens: Float32Array,
  items: number,
  shape: Shape,
  out?: Float32Array,
): Float32Array {
  const into = checkRepack(tokens, items, shape, false, out), d = shapeSize(shape);
  const starts = patchStarts(shape);
  for (let n = 0; n < items; n++) {
    const at = (values: Float32Array) => values.subarray(n * d, (n + 1) * d);
    unpackItem(at(tokens), starts, shape[2], at(into));
  }
  return into;
}

/**
 * FLUX.1's transformer layout for the flow conversion: x_t packed as it is scaled from x_α, ε̂
 * unpacked as it is computed from x_t and v̂ (the same values as {@link packLatents} of x_t and
 * {@link unpackLatents} of ε̂, in one pass each way).
 *
 * @example
 * ```ts
 * import { fluxLayout, packLatents } from "./flux-pipeline.ts";
 * const latent = Float32Array.from({ length: 16 }, (_, i) => i), tokens = new Float32Array(16);
 * fluxLayout([1, 4, 4]).toNetwork(latent, 0.5, tokens);
 * console.assert(tokens.join() === packLatents(latent.map((x) => 0.5 * x), 1, [1, 4, 4]).join());
 * const eps = new Float32Array(16);
 * fluxLayout([1, 4, 4]).fromNetwork(tokens, tokens, 1, eps); // ε̂ = x_t + 1·v̂ with v̂ = x_t
 * console.assert(eps.join() === latent.join());
 * ```
 */
export function fluxLayout(shape: Shape): FlowLayout {
  const starts = patchStarts(shape), w = shape[2];
  return {
    toNetwork: (latent, scale, out) => packItem(latent, starts, w, scale, out),
    fromNetwork: (xt, v, keep, out) => unpackNoise(xt, v, keep, starts, w, out),
  };
}

/**
 * Where each packed patch starts in the latent: the index of its top-left value, in token order
 * (each token's channels in turn), so the 2×2 patch at `starts[k]` is packed values 4k…4k+3.
 * Walking it, the (un)packing loops are single loops with sequential token-side access and
 * latent-side access within two rows per channel (a few kilobytes): a channel-outer order swept
 * the packed megabyte once per channel and took four times as long, and nested loops ran on
 * V8's on-stack-replaced code, thrown away at the end of every inner loop (--trace-deopt).
 */
function patchStarts(shape: Shape): Int32Array {
  const [c, h, w] = shape, plane = h * w;
  const starts = new Int32Array((c * h * w) / 4);
  let k = 0;
  for (let y = 0; y < h; y += 2) {
    for (let x = 0; x < w; x += 2) {
      for (let ch = 0; ch < c; ch++) starts[k++] = ch * plane + y * w + x;
    }
  }
  return starts;
}

/** One item's packing ({@link patchStarts}; rows of `w` values), each value times `scale`. */
function packItem(
  latent: Float32Array,
  starts: Int32Array,
  w: number,
  scale: number,
  out: Float32Array,
): void {
  for (let k = 0, at = 0; k < starts.length; k++, at += 4) {
    const from = starts[k];
    out[at] = scale * latent[from];
    out[at + 1] = scale * latent[from + 1];
    out[at + 2] = scale * latent[from + w];
    out[at + 3] = scale * latent[from + w + 1];
  }
}

/** One item's unpacking, the inverse of {@link packItem} at scale 1. */
function unpackItem(tokens: Float32Array, starts: Int32Array, w: number, out: Float32Array): void {
  for (let k = 0, at = 0; k < starts.length; k++, at += 4) {
    const to = starts[k];
    out[to] = tokens[at];
    out[to + 1] = tokens[at + 1];
    out[to + w] = tokens[at + 2];
    out[to + w + 1] = tokens[at + 3];
  }
}

/**
 * One item's ε̂ = x_t + `keep`·v̂ from packed x_t and v̂, unpacked as it is computed: the loop of
 * {@link unpackItem} with the conversion written into it (one loop with a function per value for
 * both made this pass ten times as long).
 */
function unpackNoise(
  xt: Float32Array,
  v: Float32Array,
  keep: number,
  starts: Int32Array,
  w: number,
  out: Float32Array,
): void {
  for (let k = 0, at = 0; k < starts.length; k++, at += 4) {
    const to = starts[k];
    out[to] = xt[at] + keep * v[at];
    out[to + 1] = xt[at + 1] + keep * v[at + 1];
    out[to + w] = xt[at + 2] + keep * v[at + 2];
    out[to + w + 1] = xt[at + 3] + keep * v[at + 3];
  }
}

/** The output buffer of a whole-batch (un)packing, after checking the lengths. */
function checkRepack(
  from: Float32Array,
  items: number,
  shape: Shape,
  pack: boolean,
  into?: Float32Array,
): Float32Array {
  const d = shapeSize(shape);
  const out = into ?? new Float32Array(items * d);
  if (out.length !== items * d || from.length < items * d) {
    throw new ModelRuntimeError(
      `${pack ? "packing" : "unpacking"} ${items} latents of ${shape.join("×")}: got ` +
        `${from.length} values into ${out.length}; expected ${items * d} each`,
    );
  }
  return out;
}
