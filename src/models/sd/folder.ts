/**
 * Reads and validates a diffusers ONNX export folder (REFERENCE §5) before any session is created:
 * which pipeline it is (Stable Diffusion 1.x/2.x, SDXL, SD 3/3.5 or FLUX.1, from model_index.json's
 * `_class_name` and the folders present), the files that pipeline reads, and the VAE's latent
 * convention. A wrong path, a missing encoder or a model infodiff cannot run fails here with a
 * message naming what is missing or what was found.
 *
 * @module
 */
import { join } from "node:path";
import { ModelLoadError } from "../../errors.ts";
import type { SchedulerConfig } from "./schedule.ts";

/** The VAE scaling factor SD 1.x/2.x use when no VAE config says otherwise. */
export const DEFAULT_VAE_SCALING = 0.18215;

/** The pipelines infodiff runs: what a folder holds decides which one loads it. */
export type PipelineFamily = "sd" | "sdxl" | "sd3" | "flux";

/** One text encoder of a pipeline, in the order the pipeline runs them. */
export interface EncoderPart {
  /** the encoder's folder, e.g. "text_encoder_2" (what `encoderTokens` names it) */
  readonly name: string;
  /** its tokenizer's folder, e.g. "tokenizer_2" */
  readonly tokenizer: string;
  /** CLIP (byte-level BPE, 77 tokens) or T5 (SentencePiece, the pipeline's max length) */
  readonly kind: "clip" | "t5";
  /** a pipeline can run without it (SD 3's T5: diffusers then feeds zeros) */
  readonly optional?: boolean;
}

/** What one pipeline family reads from its folder. */
export interface FamilyLayout {
  /** the family's display name in messages */
  readonly title: string;
  /** the denoiser's folder: "unet" or "transformer" */
  readonly denoiser: "unet" | "transformer";
  /** its text encoders, in the pipeline's order */
  readonly encoders: readonly EncoderPart[];
  /** whether a folder without a VAE (a pixel-space model) is this family too */
  readonly pixelSpace: boolean;
}

const CLIP_1: EncoderPart = { name: "text_encoder", tokenizer: "tokenizer", kind: "clip" };
const CLIP_2: EncoderPart = { name: "text_encoder_2", tokenizer: "tokenizer_2", kind: "clip" };

/**
 * Each family's layout, as diffusers' pipelines (and optimum's ONNX export of them) lay it out.
 *
 * @example
 * ```ts
 * import { FAMILY_LAYOUTS } from "./folder.ts";
 * console.assert(FAMILY_LAYOUTS.flux.encoders.map((e) => e.kind).join() === "clip,t5");
 * ```
 */
export const FAMILY_LAYOUTS: Readonly<Record<PipelineFamily, FamilyLayout>> = Object.freeze({
  sd: { title: "Stable Diffusion 1.x/2.x", denoiser: "unet", encoders: [CLIP_1], pixelSpace: true },
  sdxl: { title: "SDXL", denoiser: "unet", encoders: [CLIP_1, CLIP_2], pixelSpace: false },
  sd3: {
    title: "SD 3/3.5",
    denoiser: "transformer",
    encoders: [CLIP_1, CLIP_2, {
      name: "text_encoder_3",
      tokenizer: "tokenizer_3",
      kind: "t5",
      optional: true,
    }],
    pixelSpace: false,
  },
  flux: {
    title: "FLUX.1",
    denoiser: "transformer",
    encoders: [CLIP_1, { name: "text_encoder_2", tokenizer: "tokenizer_2", kind: "t5" }],
    pixelSpace: false,
  },
});

/** diffusers' pipeline classes (model_index.json `_class_name`) and the family each one is. */
const PIPELINE_CLASSES: Readonly<Record<string, PipelineFamily>> = {
  StableDiffusionPipeline: "sd",
  OnnxStableDiffusionPipeline: "sd",
  StableDiffusionImg2ImgPipeline: "sd",
  StableDiffusionXLPipeline: "sdxl",
  StableDiffusionXLImg2ImgPipeline: "sdxl",
  StableDiffusion3Pipeline: "sd3",
  StableDiffusion3Img2ImgPipeline: "sd3",
  FluxPipeline: "flux",
  FluxImg2ImgPipeline: "flux",
};

