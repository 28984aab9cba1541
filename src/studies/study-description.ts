/**
 * What a study writes into its results file's header: the settings that change its numbers and
 * the model's identity. One function for every study, so the four cannot drift.
 *
 * @module
 */
import { type Denoiser, modelIdentity } from "../models/denoiser.ts";
import {
  type EstimatorOptions,
  type ResolvedOptions,
  scheduleSettings,
} from "../estimators/options.ts";
import type { StudyDescription, StudyOptions } from "./runner.ts";

/**
 * The estimator's part of a study's options (every row's estimate uses these, with its own seed).
 *
 * @example
 * ```ts
 * import { estimatorOptions } from "./study-description.ts";
 * console.assert(estimatorOptions({ samples: 4, results: "r.jsonl" }).samples === 4);
 * ```
 */
export function estimatorOptions(options: StudyOptions): EstimatorOptions {
  const picked: Record<string, unknown> = {};
  for (const key of ESTIMATOR_KEYS) picked[key] = options[key];
  return picked as EstimatorOptions;
}

/** Every estimator option a study passes on (all but `onProgress`, which reports rows there). */
const ESTIMATOR_KEYS = [
  "samples",
  "seed",
  "estimator",
  "logSnr",
  "design",
  "proposal",
  "adapt",
  "precision",
  "batchSize",
  "drawsPerLogSnr",
  "allowOutsideTrainedRange",
  "allowTruncation",
  "onDraws",
] as const satisfies readonly (keyof StudyOptions & keyof EstimatorOptions)[];

// a new estimator option left out of ESTIMATOR_KEYS fails to type-check here, instead of being
// dropped on the way from a study to its estimates
type Unpassed = Exclude<keyof EstimatorOptions, "onProgress" | typeof ESTIMATOR_KEYS[number]>;
const everyOptionPassed: [Unpassed] extends [never] ? true : Unpassed = true;
void everyOptionPassed;

/**
 * The estimator settings that change a study's numbers: draws, seed, estimator, log-SNR sampling,
 * and — only for models with a scalar timestep, whose draws share α in groups — what sets the
 * group size (never the per-call batch size, which does not change the numbers).
 *
 * @example
 * ```ts
 * import { estimatorSettings } from "./study-description.ts";
 * import { resolveOptions } from "../estimators/options.ts";
 * import { exampleDenoiser } from "../models/example.ts";
 * const model = exampleDenoiser();
 * const settings = estimatorSettings(model, resolveOptions(model, { samples: 8 }));
 * console.assert(settings.samples === 8 && !("batchSize" in settings));
 * ```
 */
export function estimatorSettings(
  model: Denoiser,
  resolved: ResolvedOptions,
): Record<string, unknown> {
  const { samples, seed, estimator, logSnr, design, precision, proposal, adapt } = resolved;
  // on scalar-timestep models draws share α in groups fixed by the model's batch size (or the
  // drawsPerLogSnr option): those change the numbers; the query's batch size never does
  const shared = model.sharedLogSnr
    ? { drawsPerLogSnr: resolved.drawsPerLogSnr ?? null, modelBatchSize: model.batchSize }
    : resolved.drawsPerLogSnr === undefined
    ? {}
    : { drawsPerLogSnr: resolved.drawsPerLogSnr };
  return {
    samples,
    seed,
    estimator,
    logSnr: { ...logSnr },
    design,
    // a fitted proposal is named by the masses its queries choose from, not by its provenance
    // a flow model's training law is recorded with the law and trained range it comes from, a
    // schedule by its timesteps (the model's identity holds the schedule itself)
    proposal: proposal.kind === "logistic"
      ? "logistic"
      : proposal.kind === "training-law"
      ? { ...proposal }
      : proposal.kind === "schedule"
      ? scheduleSettings(proposal)
      : fittedSettings(proposal),
    ...(precision ? { precision: { ...precision } } : {}),
    ...(adapt ? { adapt: { ...adapt } } : {}),
    // contrasts of prompts cut differently change the numbers; absent unless allowed
    ...(resolved.allowTruncation ? { allowTruncation: true } : {}),
    ...shared,
  };
}

/** The masses a fitted proposal draws from: the model's, and each word's and whole prompts'. */
function fittedSettings(proposal: Extract<ResolvedOptions["proposal"], { kind: "fitted" }>) {
  const { mass, words, wholePrompt } = proposal.profile;
  return {
    kind: "fitted",
    lambda: proposal.lambda,
    mass,
    ...(words
      ? { words: Object.fromEntries(Object.entries(words).map(([w, p]) => [w, p.mass])) }
      : {}),
    ...(wholePrompt ? { wholePrompt: wholePrompt.mass } : {}),
  };
}

/**
 * A study's description for its results file: the study's name, its settings, the model identity.
 *
 * @example
 * ```ts
 * import { describeStudy } from "./study-description.ts";
 * import { exampleDenoiser } from "../models/example.ts";
 * const d = await describeStudy("localization", exampleDenoiser(), { samples: 4 });
 * console.assert(d.model?.backend === "mixture oracle" && d.model.sha256.length === 64);
 * ```
 */
export async function describeStudy(
  study: string,
  model: Denoiser,
  settings: Record<string, unknown>,
): Promise<StudyDescription> {
  return { study, settings, model: await modelIdentity(model) };
}

/** How an option that may be a function is recorded: its name for strings, "custom" for functions. */
export function optionKind(value: unknown, absent = "default"): string {
  if (value === undefined) return absent;
  if (value === false) return "off";
  return typeof value === "string" ? value : "custom";
}
