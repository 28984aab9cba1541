/**
 * Studies that calibrate themselves (issue 26): on a model without a calibrated profile, a study
 * spends its first rows (12 by default, or rows the user names) drawing α from the model's prior,
 * fits the profile from their draws as `calibrateProfile` does (`fitProfile`), stores it in
 * infodiff's cache keyed by the model's identity, and draws every other row from it.
 *
 * - **The calibration rows' estimates are kept.** Each draws from the prior: alone, or at 100
 *   draws or more ({@link CALIBRATION_ADAPT_MIN_SAMPLES}) adapting within the row as a query does
 *   (a pilot from the prior, the rest from a refit on the pilot, the rounds weighed by weights
 *   fixed before any draw). Either is unbiased; the profile is fitted from other rows' draws than
 *   the ones it is later used on, so every later row is unbiased given it. They cost no extra
 *   model call: the calibration is the first rows of the study, at the study's draws.
 * - **Every later row draws from the profile**, and adapts within itself from it only when asked
 *   (`adapt: true`; {@link studyRowPilot}).
 * - **One profile per model, shared by every shard, resume and later study.** Shard 0 runs the
 *   calibration rows (they are its alone: the rest are dealt to the shards as usual) and stores
 *   the profile; the other shards wait for the file (`waitSeconds`), so a Slurm array needs no
 *   step before it. The first writer wins, atomically, so two studies calibrating one model at
 *   once end on the same profile. A later run finds it stored and calibrates nothing.
 * - **The results header records it**: the proposal's masses (as for any fitted proposal) and
 *   `calibration`, the profile's own record (the rows, draws and prior it was fitted from), so
 *   resumed runs and shards refuse to mix profiles.
 * - **A short study calibrates on at most half its rows** (12 of a study of 24 or more).
 * - The fitted profile is mixed with the logistic at `SELF_FIT_SHARE` (0.25), measured on the
 *   banks. At 100 draws the calibration rows adapt (since 2026-12-07): they cost less and fit a
 *   better profile. On the exact oracle over 40 held-out images, 400 seeds each, their own
 *   variance is a query's 0.31 of i.i.d.'s against the prior's 0.70, and the rows after are at
 *   0.21 (a study of 100 rows, its calibration rows counted, at 0.22–0.23: 4.3–4.5× fewer
 *   calls). The rows after adapted within themselves too on 2026-12-07, from measurements at 100
 *   seeds per image; at 400 seeds that was worse (0.25, worst contrast 0.56–0.67 against
 *   0.36–0.39), so they draw from the profile alone again.
 *
 * @module
 */
import { dirname } from "node:path";
import { InvalidArgumentError, ModelLoadError } from "../errors.ts";
import { type Denoiser, modelIdentity } from "../models/denoiser.ts";
import {
  infodiffCacheDir,
  readStoredProfile,
  storedProfilePath,
  storeProfile,
  waitForStoredProfile,
} from "../models/profile-file.ts";
import type { EstimatorOptions, ResolvedOptions } from "../estimators/options.ts";
import { defaultProposal, pilotDraws, profileFits, resolveOptions } from "../estimators/options.ts";
import {
  type ContrastDraws,
  fitProfile,
  PROFILE_BINS,
  profileEdges,
  profileOf,
} from "../estimators/profile-fit.ts";
import type { LogSnrSampling } from "../numerics/log-snr.ts";
import {
  checkProfile,
  type LogSnrProfile,
  PROFILE_REFIT_SHARE,
  SELF_FIT_SHARE,
} from "../numerics/proposal.ts";
import { warn } from "../warnings.ts";
import {
  runStudy,
  shardItems,
  type StudyDescription,
  type StudyRecord,
  type StudyRun,
} from "./runner.ts";
import type { RunOptions, StudyCalibration } from "./runner.ts";
import { checkShard } from "./shard.ts";
import { readResults, writeAtomically } from "./results-file.ts";
import { estimatorSettings } from "./study-description.ts";

export type { StudyCalibration } from "./runner.ts";

/** Calibration rows by default: the first 12 of a study, as `infodiff calibrate`'s 12 scenes. */
export const CALIBRATION_ROWS = 12;