/**
 * Pipelines infodiff refuses by name (model_index.json `_class_name`), with the reason: each one's
 * denoiser predicts noise from more than the image and the prompt, so the conditional information
 * of a prompt is not what it computes.
 *
 * @example
 * ```ts
 * import { REFUSED_PIPELINES } from "./folder.ts";
 * console.assert(REFUSED_PIPELINES.some(([p]) => p.test("FluxFillPipeline")));
 * ```
 */
export const REFUSED_PIPELINES: readonly (readonly [RegExp, string])[] = [
  [
    /^FluxFill/,
    "FLUX.1 Fill: an inpainting/outpainting transformer that takes a masked image beside the noisy " +
    "latent (384 input channels), so its prediction is not of the image given the prompt alone",
  ],
  [
    /^FluxKontext/,
    "FLUX.1 Kontext: an image-editing transformer that attends to a reference image's tokens",
  ],
  [
    /^FluxPriorRedux/,
    "FLUX.1 Redux: an image-variation adapter (a SigLIP image encoder and an embedder), not a denoiser",
  ],
  [
    /^FluxControl(Img2Img|Inpaint)?Pipeline/,
    "FLUX.1 Canny/Depth: a structural-control transformer that takes a control image's latents " +
    "beside the noisy latent (128 input channels)",
  ],
  [
    /^FluxControlNet/,
    "a FLUX.1 ControlNet pipeline: its denoiser adds a control image's residuals",
  ],
  [
    /^StableDiffusion3ControlNet/,
    "an SD 3 ControlNet pipeline: its denoiser adds a control image's residuals",
  ],
  [
    /^StableDiffusionXLControlNet|^StableDiffusionControlNet/,
    "a ControlNet pipeline: its denoiser adds a control image's residuals",
  ],
];

/** How a folder without model_index.json that holds only adapter weights is recognised. */
const ADAPTER_FILES =
  /(^|\/)(pytorch_lora_weights\.(safetensors|bin)|adapter_config\.json|[^/]*lora[^/]*\.safetensors)$/i;

/**
 * The layouts loadModel expects, quoted in error messages.
 *
 * @example
 * ```ts
 * import { EXPECTED_LAYOUT } from "./folder.ts";
 * console.assert(EXPECTED_LAYOUT.includes("unet/model.onnx"));
 * ```
 */
export const EXPECTED_LAYOUT = [
  "model_index.json",
  "scheduler/scheduler_config.json",
  "tokenizer/ (vocab.json and merges.txt, or tokenizer.json; special_tokens_map.json, tokenizer_config.json)",
  "text_encoder/model.onnx",
  "unet/model.onnx (+ weights.pb or model.onnx_data for external weights)",
  "vae_encoder/model.onnx and vae_decoder/model.onnx (both, or neither for a pixel-space model); " +
  "SDXL adds text_encoder_2/ and tokenizer_2/; SD 3 has transformer/ for unet/ and adds " +
  "text_encoder_2/, tokenizer_2/ and (optionally) text_encoder_3/, tokenizer_3/ (T5, tokenizer.json); " +
  "FLUX.1 has transformer/ and text_encoder_2/, tokenizer_2/ (T5)",
].join("; ");

/** One text encoder of a validated folder. */
export interface EncoderFolder extends EncoderPart {
  /** `<dir>/<name>/model.onnx` */
  readonly modelPath: string;
  /** `<dir>/<tokenizer>` */
  readonly tokenizerDir: string;
}

