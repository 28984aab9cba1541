/**
 * Stable Diffusion 1.x/2.x as its pipeline runs it (diffusers' pipeline_stable_diffusion.py):
 *
 * 1. the prompt is tokenized by CLIP (77 ids: BOS, the prompt's tokens, EOS, padding with the
 *    folder's pad token: `<|endoftext|>` in SD 1.x, `!` in SD 2.x);
 * 2. the text encoder's `last_hidden_state` [77, 768 or 1024] is the UNet's
 *    `encoder_hidden_states`; the empty prompt "" is encoded like any other (the unconditional);
 * 3. the image is VAE-encoded (its mean, times `scaling_factor`), or taken as pixels by a
 *    pixel-space model;
 * 4. each log-SNR is evaluated at the nearest trained timestep of the scheduler's schedule, and a
 *    v-prediction is turned into ε̂ with that timestep's ᾱ.
 *
 * @module
 */
import { join } from "node:path";
import { ModelLoadError } from "../../errors.ts";
import { NoiseSchedule } from "../sd/schedule.ts";
import { loadTokenizer } from "../sd/tokenizer.ts";
import {
  type OnnxPipeline,
  openEncoder,
  type PipelineContext,
  refuseOption,
  requireEqualWidths,
  staticWidth,
} from "./pipeline.ts";

/**
 * The Stable Diffusion 1.x/2.x pipeline of a folder.
 *
 * @example
 * ```ts ignore
 * const pipeline = await sdPipeline(context);
 * const condition = await pipeline.encode("a red circle");
 * ```
 */
export async function sdPipeline(context: PipelineContext): Promise<OnnxPipeline> {
  const { folder, options } = context;
  for (const key of ["guidance", "maxSequenceLength", "unconditional"] as const) {
    refuseOption(
      options,
      key,
      `Stable Diffusion 1.x/2.x has no such choice (one CLIP encoder, no guidance embedding); ` +
        `expected it unset`,
    );
  }
  const [part] = folder.encoders;
  const tokenizer = await loadTokenizer(part.tokenizerDir);
  const schedule = NoiseSchedule.fromConfig(
    folder.schedulerConfig,
    join(folder.dir, "scheduler", "scheduler_config.json"),
  );
  const textEncoder = await openEncoder(context, part);
  if (
    textEncoder.contextLength !== undefined &&
    textEncoder.contextLength !== tokenizer.contextLength
  ) {
    throw new ModelLoadError(
      `${part.modelPath} takes ${textEncoder.contextLength} tokens but the tokenizer in ` +
        `${part.tokenizerDir} pads to ${tokenizer.contextLength}; expected equal lengths`,
    );
  }
  return {
    title: "Stable Diffusion 1.x/2.x",
    encoders: [{ name: part.name, tokenizer }],
    tokenizer,
    textEncoders: [textEncoder],
    contextLength: tokenizer.contextLength,
    network: {},
    schedule,
    settings: {},
    async encode(prompt) {
      const inputIds = tokenizer.inputIds(prompt);
      const { lastHiddenState } = await textEncoder.encode(inputIds);
      return { prompt, inputIds, lastHiddenState };
    },
    check(unet) {
      requireEqualWidths(
        "the text encoder and the UNet",
        { source: `${part.modelPath} (last_hidden_state)`, width: textEncoder.hiddenSize },
        {
          source: `${folder.unetPath} (encoder_hidden_states)`,
          width: staticWidth(unet.hiddenInput),
        },
      );
    },
  };
}