/** What a study will draw α from, decided before any row runs; also its dry run. */
export interface StudyProfilePlan {
  /**
   * "model": the model's own profile, or the proposal the options name; "off": the prior for
   * every row (`calibration: false`, or the reference's design); "stored": a profile an earlier
   * calibration of this model stored; "calibrate": this study fits one from its first rows
   */
  readonly mode: "model" | "off" | "stored" | "calibrate";
  /** what the calibration rows draw from (and every row, with "off") */
  readonly prior: Record<string, unknown> | string;
  /** how many rows calibrate ("calibrate" and "stored": the rows shard 0 runs first) */
  readonly rows: number;
  /** the stored profile's file, when the model has an identity to key it by */
  readonly path?: string;
  /** the stored profile ("stored") */
  readonly profile?: LogSnrProfile;
  /**
   * "calibrate" and "stored": present when each row drawing from the profile adapts within the
   * row, as asked with `adapt: true` ({@link studyRowPilot}): a pilot of this many draws from the
   * profile, the rest from a refit on the pilot
   */
  readonly rowPilot?: number;
}

/**
 * The fewest draws at which a self-calibrating study's calibration rows adapt within themselves,
 * as a query adapts from the prior (a pilot of half the draws, at most 50, split at 100 draws; the
 * rest from a refit on it). At 100 draws on the exact oracle over 40 held-out images (400 seeds
 * each) such rows are at a query's 0.31 of i.i.d.'s variance against the prior's 0.70, and the
 * profile fitted on their draws serves the rows after at 0.21 (bench/self-calibration.ts
 * `--calibration-adapt`). At 40 draws a pilot of 20 places nothing: on shapes-tiny's banks the
 * rows' worst contrast rose from 0.79 to 0.92 of i.i.d.'s with the calibration rows adapting.
 *
 * The rows after calibration draw from the study's profile alone ({@link studyRowPilot}).
 */
export const CALIBRATION_ADAPT_MIN_SAMPLES = 100;

/**
 * Whether a study's calibration rows adapt within themselves ({@link
 * CALIBRATION_ADAPT_MIN_SAMPLES}): where a query on the model would adapt from the prior (not on a
 * flow model unless asked, not with the reference's design or `adapt: false`), without a
 * precision target, at {@link CALIBRATION_ADAPT_MIN_SAMPLES} draws or more; `adapt: true` asks for
 * it at any size a query adapts at.
 *
 * @example
 * ```ts
 * import { calibrationAdapts } from "./self-calibration.ts";
 * import { exampleOracle } from "../query/oracles.ts";
 * const model = exampleOracle();
 * console.assert(calibrationAdapts(model, { samples: 100 }));
 * console.assert(!calibrationAdapts(model, { samples: 60 }));
 * console.assert(calibrationAdapts(model, { samples: 60, adapt: true }));
 * console.assert(!calibrationAdapts(model, { samples: 100, adapt: false }));
 * ```
 */
export function calibrationAdapts(model: Denoiser, estimator: EstimatorOptions): boolean {
  const asked = fixedBudgetAdapting(model, estimator);
  return asked !== undefined &&
    (estimator.adapt === true || asked.samples >= CALIBRATION_ADAPT_MIN_SAMPLES);
}

/** The options resolved where a query with them adapts over a fixed budget (no precision target). */
function fixedBudgetAdapting(
  model: Denoiser,
  estimator: EstimatorOptions,
): ResolvedOptions | undefined {
  const asked = resolveOptions(model, estimator);
  return asked.adapt && !asked.precision ? asked : undefined;
}

/**
 * The pilot of a study's rows after calibration when they adapt from the study's profile: only
 * when asked (`adapt: true`, and where a query would adapt), a pilot of half the draws (at most
 * 50) from the profile, the rest from a refit on it. Unasked they draw from the profile alone:
 * measured at 400 seeds per image on the exact oracle's held-out images, rows adapting were at
 * 0.25 of i.i.d.'s variance (worst contrast 0.56–0.67) against the profile alone's 0.21
 * (0.36–0.39); on shapes-tiny's banks at 100 draws the two tie in median (0.24), adapting a little
 * better at the worst contrast (0.61 against 0.64).
 *
 * @example
 * ```ts
 * import { studyRowPilot } from "./self-calibration.ts";
 * import { exampleOracle } from "../query/oracles.ts";
 * const model = exampleOracle();
 * console.assert(studyRowPilot(model, { samples: 100 }) === undefined);
 * console.assert(studyRowPilot(model, { samples: 100, adapt: true }) === 50);
 * console.assert(studyRowPilot(model, { samples: 60, adapt: true }) === 30);
 * ```
 */