/** The VAE's latent convention: latent = (mean − shift − latentsMean_c) · scaling / latentsStd_c. */
export interface LatentConvention {
  /** `scaling_factor` (0.18215 SD, 0.13025 SDXL, 1.5305 SD 3, 0.3611 FLUX.1) */
  readonly scalingFactor: number;
  /** `shift_factor` (0.0609 SD 3, 0.1159 FLUX.1; 0 where the config has none) */
  readonly shiftFactor: number;
  /** per-channel `latents_mean` (SDXL-architecture VAEs that set it), else absent */
  readonly latentsMean?: readonly number[];
  /** per-channel `latents_std`, with `latentsMean` */
  readonly latentsStd?: readonly number[];
  /** the config file the values came from (absent: SD's default, no config) */
  readonly source?: string;
}

/** The files of a validated diffusers ONNX folder. */
export interface ModelFolder {
  /** the folder */
  readonly dir: string;
  /** which pipeline runs it */
  readonly family: PipelineFamily;
  /** model_index.json's `_class_name`, if it has one */
  readonly pipelineClass?: string;
  /** parsed model_index.json */
  readonly modelIndex: Record<string, unknown>;
  /** parsed scheduler/scheduler_config.json */
  readonly schedulerConfig: SchedulerConfig;
  /** the text encoders the pipeline runs, in its order (present ones only) */
  readonly encoders: readonly EncoderFolder[];
  /** encoders the family has that this folder leaves out on purpose (SD 3 without T5) */
  readonly absentEncoders: readonly EncoderPart[];
  /** the first tokenizer folder (`tokenizer/`) */
  readonly tokenizerDir: string;
  /** the first text encoder (`text_encoder/model.onnx`) */
  readonly textEncoderPath: string;
  /** the denoiser: unet/model.onnx or transformer/model.onnx */
  readonly unetPath: string;
  /** the denoiser's config.json (`unet/config.json`, `transformer/config.json`), parsed, if present */
  readonly denoiserConfig?: Record<string, unknown>;
  /** vae_encoder/model.onnx, absent for a pixel-space model */
  readonly vaeEncoderPath?: string;
  /** vae_decoder/model.onnx, absent for a pixel-space model */
  readonly vaeDecoderPath?: string;
  /** latent scaling factor (VAE config `scaling_factor`, else 0.18215 for SD); 1 for pixel space */
  readonly scalingFactor: number;
  /** the VAE's whole latent convention (scaling, shift, per-channel statistics) */
  readonly latent: LatentConvention;
  /** every graph the loader opens (hub downloads and completeness checks read this list) */
  readonly graphs: readonly string[];
}

/**
 * Validates a diffusers ONNX export folder of any supported family and reads its JSON files.
 *
 * @throws {ModelLoadError} a missing file or folder (named), a pipeline refused by name, a folder
 *   without an encoder its pipeline needs, malformed JSON or a VAE config without its convention
 *
 * @example
 * ```ts
 * import { readModelFolder } from "./folder.ts";
 * const folder = await readModelFolder("fixtures/models/sd-int32-int64t");
 * console.assert(folder.scalingFactor === 0.5 && folder.family === "sd");
 * ```
 */
