/**
 * SDXL as its pipeline runs it (diffusers' pipeline_stable_diffusion_xl.py, `encode_prompt` and
 * `_get_add_time_ids`; optimum's export of its parts):
 *
 * 1. the prompt goes to both CLIP tokenizers: `tokenizer` (CLIP-L, pads with `<|endoftext|>`) and
 *    `tokenizer_2` (CLIP-G, pads with its own pad token, `!` = id 0), 77 ids each;
 * 2. each encoder's penultimate hidden state (`hidden_states[-2]`: optimum's `hidden_states.11` of
 *    CLIP-L, `hidden_states.31` of CLIP-G) — 768 and 1280 channels — is concatenated per token into
 *    the UNet's `encoder_hidden_states` [77, 2048];
 * 3. CLIP-G's projected pooled output (`text_embeds`, 1280) is the UNet's `text_embeds`;
 * 4. `time_ids` = (original size, crop top-left, target size) = (R, R, 0, 0, R, R) for an image
 *    of R × R pixels, the same for every item;
 * 5. the unconditional "" is what model_index.json's `force_zeros_for_empty_prompt` says (diffusers'
 *    default: true, zero embeddings and a zero pooled vector), or "" encoded on request;
 * 6. the image is VAE-encoded, its mean times `scaling_factor` (0.13025), or with the VAE's
 *    `latents_mean`/`latents_std` where its config has them;
 * 7. time is SD's: each log-SNR at the nearest trained timestep of the (ε or v) schedule.
 *
 * @module
 */
import { join } from "node:path";
import { InvalidArgumentError, ModelLoadError } from "../../errors.ts";
import { NoiseSchedule } from "../sd/schedule.ts";
import type { ClipTokenizer } from "../sd/tokenizer.ts";
import {
  concatChannels,
  encoderTokenizer,
  type OnnxPipeline,
  openEncoder,
  penultimateStateOf,
  type PipelineContext,
  refuseOption,
  requireEqualWidths,
  runEncoder,
  staticWidth,
} from "./pipeline.ts";

/** The UNet's pooled-text input and micro-conditioning input (optimum's names). */
const TEXT_EMBEDS = "text_embeds", TIME_IDS = "time_ids";

/**
 * The SDXL pipeline of a folder.
 *
 * @example
 * ```ts ignore
 * const pipeline = await sdxlPipeline(context);
 * const condition = await pipeline.encode("a red circle"); // 77 × 2048 and a pooled 1280
 * ```
 */