export function studyRowPilot(
  model: Denoiser,
  estimator: EstimatorOptions,
): number | undefined {
  if (estimator.adapt !== true) return undefined;
  const asked = fixedBudgetAdapting(model, estimator);
  return asked && pilotDraws(asked.samples);
}

/**
 * What a study's calibration rows run with: adapting within the row where they adapt ({@link
 * calibrationAdapts}), else from the prior alone.
 *
 * @example
 * ```ts
 * import { calibrationOptions } from "./self-calibration.ts";
 * console.assert(calibrationOptions({ samples: 100 }, true).adapt === undefined);
 * console.assert(calibrationOptions({ samples: 60 }, false).adapt === false);
 * ```
 */
export function calibrationOptions(
  estimator: EstimatorOptions,
  adapts: boolean,
): EstimatorOptions {
  return adapts ? estimator : { ...estimator, adapt: false };
}

/**
 * What a study will draw α from, before anything runs: the model's profile or a named proposal,
 * a stored profile, or a calibration of its own (see the module).
 *
 * @example
 * ```ts
 * import { studyProfilePlan } from "./self-calibration.ts";
 * import { exampleOracle } from "../query/oracles.ts";
 * const dir = await Deno.makeTempDir();
 * const plan = await studyProfilePlan(exampleOracle(), { samples: 20 }, { store: dir }, 30);
 * console.assert(plan.mode === "calibrate" && plan.rows === 12 && plan.path?.startsWith(dir));
 * const off = await studyProfilePlan(exampleOracle(), { proposal: "logistic" }, undefined, 30);
 * console.assert(off.mode === "model");
 * ```
 */
export async function studyProfilePlan(
  model: Denoiser,
  estimator: EstimatorOptions,
  calibration: false | StudyCalibration | undefined,
  items: number,
): Promise<StudyProfilePlan> {
  const prior = (options: EstimatorOptions) => {
    const resolved = resolveOptions(model, options);
    const proposal = estimatorSettings(model, resolved).proposal as
      | Record<string, unknown>
      | string;
    return { proposal, ...(resolved.adapt ? { adapt: { ...resolved.adapt } } : {}) };
  };
  if (estimator.proposal !== undefined || defaultProposal(model) === "fitted") {
    return { mode: "model", prior: prior(estimator).proposal, rows: 0 };
  }
  // every row as the options say, adapting within the row where a query would
  if (calibration === false || resolveOptions(model, estimator).design === "reference") {
    return { mode: "off", prior: prior(estimator), rows: 0 };
  }
  const rowPilot = studyRowPilot(model, estimator);
  // what every plan that calibrates or reads a stored profile shares
  const shared = {
    prior: prior(calibrationOptions(estimator, calibrationAdapts(model, estimator))),
    ...(rowPilot ? { rowPilot } : {}),
  };
  const spec = checkCalibration(calibration ?? {});
  // named rows calibrate as named; a count takes at most half the study, so a short study still
  // draws most of its rows from the profile
  const rows = typeof spec.rows === "object"
    ? spec.rows.length
    : Math.min(spec.rows, Math.floor(items / 2));
  const store = spec.store ?? defaultStore();
  const identity = store === undefined ? undefined : await modelIdentity(model);
  // the file of this model over its trained range; a profile stored before files named their
  // range is read only if its range is this model's (else this study fits one of its own)
  const path = identity && storedProfilePath(identity, store!, model.logSnrRange);
  const legacy = identity && model.logSnrRange ? storedProfilePath(identity, store!) : undefined;
  const profile = path ? await readStoredProfile(path) : undefined;
  if (profile) return { mode: "stored", ...shared, rows, path, profile };
  const old = legacy ? await readStoredProfile(legacy) : undefined;
  if (old && profileFits(old, model)) {
    return { mode: "stored", ...shared, rows, path: legacy!, profile: old };
  }
  return { mode: "calibrate", ...shared, rows, ...(path ? { path } : {}) };
}