export async function readModelFolder(dir: string): Promise<ModelFolder> {
  await requireDirectory(dir, dir);
  await refuseAdapterOnly(dir);
  const modelIndex = await readJson(join(dir, "model_index.json"), dir);
  const { family, pipelineClass } = await pipelinePlan(
    modelIndex,
    (part) => exists(join(dir, part)),
    dir,
  );
  const layout = FAMILY_LAYOUTS[family];
  const schedulerConfig = await readJson(join(dir, "scheduler", "scheduler_config.json"), dir);
  const { encoders, absent } = await encoderFolders(dir, family, modelIndex);
  const unetPath = join(dir, layout.denoiser, "model.onnx");
  await requireFile(unetPath, dir, family);
  const denoiserConfigPath = join(dir, layout.denoiser, "config.json");
  const denoiserConfig = (await exists(denoiserConfigPath))
    ? await readJson(denoiserConfigPath, dir)
    : undefined;

  const encoder = join(dir, "vae_encoder", "model.onnx");
  const decoder = join(dir, "vae_decoder", "model.onnx");
  const [hasEncoder, hasDecoder] = [await exists(encoder), await exists(decoder)];
  if (hasEncoder !== hasDecoder) {
    const [found, missing] = hasEncoder ? [encoder, decoder] : [decoder, encoder];
    throw new ModelLoadError(
      `found ${found} but not ${missing}: a latent model needs both VAE halves, a pixel-space ` +
        `model neither (expected layout: ${EXPECTED_LAYOUT})`,
    );
  }
  const latentSpace = hasEncoder && hasDecoder;
  if (!latentSpace && !layout.pixelSpace) {
    throw missing(encoder, dir, "file", family);
  }
  const latent = latentSpace
    ? await latentConvention(dir, family)
    : { scalingFactor: 1, shiftFactor: 0 };
  return {
    dir,
    family,
    ...(pipelineClass ? { pipelineClass } : {}),
    modelIndex,
    schedulerConfig: schedulerConfig as SchedulerConfig,
    encoders,
    absentEncoders: absent,
    tokenizerDir: encoders[0].tokenizerDir,
    textEncoderPath: encoders[0].modelPath,
    unetPath,
    ...(denoiserConfig ? { denoiserConfig } : {}),
    ...(latentSpace ? { vaeEncoderPath: encoder, vaeDecoderPath: decoder } : {}),
    scalingFactor: latent.scalingFactor,
    latent,
    graphs: [
      ...encoders.map((e) => e.modelPath),
      unetPath,
      ...(latentSpace ? [encoder, decoder] : []),
    ],
  };
}

/** A folder (or hub listing) of adapter weights alone: refused, saying what it is. */
async function refuseAdapterOnly(dir: string): Promise<void> {
  if (await exists(join(dir, "model_index.json"))) return;
  const files: string[] = [];
  for await (const entry of Deno.readDir(dir)) if (entry.isFile) files.push(entry.name);
  const config = files.includes("config.json")
    ? await readJson(join(dir, "config.json"), dir).catch(() => undefined)
    : undefined;
  const reason = adapterOnlyReason(files, config);
  if (reason) throw new ModelLoadError(`${dir} ${reason}`);
}

/**
 * Why a file list without model_index.json is refused when it holds adapter weights alone (a
 * LoRA, or a ControlNet of SD 3), else undefined.
 *
 * @param files paths relative to the folder or repository
 * @param config the folder's config.json, when read (its `_class_name` names a ControlNet)
 *
 * @example
 * ```ts
 * import { adapterOnlyReason } from "./folder.ts";
 * console.assert(adapterOnlyReason(["pytorch_lora_weights.safetensors"])?.includes("LoRA"));
 * console.assert(adapterOnlyReason(["model_index.json"]) === undefined);
 * ```
 */
export function adapterOnlyReason(
  files: readonly string[],
  config?: Record<string, unknown>,
): string | undefined {
  if (files.includes("model_index.json")) return undefined;
  const adapter = files.find((file) => ADAPTER_FILES.test(file));
  if (adapter) {
    return `holds LoRA adapter weights only (${adapter}), no model_index.json: a LoRA changes a ` +
      `base model's weights and is not a model by itself. Load the base model, fuse the LoRA ` +
      `(diffusers: pipe.load_lora_weights(...); pipe.fuse_lora(); pipe.unload_lora_weights(); ` +
      `pipe.save_pretrained(dir)) and export that folder (optimum-cli export onnx, see the ` +
      `docs/models.md, "Getting a model")`;
  }
  const className = typeof config?._class_name === "string" ? config._class_name : "";
  if (/ControlNet/.test(className)) {
    return `is a ${className} (config.json), a ControlNet: an adapter that adds a control ` +
      `image's residuals to a base model's denoiser, not a text-to-image model by itself`;
  }
  return undefined;
}

