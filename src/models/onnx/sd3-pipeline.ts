/**
 * SD 3/3.5 as its pipeline runs it (diffusers' pipeline_stable_diffusion_3.py, `encode_prompt`,
 * `_get_clip_prompt_embeds`, `_get_t5_prompt_embeds`; optimum's export of its parts):
 *
 * 1. the prompt goes to the two CLIP tokenizers (77 ids each) and to T5's (`tokenizer_3`, the max
 *    length, default 256, up to 512: the pieces, `</s>`, padding with `<pad>`);
 * 2. each CLIP's penultimate hidden state (`hidden_states[-2]`) — 768 and 1280 channels — is
 *    concatenated per token and zero-padded to T5's width (4096), then T5's `last_hidden_state`
 *    is stacked after it along the sequence: `encoder_hidden_states` [77 + L, 4096];
 * 3. a folder without `text_encoder_3` (model_index.json `[null, null]`) feeds zeros
 *    [L, joint_attention_dim] in T5's place, as diffusers does when `text_encoder_3` is None;
 * 4. both CLIPs' projected pooled outputs (`text_embeds`) are concatenated into
 *    `pooled_projections` (2048); the empty prompt "" is encoded like any other;
 * 5. the image is VAE-encoded: (mean − `shift_factor`) · `scaling_factor`, 16 channels;
 * 6. time is flow matching (src/models/flow.ts): each (α, x_α) becomes t = σ(−α/2) and
 *    x_t = s·x_α, the transformer is fed `timestep` = t · num_train_timesteps (1000·t, as the
 *    scheduler's timesteps are its sigmas × 1000) and its velocity v̂ gives ε̂ = x_t + (1 − t)·v̂.
 *
 * @module
 */
import { ModelLoadError } from "../../errors.ts";
import { flowConvention } from "../flow.ts";
import type { ClipTokenizer } from "../sd/tokenizer.ts";
import type { PromptTokenizer } from "../sd/prompt-tokenizer.ts";
import {
  checkPatches,
  concatChannels,
  concatenate,
  encoderTokenizer,
  flowScheduler,
  jointWordTokens,
  maxSequenceLength,
  type OnnxPipeline,
  openEncoder,
  penultimateStateOf,
  type PipelineContext,
  refuseOption,
  requireEqualWidths,
  runEncoder,
  staticWidth,
  transformerNumber,
} from "./pipeline.ts";
import { TRANSFORMER_INPUTS, TRANSFORMER_OUTPUT } from "./tensor-roles.ts";

/**
 * Why SD 3 streams no extra concept words: ConceptAttention's SD 3 code
 * (concept_attention/sd3/pipeline.py `encode_concepts`, dit_block.py) is another method than its
 * FLUX code, which infodiff's concept stream follows, and it is not implemented.
 *
 * @example
 * ```ts
 * import { SD3_CONCEPT_WORDS } from "./sd3-pipeline.ts";
 * console.assert(SD3_CONCEPT_WORDS.includes("first len(concepts) + 1"));
 * ```
 */
export const SD3_CONCEPT_WORDS: string =
  "ConceptAttention's SD 3 code is another method than its FLUX code, which infodiff's concept " +
  "stream follows: it encodes the words as one prompt through both CLIPs and T5 and keeps the " +
  "first len(concepts) + 1 positions (one CLIP token per word assumed), runs them on the " +
  "prompt's time embedding, and compares the attention outputs before the projections, the " +
  "image's from the concept call, with a softmax over the concepts; it is not implemented, so " +
  "SD 3's concept attention takes the prompt's own tokens only";
import type { OnnxTextEncoder } from "./text-encoder.ts";

const POOLED = "pooled_projections", TEXT_EMBEDS = "text_embeds";
const T5_STATE = "last_hidden_state";

/**
 * The SD 3/3.5 pipeline of a folder.
 *
 * @example
 * ```ts ignore
 * const pipeline = await sd3Pipeline(context);
 * const condition = await pipeline.encode("a red circle"); // (77 + 256) × 4096, pooled 2048
 * ```
 */