/**
 * A study's α plan in one sentence, for its dry run and the command line.
 *
 * @example
 * ```ts
 * import { describeProfilePlan } from "./self-calibration.ts";
 * const line = describeProfilePlan({ mode: "calibrate", prior: { proposal: "logistic" }, rows: 12, path: "/c/p.json" });
 * console.assert(line.startsWith("α: the first 12 rows draw from the prior"));
 * ```
 */
export function describeProfilePlan(plan: StudyProfilePlan): string {
  const prior = JSON.stringify(plan.prior);
  switch (plan.mode) {
    case "model":
      return `α: every row draws from ${prior} (the model's calibrated profile or the proposal ` +
        `named); no calibration`;
    case "off":
      return `α: every row draws from the prior ${prior}; calibration off`;
    case "stored": {
      const { rows, created } = plan.profile!.calibration as { rows?: unknown; created?: string };
      const fitted = Array.isArray(rows) ? `${rows.length} rows` : `${rows ?? "?"} rows`;
      return `α: every row draws from the profile stored at ${plan.path} (fitted on ${fitted}` +
        `${created ? `, ${created}` : ""})${adapting(plan)}; no calibration`;
    }
    case "calibrate":
      return `α: the first ${plan.rows} rows draw ` +
        `from the prior ${prior} (their estimates kept), then every other row from the profile ` +
        `fitted on their draws${adapting(plan)}, ${
          plan.path ? `stored at ${plan.path} (shards other than 0 wait for it)` : "not stored " +
            "(the model has no identity, or infodiff's cache folder is unknown)"
        }`;
  }
}

/**
 * How a row drawing from the profile adapts within itself, for the dry run's sentence: its refit
 * on a pilot from a fitted profile keeps `PROFILE_REFIT_SHARE` of the logistic.
 */
function adapting(plan: StudyProfilePlan): string {
  const logistic = Math.round(100 * PROFILE_REFIT_SHARE);
  return plan.rowPilot
    ? `, each row adapting within itself (${plan.rowPilot} draws from the profile, the rest ` +
      `from a refit on them, mixed ${100 - logistic} : ${logistic} with the logistic)`
    : "";
}

/**
 * Runs a study's rows with self-calibration ({@link studyProfilePlan}): what every study calls
 * in place of `runStudy`. `work` runs one row with the estimator options it is given (the
 * study's, with the profile once there is one); `describe` makes the results header from the
 * options every row after calibration uses.
 *
 * @example
 * ```ts
 * import { runCalibratedStudy } from "./self-calibration.ts";
 * import { exampleOracle } from "../query/oracles.ts";
 * import { EXAMPLE_PROMPT } from "../models/example.ts";
 * import { estimateContrasts, contrastPlan } from "../estimators/contrasts.ts";
 * import { resolveOptions } from "../estimators/options.ts";
 * const model = exampleOracle();
 * const items = [1, 2, 3, 4];
 * const run = await runCalibratedStudy({
 *   model, items, idOf: (i) => `row${i}`, estimator: { samples: 60 },
 *   options: { calibration: { rows: 2, store: await Deno.makeTempDir() } },
 *   work: async (seed, estimator) => {
 *     const data = model.sample(EXAMPLE_PROMPT, { seed });
 *     const out = await estimateContrasts(model, data, contrastPlan([[EXAMPLE_PROMPT, ""]]),
 *       resolveOptions(model, { ...estimator, seed }));
 *     return out.contrasts[0].estimate.nats;
 *   },
 *   describe: (estimator) => Promise.resolve({ study: "demo", settings: { proposal: typeof estimator.proposal } }),
 * });
 * console.assert(run.results.length === 4);
 * ```
 */