/** Which pipeline a folder (or a hub listing) holds, and the graphs that pipeline opens. */
export interface PipelinePlan {
  /** the family that runs it */
  readonly family: PipelineFamily;
  /** model_index.json's `_class_name`, without optimum's "ORT" prefix */
  readonly pipelineClass?: string;
  /** the graphs its pipeline opens, relative to the folder (present or not) */
  readonly graphs: readonly string[];
}

/**
 * Which pipeline a folder holds, from its model_index.json and the parts a probe finds (on disk,
 * or in a hub repository's file list before anything large is downloaded). Refused pipelines and
 * folders mixing two pipelines' parts throw here.
 *
 * @param modelIndex the parsed model_index.json
 * @param has whether a path relative to the folder exists (a folder: whether anything is under it)
 * @param where the folder or repository, for messages
 * @throws {ModelLoadError} a pipeline refused by name, or one that cannot be told apart
 *
 * @example
 * ```ts
 * import { pipelinePlan } from "./folder.ts";
 * const files = new Set(["transformer", "text_encoder_2", "tokenizer_2"]);
 * const plan = await pipelinePlan({ _class_name: "FluxPipeline" }, (p) => Promise.resolve(files.has(p)), "repo");
 * console.assert(plan.family === "flux" && plan.graphs.includes("transformer/model.onnx"));
 * ```
 */
export async function pipelinePlan(
  modelIndex: Record<string, unknown>,
  has: (part: string) => Promise<boolean>,
  where: string,
): Promise<PipelinePlan> {
  const pipelineClass = typeof modelIndex._class_name === "string"
    ? modelIndex._class_name.replace(/^ORT/, "")
    : undefined;
  const reason = refusedPipelineReason(pipelineClass, modelIndex);
  if (reason) throw new ModelLoadError(`${where}: ${reason}`);
  const family = await familyOf(where, pipelineClass, modelIndex, has);
  const layout = FAMILY_LAYOUTS[family];
  const graphs = [
    ...layout.encoders.map((e) => `${e.name}/model.onnx`),
    `${layout.denoiser}/model.onnx`,
    "vae_encoder/model.onnx",
    "vae_decoder/model.onnx",
  ];
  return { family, ...(pipelineClass ? { pipelineClass } : {}), graphs };
}

/**
 * Why a pipeline is refused, from model_index.json (its `_class_name`, or the SDXL refiner's
 * `requires_aesthetics_score`), else undefined.
 *
 * @example
 * ```ts
 * import { refusedPipelineReason } from "./folder.ts";
 * console.assert(refusedPipelineReason("FluxKontextPipeline", {})?.includes("Kontext"));
 * console.assert(
 *   refusedPipelineReason("StableDiffusionXLImg2ImgPipeline", { requires_aesthetics_score: true })
 *     ?.includes("refiner"),
 * );
 * console.assert(refusedPipelineReason("FluxPipeline", {}) === undefined);
 * ```
 */
export function refusedPipelineReason(
  pipelineClass: string | undefined,
  modelIndex: Record<string, unknown>,
): string | undefined {
  const name = pipelineClass?.replace(/^ORT/, "");
  for (const [pattern, why] of REFUSED_PIPELINES) {
    if (name && pattern.test(name)) {
      return `model_index.json names ${name}, i.e. ${why}; infodiff runs text-to-image ` +
        `pipelines (StableDiffusion, StableDiffusionXL, StableDiffusion3, Flux)`;
    }
  }
  if (modelIndex.requires_aesthetics_score === true) {
    return `model_index.json sets requires_aesthetics_score, i.e. the SDXL refiner: its UNet is ` +
      `conditioned on an aesthetic score and trained only on the last, low-noise steps, with one ` +
      `text encoder (CLIP-G), so it is no model of images given a prompt over the whole noise ` +
      `range; use the SDXL base model`;
  }
  return undefined;
}