export async function sdxlPipeline(context: PipelineContext): Promise<OnnxPipeline> {
  const { folder, options, resolution } = context;
  refuseOption(options, "guidance", "SDXL's UNet has no guidance embedding; expected it unset");
  refuseOption(options, "maxSequenceLength", "SDXL has no T5 encoder; expected it unset");
  const zeros = unconditionalZeros(options.unconditional, folder.modelIndex);
  const [partL, partG] = folder.encoders;
  const tokenizers = [
    await encoderTokenizer(partL) as ClipTokenizer,
    await encoderTokenizer(partG) as ClipTokenizer,
  ];
  const encoders = [await openEncoder(context, partL), await openEncoder(context, partG)];
  const states = [
    await penultimateStateOf(encoders[0], partL, folder.dir),
    await penultimateStateOf(encoders[1], partG, folder.dir),
  ];
  if (!encoders[1].outputs.has(TEXT_EMBEDS)) {
    throw new ModelLoadError(
      `${partG.modelPath} has no output ${TEXT_EMBEDS}: SDXL's second encoder is CLIP with ` +
        `projection (CLIPTextModelWithProjection), whose projected pooled output is the UNet's ` +
        `text_embeds; found ${[...encoders[1].outputs.keys()].join(", ")}`,
    );
  }
  const contextLength = tokenizers[0].contextLength;
  if (tokenizers[1].contextLength !== contextLength) {
    throw new ModelLoadError(
      `${partL.tokenizerDir} pads to ${contextLength} tokens but ${partG.tokenizerDir} to ` +
        `${
          tokenizers[1].contextLength
        }; SDXL concatenates the two per token, expected equal lengths`,
    );
  }
  const widths = [0, 1].map((k) => staticWidth(encoders[k].outputs.get(states[k])!));
  const pooledWidth = staticWidth(encoders[1].outputs.get(TEXT_EMBEDS)!);
  const timeIds = Float32Array.of(resolution, resolution, 0, 0, resolution, resolution);
  const schedulerPath = join(folder.dir, "scheduler", "scheduler_config.json");
  const schedulerClass = (folder.schedulerConfig as { _class_name?: unknown })._class_name;
  if (typeof schedulerClass === "string" && /EDM/.test(schedulerClass)) {
    // Playground v2.5's SDXL: trained in the EDM parameterisation (σ_data, a σ range), whose
    // config has no β schedule to read — reading one would silently assume diffusers' defaults
    throw new ModelLoadError(
      `${schedulerPath} is an ${schedulerClass}: this SDXL-architecture model was trained in the ` +
        `EDM parameterisation (e.g. Playground v2.5), not on a β schedule; infodiff reads SDXL's ` +
        `discrete variance-preserving schedule (EulerDiscreteScheduler, DDPM-family configs)`,
    );
  }
  const schedule = NoiseSchedule.fromConfig(folder.schedulerConfig, schedulerPath);
  return {
    title: "SDXL",
    encoders: [
      { name: partL.name, tokenizer: tokenizers[0] },
      { name: partG.name, tokenizer: tokenizers[1] },
    ],
    tokenizer: tokenizers[0],
    textEncoders: encoders,
    contextLength,
    schedule,
    network: {
      extraInputs: [
        { name: TEXT_EMBEDS, kind: "condition" },
        { name: TIME_IDS, kind: "item", values: timeIds, dims: [6] },
      ],
    },
    settings: {
      unconditional: zeros ? "zeros" : "encoded",
      timeIds: [...timeIds].join(","),
    },
    async encode(prompt) {
      const inputIds = tokenizers[0].inputIds(prompt);
      const l = await runEncoder(encoders[0], tokenizers[0], prompt, [states[0]]);
      const g = await runEncoder(encoders[1], tokenizers[1], prompt, [states[1], TEXT_EMBEDS]);
      const hidden = concatChannels([l.get(states[0])!, g.get(states[1])!], contextLength);
      const pooled = g.get(TEXT_EMBEDS)!;
      // force_zeros_for_empty_prompt: the unconditional is zeros of the shapes "" would have
      if (prompt === "" && zeros) {
        return {
          prompt,
          inputIds,
          lastHiddenState: new Float32Array(hidden.length),
          networkInputs: new Map([[TEXT_EMBEDS, new Float32Array(pooled.length)]]),
        };
      }
      return {
        prompt,
        inputIds,
        lastHiddenState: hidden,
        networkInputs: new Map([[TEXT_EMBEDS, pooled]]),
      };
    },
    check(unet) {
      const sum = widths[0] !== undefined && widths[1] !== undefined
        ? widths[0] + widths[1]
        : undefined;
      requireEqualWidths(
        "SDXL's two encoders and its UNet",
        { source: `${partL.name} + ${partG.name} (penultimate states, concatenated)`, width: sum },
        {
          source: `${folder.unetPath} (encoder_hidden_states)`,
          width: staticWidth(unet.hiddenInput),
        },
      );
      requireEqualWidths(
        "SDXL's pooled text embedding",
        { source: `${partG.modelPath} (text_embeds)`, width: pooledWidth },
        {
          source: `${folder.unetPath} (text_embeds)`,
          width: staticWidth(unet.extraInputs.get(TEXT_EMBEDS)!.info),
        },
      );
      const timeWidth = staticWidth(unet.extraInputs.get(TIME_IDS)!.info);
      if (timeWidth !== undefined && timeWidth !== 6) {
        throw new ModelLoadError(
          `${folder.unetPath}: time_ids has ${timeWidth} values per item; SDXL's base pipeline ` +
            `feeds 6 (original size, crop top-left, target size) — 5 is the refiner's ` +
            `aesthetic-score variant, which infodiff does not run`,
        );
      }
    },
  };
}

/**
 * Whether SDXL's unconditional "" is zeros: the option, or model_index.json's
 * `force_zeros_for_empty_prompt` (absent: diffusers' default, true).
 *
 * @example
 * ```ts
 * import { unconditionalZeros } from "./sdxl-pipeline.ts";
 * console.assert(unconditionalZeros(undefined, {}) === true);
 * console.assert(unconditionalZeros(undefined, { force_zeros_for_empty_prompt: false }) === false);
 * console.assert(unconditionalZeros("encoded", { force_zeros_for_empty_prompt: true }) === false);
 * ```
 */
export function unconditionalZeros(
  option: "model" | "zeros" | "encoded" | undefined,
  modelIndex: Record<string, unknown>,
): boolean {
  if (option === "zeros") return true;
  if (option === "encoded") return false;
  if (option !== undefined && option !== "model") {
    throw new InvalidArgumentError(
      `unconditional must be "model", "zeros" or "encoded", got ${JSON.stringify(option)}`,
    );
  }
  const flag = modelIndex.force_zeros_for_empty_prompt ?? true;
  if (typeof flag !== "boolean") {
    throw new ModelLoadError(
      `model_index.json: force_zeros_for_empty_prompt is ${
        JSON.stringify(flag)
      }; expected true or false`,
    );
  }
  return flag;
}