export async function runCalibratedStudy<I, R>(study: {
  readonly model: Denoiser;
  readonly items: readonly I[];
  readonly idOf: (item: I) => string;
  /** the study's per-row estimator options (each row adds its own seed) */
  readonly estimator: EstimatorOptions;
  /** the runner's options (results, shard, rows in flight …) and the calibration */
  readonly options: RunOptions & { readonly calibration?: false | StudyCalibration };
  readonly work: (item: I, estimator: EstimatorOptions) => Promise<R>;
  readonly describe: (estimator: EstimatorOptions) => Promise<StudyDescription>;
}): Promise<StudyRun<R>> {
  const { model, items, idOf, estimator, options, work, describe } = study;
  const plan = await studyProfilePlan(model, estimator, options.calibration, items.length);
  if (plan.mode === "model" || plan.mode === "off" || plan.rows === 0) {
    return await runStudy(items, idOf, (item) => work(item, estimator), {
      ...options,
      description: await describe(estimator),
    });
  }
  const spec = checkCalibration(options.calibration || {});
  const ordered = calibrationFirst(items, idOf, spec);
  const leading = ordered.slice(0, plan.rows);
  const leadingIds = leading.map(idOf);
  const shard = checkShard(options.shard ?? { index: 0, count: 1 });
  if (!plan.path && shard.count > 1) throw unshareable(model, shard.count);
  // the calibration rows run from the prior, adapting within the row at 100 draws or more (see
  // the module)
  const prior = calibrationOptions(estimator, calibrationAdapts(model, estimator));
  // a calibration that found nothing leaves a marker for this study's rows and settings only, so
  // its shards and reruns draw from the prior too and a later study tries again
  const marker = plan.path
    ? await noProfileMarker(
      plan.path,
      leadingIds,
      estimatorSettings(model, resolveOptions(model, prior)),
    )
    : undefined;
  // what this shard's results file already says (a resume needs neither the store nor the
  // calibration rows' draws again), else the stored profile, else a marker
  const resumed = await resumedCalibration(model, options.results);
  let profile = resumed ? resumed.profile : plan.profile;
  let noInformation = resumed !== undefined && resumed.profile === undefined
    ? resumed.rows
    : undefined;
  if (!resumed && !profile && marker !== undefined && await exists(marker)) {
    noInformation = leadingIds;
  }
  const found = profile !== undefined || noInformation !== undefined;
  let computed: StudyRecord<R>[] = [];
  if (!found && shard.index === 0) {
    const draws: ContrastDraws[] = [];
    const calibration = await runStudy(
      leading,
      idOf,
      (item) => work(item, { ...prior, onDraws: (d) => draws.push(...d) }),
      {
        rowsInFlight: options.rowsInFlight,
        // the calibration rows are the shard's first: progress counts them against all its rows
        onProgress: options.onProgress &&
          ((p) =>
            options.onProgress!({
              ...p,
              total: shardItems(ordered, shard, leading.length).length,
            })),
      },
    );
    computed = [
      ...calibration.results.map(({ id, result }) => ({ id, ok: true as const, result })),
      ...calibration.failures.map(({ id, error, kind }) => ({
        id,
        ok: false as const,
        error,
        kind,
      })),
    ];
    const fitted = fitStudyProfile(model, estimator, draws, {
      rows: leadingIds,
      prior: plan.prior,
    });
    if (fitted) profile = plan.path ? await storeProfile(plan.path, fitted) : fitted;
    else {
      noInformation = leadingIds;
      if (marker) await writeMarker(marker, leadingIds);
    }
  } else if (!found) {
    const { waitSeconds = 86_400 } = spec;
    profile = await waitForStoredProfile(plan.path!, {
      timeoutMs: waitSeconds * 1000,
      marker,
      onWait: (s) => warn(`infodiff: shard ${shard.index} waited ${s} s for ${plan.path}`),
    });
    if (!profile) noInformation = leadingIds;
  }
  // the rows a profile was fitted on draw from the prior, as they did when they calibrated it, so
  // a resumed shard or a rerun gives them their numbers again; no profile: the prior for every row
  // and each row after them from the profile, adapting within the row from it where it may
  const calibrated: EstimatorOptions = profile
    ? { ...estimator, proposal: profile, ...(plan.rowPilot ? { adapt: true } : {}) }
    : estimator;
  const fittedOn = new Set(profile ? profileRows(profile) : noInformation);
  const description = await describe(calibrated);
  const record = profile
    ? (({ created: _, ...rest }) => rest)(profile.calibration)
    : { rows: noInformation, noInformation: true };
  return await runStudy(
    ordered,
    idOf,
    (item) => work(item, fittedOn.has(idOf(item)) ? prior : calibrated),
    {
      ...options,
      description: {
        ...description,
        // the profile's own record (rows, draws, prior), stable across shards and resumes
        settings: { ...description.settings, calibration: record },
      },
      leading: leading.length,
      computed,
    },
  );
}