/** The family from the pipeline class, else from the folders present. */
async function familyOf(
  dir: string,
  pipelineClass: string | undefined,
  modelIndex: Record<string, unknown>,
  probe: (part: string) => Promise<boolean>,
): Promise<PipelineFamily> {
  const named = pipelineClass ? PIPELINE_CLASSES[pipelineClass] : undefined;
  if (named) {
    await refuseForeignParts(dir, pipelineClass!, named, probe);
    return named;
  }
  const has = async (part: string) => (await probe(part)) || listsComponent(modelIndex, part);
  if (await has("transformer")) {
    if (await has("text_encoder_3") || Object.hasOwn(modelIndex, "text_encoder_3")) return "sd3";
    if (await has("text_encoder_2")) {
      const t5 = componentClass(modelIndex, "text_encoder_2")?.startsWith("T5") ||
        await probe("tokenizer_2/spiece.model");
      if (t5) return "flux";
    }
    throw new ModelLoadError(
      `${dir} has a transformer/ denoiser${
        pipelineClass ? ` (model_index.json: ${pipelineClass})` : ""
      }` +
        ` but neither SD 3's text_encoder_3 nor FLUX.1's T5 text_encoder_2 says which pipeline it ` +
        `is; expected model_index.json's _class_name StableDiffusion3Pipeline or FluxPipeline ` +
        `(expected layout: ${EXPECTED_LAYOUT})`,
    );
  }
  if (await has("text_encoder_2") || await has("tokenizer_2")) return "sdxl";
  return "sd";
}

/** Folders of other pipelines' layouts: a folder names one pipeline and holds its parts only. */
const FOREIGN_PARTS = [
  "unet",
  "transformer",
  "text_encoder_2",
  "tokenizer_2",
  "text_encoder_3",
  "tokenizer_3",
];

/**
 * Refuses a folder whose model_index.json names one pipeline while it holds parts of another
 * (an SD 1.x class beside text_encoder_2/): which pipeline to run is not guessed.
 */
async function refuseForeignParts(
  dir: string,
  pipelineClass: string,
  family: PipelineFamily,
  has: (part: string) => Promise<boolean>,
): Promise<void> {
  const layout = FAMILY_LAYOUTS[family];
  const own = new Set<string>([
    layout.denoiser,
    ...layout.encoders.flatMap((e) => [e.name, e.tokenizer]),
  ]);
  const foreign = [];
  for (const part of FOREIGN_PARTS) {
    if (!own.has(part) && await has(part)) foreign.push(`${part}/`);
  }
  if (foreign.length > 0) {
    throw new ModelLoadError(
      `${dir}: model_index.json names ${pipelineClass} (${layout.title}) but the folder also has ` +
        `${foreign.join(", ")}, which that pipeline does not have (SDXL has text_encoder_2/ and ` +
        `tokenizer_2/, SD 3 and FLUX.1 a transformer/); expected the folder of one pipeline ` +
        `(expected layout: ${EXPECTED_LAYOUT})`,
    );
  }
}

/** True when model_index.json lists the component as present (not `[null, null]`). */
function listsComponent(modelIndex: Record<string, unknown>, part: string): boolean {
  const entry = modelIndex[part];
  return Array.isArray(entry) && entry.some((v) => v !== null);
}

/** The library class model_index.json gives a component, e.g. "T5EncoderModel". */
function componentClass(modelIndex: Record<string, unknown>, part: string): string | undefined {
  const entry = modelIndex[part];
  return Array.isArray(entry) && typeof entry[1] === "string" ? entry[1] : undefined;
}

/**
 * The family's encoders that the folder has, each with its graph and tokenizer (both required);
 * an optional one is left out only where model_index.json says the pipeline has none.
 */