export async function sd3Pipeline(context: PipelineContext): Promise<OnnxPipeline> {
  const { folder, options, shape } = context;
  refuseOption(
    options,
    "guidance",
    "SD 3's transformer has no guidance embedding (it is run with classifier-free guidance, " +
      "which infodiff does not apply); expected it unset",
  );
  refuseOption(options, "unconditional", 'SD 3 encodes "" as its unconditional; expected it unset');
  const length = maxSequenceLength(options, 256, 512, "SD 3");
  const [partL, partG, partT5] = folder.encoders;
  const clipTokenizers = [
    await encoderTokenizer(partL) as ClipTokenizer,
    await encoderTokenizer(partG) as ClipTokenizer,
  ];
  const t5Tokenizer = partT5 ? await encoderTokenizer(partT5, length) : undefined;
  const clips = [await openEncoder(context, partL), await openEncoder(context, partG)];
  const t5 = partT5 ? await openEncoder(context, partT5) : undefined;
  const states = [
    await penultimateStateOf(clips[0], partL, folder.dir),
    await penultimateStateOf(clips[1], partG, folder.dir),
  ];
  clips.forEach((clip, k) => {
    if (!clip.outputs.has(TEXT_EMBEDS)) {
      throw new ModelLoadError(
        `${clip.source} has no output ${TEXT_EMBEDS}: SD 3's CLIP encoders are CLIP with ` +
          `projection, whose projected pooled outputs make pooled_projections; found ` +
          `${[...clip.outputs.keys()].join(", ")} (${[partL, partG][k].name})`,
      );
    }
  });
  const clipLength = clipTokenizers[0].contextLength;
  if (clipTokenizers[1].contextLength !== clipLength) {
    throw new ModelLoadError(
      `${partL.tokenizerDir} pads to ${clipLength} tokens but ${partG.tokenizerDir} to ` +
        `${clipTokenizers[1].contextLength}; SD 3 concatenates the two per token`,
    );
  }
  const jointWidth = transformerNumber(folder.denoiserConfig, "joint_attention_dim");
  const t5Width = t5 ? t5.hiddenSize : jointWidth;
  const patch = transformerNumber(folder.denoiserConfig, "patch_size") ?? 2;
  checkPatches(shape, patch, folder.unetPath);
  const scheduler = flowScheduler(folder);
  const imageSeqLen = (shape[1] / patch) * (shape[2] / patch);
  const convention = flowConvention(scheduler.scheduler, { imageSeqLen });
  const encoders: { name: string; tokenizer: PromptTokenizer }[] = [
    { name: partL.name, tokenizer: clipTokenizers[0] },
    { name: partG.name, tokenizer: clipTokenizers[1] },
  ];
  if (partT5 && t5Tokenizer) encoders.push({ name: partT5.name, tokenizer: t5Tokenizer });
  return {
    title: "SD 3",
    encoders,
    tokenizer: clipTokenizers[0],
    textEncoders: t5 ? [...clips, t5] : clips,
    contextLength: clipLength + length,
    network: {
      inputs: TRANSFORMER_INPUTS,
      output: TRANSFORMER_OUTPUT,
      extraInputs: [{ name: POOLED, kind: "condition" }],
      toNoise: () => {}, // the velocity goes back to the flow conversion as it is
    },
    flow: {
      convention,
      timestep: (t) => t * scheduler.numTrainTimesteps,
    },
    // JointAttnProcessor2_0 concatenates [image; text]; the text is CLIP's rows, then T5's
    jointAttention: {
      order: "image-text",
      textTokens: clipLength + length,
      imageTokens: imageSeqLen,
      wordTokens: (prompt) =>
        jointWordTokens(prompt, [
          { tokenizer: clipTokenizers[0], offset: 0 },
          ...(t5Tokenizer ? [{ tokenizer: t5Tokenizer, offset: clipLength }] : []),
        ]),
      conceptStream: SD3_CONCEPT_WORDS,
    },
    settings: {
      maxSequenceLength: length,
      t5: t5 ? "text_encoder_3" : "zeros (no text_encoder_3)",
      timestep: `${scheduler.numTrainTimesteps}·t`,
    },
    async encode(prompt) {
      const inputIds = clipTokenizers[0].inputIds(prompt);
      const l = await runEncoder(clips[0], clipTokenizers[0], prompt, [states[0], TEXT_EMBEDS]);
      const g = await runEncoder(clips[1], clipTokenizers[1], prompt, [states[1], TEXT_EMBEDS]);
      const t5States = await t5Encoding(t5, t5Tokenizer, prompt, length, jointWidth);
      const width = t5States.length / length;
      const clipStates = concatChannels([l.get(states[0])!, g.get(states[1])!], clipLength, width);
      return {
        prompt,
        inputIds,
        lastHiddenState: concatenate([clipStates, t5States]),
        networkInputs: new Map([[POOLED, concatenate([l.get(TEXT_EMBEDS)!, g.get(TEXT_EMBEDS)!])]]),
      };
    },
    check(network) {
      requireEqualWidths(
        "SD 3's T5 and its transformer",
        {
          source: t5 ? `${partT5!.modelPath} (last_hidden_state)` : "joint_attention_dim",
          width: t5Width,
        },
        {
          source: `${folder.unetPath} (encoder_hidden_states)`,
          width: staticWidth(network.hiddenInput),
        },
      );
      const clipWidth = [0, 1].map((k) => staticWidth(clips[k].outputs.get(states[k])!));
      const padTo = t5Width ?? staticWidth(network.hiddenInput);
      if (clipWidth.every((w) => w !== undefined) && padTo !== undefined) {
        const sum = clipWidth[0]! + clipWidth[1]!;
        if (sum > padTo) {
          throw new ModelLoadError(
            `SD 3's CLIP states are ${clipWidth.join(" + ")} = ${sum} channels, wider than T5's ` +
              `${padTo} that they are zero-padded to; expected CLIP widths that fit`,
          );
        }
      }
      const pooled = [0, 1].map((k) => staticWidth(clips[k].outputs.get(TEXT_EMBEDS)!));
      requireEqualWidths(
        "SD 3's pooled projections",
        {
          source: `${partL.name} + ${partG.name} (text_embeds, concatenated)`,
          width: pooled.every((w) => w !== undefined) ? pooled[0]! + pooled[1]! : undefined,
        },
        {
          source: `${folder.unetPath} (pooled_projections)`,
          width: staticWidth(network.extraInputs.get(POOLED)!.info),
        },
      );
    },
  };
}

/**
 * T5's `last_hidden_state` of the prompt ([length, width]), or zeros [length, joint_attention_dim]
 * without a T5 (diffusers' `_get_t5_prompt_embeds` when `text_encoder_3` is None).
 */
async function t5Encoding(
  t5: OnnxTextEncoder | undefined,
  tokenizer: PromptTokenizer | undefined,
  prompt: string,
  length: number,
  jointWidth: number | undefined,
): Promise<Float32Array> {
  if (t5 && tokenizer) return (await runEncoder(t5, tokenizer, prompt, [T5_STATE])).get(T5_STATE)!;
  if (jointWidth === undefined) {
    throw new ModelLoadError(
      `SD 3 without text_encoder_3 feeds zeros of the transformer's joint_attention_dim in T5's ` +
        `place, and transformer/config.json does not state it`,
    );
  }
  return new Float32Array(length * jointWidth);
}