/**
 * The calibration a results file's header records, if it has one: the profile (rebuilt from the
 * masses, share and record the header holds, which are all its numbers depend on) and the rows
 * it was fitted on, or the rows of a calibration that found no information.
 */
async function resumedCalibration(
  model: Denoiser,
  results: string | undefined,
): Promise<{ profile?: LogSnrProfile; rows: string[] } | undefined> {
  if (results === undefined) return undefined;
  const settings = (await readResults(results)).header?.settings as {
    proposal?: {
      kind?: string;
      lambda?: number;
      mass?: number[];
      words?: Record<string, number[]>;
      wholePrompt?: number[];
    };
    calibration?: { rows?: unknown; noInformation?: boolean; logSnr?: LogSnrSampling };
  } | undefined;
  const record = settings?.calibration;
  if (!record || !Array.isArray(record.rows)) return undefined;
  const rows = record.rows.map(String);
  if (record.noInformation) return { rows };
  const proposal = settings.proposal;
  if (proposal?.kind !== "fitted" || !proposal.mass || !record.logSnr) return undefined;
  const masses = (mass: number[]) => ({ mass, contrasts: 1 });
  const profile = {
    ...profileOf(model, profileEdges(record.logSnr, proposal.mass.length), proposal.mass, {
      ...record,
    }),
    words: Object.fromEntries(
      Object.entries(proposal.words ?? {}).map(([word, mass]) => [word, masses(mass)]),
    ),
    ...(proposal.wholePrompt ? { wholePrompt: masses(proposal.wholePrompt) } : {}),
    defensiveShare: proposal.lambda,
  };
  return { profile: checkProfile(profile), rows };
}

/** The row ids a study fitted a profile on (none for a profile `infodiff calibrate` fitted). */
function profileRows(profile: LogSnrProfile): string[] {
  const rows = (profile.calibration as { by?: unknown; rows?: unknown }).rows;
  return profile.calibration.by === "study" && Array.isArray(rows) ? rows.map(String) : [];
}

/**
 * Where a calibration that found no informative contrast says so: beside the model's profile,
 * keyed by the calibration rows and their settings.
 */