async function encoderFolders(
  dir: string,
  family: PipelineFamily,
  modelIndex: Record<string, unknown>,
): Promise<{ encoders: EncoderFolder[]; absent: EncoderPart[] }> {
  const encoders: EncoderFolder[] = [];
  const absent: EncoderPart[] = [];
  for (const part of FAMILY_LAYOUTS[family].encoders) {
    const modelPath = join(dir, part.name, "model.onnx");
    const tokenizerDir = join(dir, part.tokenizer);
    const declaredAbsent = Array.isArray(modelIndex[part.name]) &&
      (modelIndex[part.name] as unknown[]).every((v) => v === null);
    if (part.optional && declaredAbsent && !(await exists(modelPath))) {
      absent.push(part);
      continue;
    }
    if (!(await exists(modelPath))) {
      throw new ModelLoadError(
        `${dir} is a ${FAMILY_LAYOUTS[family].title} folder but has no ${part.name}/model.onnx ` +
          `(missing file ${modelPath}): its pipeline needs ${part.name} (${
            part.kind === "t5" ? "T5" : "CLIP"
          })` +
          (part.optional
            ? `; to run without it as diffusers' ${part.name}=None does (zeros in its place), ` +
              `set "${part.name}": [null, null] in model_index.json`
            : "") +
          ` (expected layout: ${EXPECTED_LAYOUT})`,
      );
    }
    await requireDirectory(tokenizerDir, dir, family);
    await requireTokenizerFiles(tokenizerDir, part, dir, family);
    encoders.push({ ...part, modelPath, tokenizerDir });
  }
  return { encoders, absent };
}

/** A CLIP tokenizer needs vocab.json + merges.txt or a tokenizer.json; T5 needs tokenizer.json. */
async function requireTokenizerFiles(
  tokenizerDir: string,
  part: EncoderPart,
  root: string,
  family: PipelineFamily,
): Promise<void> {
  const json = join(tokenizerDir, "tokenizer.json");
  if (await exists(json)) return;
  if (part.kind === "t5") {
    throw new ModelLoadError(
      `missing file ${json}: ${part.name} is a T5 encoder and infodiff reads its tokenizer from ` +
        `tokenizer.json (a T5TokenizerFast saves it; a folder with only spiece.model can be ` +
        `converted with transformers: T5TokenizerFast.from_pretrained(dir).save_pretrained(dir))`,
    );
  }
  for (const file of ["vocab.json", "merges.txt"]) {
    await requireFile(join(tokenizerDir, file), root, family);
  }
}

/** The VAE's latent convention from the first VAE config present. */
async function latentConvention(dir: string, family: PipelineFamily): Promise<LatentConvention> {
  for (const sub of ["vae_decoder", "vae_encoder", "vae"]) {
    const path = join(dir, sub, "config.json");
    if (!(await exists(path))) continue;
    const config = await readJson(path, dir);
    if (config.scaling_factor === undefined && family === "sd") continue;
    return conventionFromConfig(config, path, family);
  }
  if (family === "sd") return { scalingFactor: DEFAULT_VAE_SCALING, shiftFactor: 0 };
  throw new ModelLoadError(
    `${dir} is a ${FAMILY_LAYOUTS[family].title} folder without a VAE config ` +
      `(vae_encoder/config.json or vae_decoder/config.json): its latent scaling_factor${
        family === "sdxl" ? "" : " and shift_factor"
      } are read from there, not assumed`,
  );
}

/**
 * A VAE config's latent convention, each field checked by name.
 *
 * @example
 * ```ts
 * import { conventionFromConfig } from "./folder.ts";
 * const c = conventionFromConfig({ scaling_factor: 1.5305, shift_factor: 0.0609 }, "vae/config.json", "sd3");
 * console.assert(c.scalingFactor === 1.5305 && c.shiftFactor === 0.0609);
 * ```
 */
export function conventionFromConfig(
  config: Record<string, unknown>,
  path: string,
  family: PipelineFamily,
): LatentConvention {
  const scaling = config.scaling_factor;
  if (typeof scaling !== "number" || !(scaling > 0) || !Number.isFinite(scaling)) {
    throw new ModelLoadError(`${path}: scaling_factor must be a positive number, got ${scaling}`);
  }
  const shift = config.shift_factor ?? null;
  const flow = family === "sd3" || family === "flux";
  if (flow && shift === null) {
    throw new ModelLoadError(
      `${path}: a ${FAMILY_LAYOUTS[family].title} VAE config has no shift_factor; its pipeline ` +
        `computes latents as (mean − shift_factor)·scaling_factor, so it must be stated`,
    );
  }
  if (shift !== null && (typeof shift !== "number" || !Number.isFinite(shift))) {
    throw new ModelLoadError(`${path}: shift_factor must be a finite number or null, got ${shift}`);
  }
  const mean = config.latents_mean ?? null, std = config.latents_std ?? null;
  const channels = (value: unknown, field: string, positive: boolean) => {
    if (!Array.isArray(value) || value.length === 0) {
      throw new ModelLoadError(`${path}: ${field} must be an array of numbers, got ${value}`);
    }
    for (const v of value) {
      if (typeof v !== "number" || !Number.isFinite(v) || (positive && !(v > 0))) {
        throw new ModelLoadError(
          `${path}: ${field} must hold finite${positive ? " positive" : ""} numbers, got ${v}`,
        );
      }
    }
    return value as number[];
  };
  if ((mean === null) !== (std === null)) {
    throw new ModelLoadError(
      `${path}: latents_mean and latents_std come together (diffusers uses both or neither)`,
    );
  }
  const stats = mean !== null
    ? {
      latentsMean: channels(mean, "latents_mean", false),
      latentsStd: channels(std, "latents_std", true),
    }
    : {};
  if (stats.latentsMean && stats.latentsMean.length !== stats.latentsStd!.length) {
    throw new ModelLoadError(`${path}: latents_mean and latents_std have different lengths`);
  }
  return {
    scalingFactor: scaling,
    shiftFactor: (shift as number | null) ?? 0,
    ...stats,
    source: path,
  };
}

/**
 * Whether a path exists (any kind of entry); errors other than "not found" are thrown.
 *
 * @example
 * ```ts
 * import { exists } from "./folder.ts";
 * console.assert(await exists("fixtures/models/sd-vpred/model_index.json"));
 * ```
 */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

async function requireDirectory(
  path: string,
  root: string,
  family?: PipelineFamily,
): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) throw missing(path, root, "folder", family);
    throw error;
  }
  if (!info.isDirectory) {
    throw new ModelLoadError(
      `${path} is not a folder; expected a folder (layout under ${root}: ${EXPECTED_LAYOUT})`,
    );
  }
}

async function requireFile(path: string, root: string, family?: PipelineFamily): Promise<void> {
  if (!(await exists(path))) throw missing(path, root, "file", family);
}

function missing(
  path: string,
  root: string,
  kind: string,
  family?: PipelineFamily,
): ModelLoadError {
  const what = family && family !== "sd"
    ? `a ${FAMILY_LAYOUTS[family].title} ONNX export folder`
    : "a Stable Diffusion ONNX export folder";
  return new ModelLoadError(
    `missing ${kind} ${path}; ${what} (${root}) must hold: ${EXPECTED_LAYOUT}`,
  );
}

async function readJson(path: string, root: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) throw missing(path, root, "file");
    throw new ModelLoadError(`cannot read ${path}; expected a JSON file`, { cause: error });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ModelLoadError(`${path} is not valid JSON`, { cause: error });
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ModelLoadError(
      `${path} holds ${Array.isArray(value) ? "an array" : String(value)}; expected a JSON object`,
    );
  }
  return value as Record<string, unknown>;
}

/**
 * Reads a JSON object file of a model folder (a component's config.json), with the folder's
 * errors: missing (named), unreadable, not JSON, not an object.
 *
 * @example
 * ```ts
 * import { readFolderJson } from "./folder.ts";
 * const index = await readFolderJson("fixtures/models/sd-vpred/model_index.json", "fixtures/models/sd-vpred");
 * console.assert(typeof index._class_name === "string");
 * ```
 */
export function readFolderJson(path: string, root: string): Promise<Record<string, unknown>> {
  return readJson(path, root);
}