async function noProfileMarker(
  path: string,
  rows: readonly string[],
  settings: Record<string, unknown>,
): Promise<string> {
  const bytes = new TextEncoder().encode(JSON.stringify({ rows, settings }));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const key = [...digest.slice(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join("");
  return path.replace(/\.json$/, `.none-${key}.json`);
}

async function writeMarker(path: string, rows: readonly string[]): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  await writeAtomically(
    path,
    JSON.stringify({
      kind: "infodiff.noLogSnrProfile",
      rows,
      reason: "no calibration contrast carried information beyond twice its standard error",
      created: new Date().toISOString(),
    }) + "\n",
  );
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/**
 * The profile fitted from the calibration rows' draws over the study's sampling interval, mixed
 * with the logistic at `SELF_FIT_SHARE`; undefined, with a warning, where no contrast carried
 * information beyond 2 SE (a model that ignores its prompts, or too few draws). `record` is kept
 * in the profile's `calibration`: the rows it was fitted on and the prior they drew from.
 *
 * @example
 * ```ts
 * import { fitStudyProfile } from "./self-calibration.ts";
 * import { exampleOracle } from "../query/oracles.ts";
 * import { EXAMPLE_PROMPT } from "../models/example.ts";
 * import { estimateContrasts } from "../estimators/contrasts.ts";
 * import { perTokenPlan } from "../estimators/per-token.ts";
 * import { resolveOptions } from "../estimators/options.ts";
 * import type { ContrastDraws } from "../estimators/profile-fit.ts";
 * const model = exampleOracle();
 * const draws: ContrastDraws[] = [];
 * for (const seed of [1, 2]) {
 *   const options = { samples: 40, seed, adapt: false, onDraws: (d: readonly ContrastDraws[]) => draws.push(...d) };
 *   await estimateContrasts(model, model.sample(EXAMPLE_PROMPT, { seed }),
 *     perTokenPlan(EXAMPLE_PROMPT).plan, resolveOptions(model, options));
 * }
 * const profile = fitStudyProfile(model, { samples: 40 }, draws, { rows: ["1", "2"], prior: "logistic" });
 * console.assert(profile !== undefined && profile.defensiveShare === 0.25);
 * ```
 */
export function fitStudyProfile(
  model: Denoiser,
  estimator: EstimatorOptions,
  draws: readonly ContrastDraws[],
  record: { readonly rows: readonly string[]; readonly prior: unknown },
): LogSnrProfile | undefined {
  const resolved = resolveOptions(model, estimator);
  const edges = profileEdges(resolved.logSnr, PROFILE_BINS);
  const fitted = fitProfile(model, edges, draws, {
    by: "study",
    rows: [...record.rows],
    samples: resolved.samples,
    estimator: resolved.estimator,
    prior: record.prior,
    logSnr: { ...resolved.logSnr },
    created: new Date().toISOString(),
  });
  // a fit from a dozen rows misses more than a calibration run's: a larger logistic share
  if (fitted) return { ...fitted, defensiveShare: SELF_FIT_SHARE };
  warn(
    `infodiff: none of the ${record.rows.length} calibration rows' contrasts carried information ` +
      `beyond twice its standard error on ${model.name}; every row draws from the prior`,
  );
  return undefined;
}

/** The items with the calibration rows first (in study order), then the rest in study order. */
function calibrationFirst<I>(
  items: readonly I[],
  idOf: (item: I) => string,
  spec: Required<Pick<StudyCalibration, "rows">>,
): I[] {
  if (typeof spec.rows === "number") return [...items];
  const named = new Set(spec.rows);
  const known = new Set(items.map(idOf));
  const missing = spec.rows.filter((id) => !known.has(id));
  if (missing.length > 0) {
    throw new InvalidArgumentError(
      `calibration rows ${missing.slice(0, 3).map((id) => `"${id}"`).join(", ")}${
        missing.length > 3 ? ` and ${missing.length - 3} more` : ""
      } are not rows of the study; expected ids of its rows`,
    );
  }
  return [
    ...items.filter((item) => named.has(idOf(item))),
    ...items.filter((item) => !named.has(idOf(item))),
  ];
}

function checkCalibration(
  spec: StudyCalibration,
): Required<Pick<StudyCalibration, "rows">> & StudyCalibration {
  if (typeof spec !== "object" || spec === null) {
    throw new InvalidArgumentError(
      `calibration must be false or { rows, store, waitSeconds }, got ${JSON.stringify(spec)}`,
    );
  }
  const rows = spec.rows ?? CALIBRATION_ROWS;
  const good = typeof rows === "number"
    ? Number.isInteger(rows) && rows >= 1
    : Array.isArray(rows) && rows.length > 0 && rows.every((id) => typeof id === "string");
  if (!good) {
    throw new InvalidArgumentError(
      `calibration.rows must be a positive whole number of rows or a non-empty list of row ids, ` +
        `got ${JSON.stringify(rows)}`,
    );
  }
  if (spec.store !== undefined && typeof spec.store !== "string") {
    throw new InvalidArgumentError(`calibration.store must be a folder path, got ${spec.store}`);
  }
  if (spec.waitSeconds !== undefined && !(spec.waitSeconds > 0)) {
    throw new InvalidArgumentError(
      `calibration.waitSeconds must be a positive number, got ${spec.waitSeconds}`,
    );
  }
  return { ...spec, rows };
}

/** infodiff's cache folder; none where the environment may not be read (nothing is stored). */
function defaultStore(): string | undefined {
  try {
    return infodiffCacheDir(Deno.env.toObject());
  } catch {
    return undefined;
  }
}

function unshareable(model: Denoiser, shards: number): Error {
  return new ModelLoadError(
    `${model.name} has no identity to key a stored profile by (or infodiff's cache folder cannot ` +
      `be found: set INFODIFF_CACHE or calibration.store), so the ${shards} shards of a ` +
      `self-calibrating study cannot share one; expected calibration: false, a proposal, or a ` +
      `profile fitted before the array (\`infodiff calibrate\`)`,
  );
}
