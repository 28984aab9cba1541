/**
 * What a model without a calibrated profile gets (issue 26), simulated on shapes-tiny's design
 * banks (bench/design-bank.ts: the integrand at every trained timestep, 4 noises each, 3 contrasts
 * per held-out scene: the first object's colour word, its shape word, the caption against ""):
 *
 * - `priors`: the family priors against the logistic (stratified-antithetic at `samples` draws):
 *   SD's schedule (uniform over trained timesteps), alone and in the defensive mixture;
 * - `adaptive`: a query that spends a pilot share of its draws on the prior and the rest on a
 *   profile fitted from the pilot (`fitProfile`, `planProposal`), the rounds combined by their
 *   draws or with the pilot discounted; for the three contrasts of a scene on shared draws (a perToken-like query) and for
 *   each word alone (`about`), at several budgets, to find the break-even;
 * - `oracle`: the same on the exact example oracle, real runs of the engine with exact values (bias
 *   and interval coverage too); `--oracle-fits 10`: the study's rows after 10 calibrations instead
 *   of 3 (coverage per calibration is ±1.1 points at 400 seeds); `--oracle-estimator orthogonal`:
 *   the estimators' default form, whose single-image value is not the log-density difference (its
 *   bias and coverage against it mean nothing; its variances do);
 * - `oracle-ceiling`: on the exact oracle, what a profile fitted on other images can reach at most
 *   (the i.i.d. variance formula from the integrand's second moment along α), and the most any α
 *   proposal can do under the shipped design (`designBound`);
 * - `flow-ceiling`: that design's bound on a trained flow model (shapes-flow), in both forms;
 * - `oracle-images`: the oracle's prior, query and study over 40 held-out images instead of the one
 *   example image (`--oracle-images 40 --oracle-image-seeds 400`: at 100 seeds per image a
 *   query's heavy-tailed "circle" moved its median by up to 0.14 between sets of seeds), and the
 *   same rows with a profile calibrated by hand (`calibrateProfile`, 12 other images × 300 draws);
 *   `oracle-queries` runs only its prior and queries;
 * - `--pilot-discounts 1,0.8,…` (with `adaptive`, `oracle-images` or `oracle-queries`): the adaptive
 *   query again with its pilot weighing these fractions of its share of the draws (1: by draws);
 * - `--study-shares 0.25,0.1,0.05` (with `oracle-images`): the study's fitted profile mixed with the
 *   logistic at these shares λ (as shipped: `SELF_FIT_SHARE`; 0 is refused, as by any profile);
 * - `--row-adapt 0.8,0.8:30` (with `study` or `oracle-images`): a study's rows each adapting from
 *   the study's profile, the pilot discounted by the first number, its draws the second (default:
 *   half the draws, at most 50, as a query's), its refit at `PROFILE_REFIT_SHARE`; `0.8` is what
 *   `adapt: true` does (shipped unasked at 100 draws for one day, 2026-12-07, until 400 seeds per
 *   image showed the rows from the profile alone better on the oracle; a pilot of 30 lowered the
 *   oracle's median by raising its worst contrast);
 * - `--calibration-adapt` (with `oracle-images`): the study's calibration rows adapting within the
 *   row as a query does (as shipped since 2026-12-07), counted at the query's variance;
 *   `--oracle-first-image 300`: other held-out images than the 200–239 settings were chosen on;
 * - `--schemes 1,2` (with `study`): only these ways the calibration rows draw (1: adapting as a
 *   query does, as shipped since 2026-12-07; 2: the schedule alone, as before);
 * - `flow-model`: a trained flow model (shapes-flow): real runs of perToken queries on held-out
 *   scenes, the logistic (as shipped) and the training law alone, adapting, and a study's rows
 *   after its calibration on 12 rows of other scenes, against i.i.d.; `--flow-estimator
 *   orthogonal` in the estimators' default form (standard unless asked, as first measured);
 * - `families`: the exact SDXL, SD 3 and FLUX.1 fixtures (issue 24), real runs against their
 *   closed forms: the logistic and SDXL's schedule or SD 3's and FLUX's training law alone,
 *   adapting (SDXL as shipped), and after a study's calibration;
 * - `study`: a study's calibration rows. Each held-out scene's word contrasts are estimated with a
 *   profile fitted from K calibration rows of the other scenes (leave one scene out: calibration
 *   never saw the image), each row `samples` draws from the prior, which is also that row's kept
 *   estimate; the study's cost counts the calibration rows at the prior's variance.
 *
 * Ratios are variances relative to the i.i.d. logistic scheme at equal draws (0.25: the same SE
 * from 4× fewer model calls). `deno run -A bench/self-calibration.ts [--replicates 2000]
 * [--samples 40] [--only priors,adaptive,study] [--banks 0,1,2,3]`; uses the banks in out/design-bank (builds none).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { loadModel, type OnnxModel } from "../src/query/load-model.ts";
import {
  ADAPT_PILOT_DISCOUNT,
  pilotDraws,
  type ResolvedOptions,
  resolveOptions,
} from "../src/estimators/options.ts";
import {
  DEFENSIVE_SHARE,
  fittedProposal,
  logisticProposal,
  type LogSnrProfile,
  type LogSnrProposal,
  PROFILE_REFIT_SHARE,
  SELF_FIT_SHARE,
} from "../src/numerics/proposal.ts";
import { logSnrAtQuantile, type LogSnrSampling } from "../src/numerics/log-snr.ts";
import { Random } from "../src/numerics/random.ts";
import { planProposal } from "../src/estimators/contrast-profile.ts";
import { adaptiveRounds, discountedWeights, standardError } from "../src/estimators/contrasts.ts";
import { type ContrastDraws, fitProfile, profileEdges } from "../src/estimators/profile-fit.ts";
import { scheduleProfile } from "../src/estimators/family-prior.ts";
import {
  calibrationAdapts,
  calibrationOptions,
  fitStudyProfile,
  studyRowPilot,
} from "../src/studies/self-calibration.ts";
import { calibrateProfile } from "../src/estimators/calibrate.ts";
import { perTokenPlan } from "../src/estimators/per-token.ts";
import { join } from "node:path";
import { type Denoiser, withMembers } from "../src/models/denoiser.ts";
import type { Query } from "../src/query/query.ts";
import { estimateContrasts } from "../src/estimators/contrasts.ts";
import type { EstimatorName, EstimatorOptions } from "../src/estimators/options.ts";
import { exampleOracle } from "../src/query/oracles.ts";
import { EXAMPLE_PROMPT } from "../src/models/example.ts";
import { removeWord } from "../src/text/prompt.ts";
import type { ShapesScene } from "../src/datasets/shapes/world.ts";
import { type Bank, bankPrompts, CONTRASTS, loadBanks, NOISES, tabulated } from "./design-bank.ts";
import { median } from "./summary.ts";

type At = LogSnrProposal["at"];

/** Draws of one simulated estimate: timestep, noise, weight and α of each (shared by contrasts). */
interface SimDraws {
  readonly t: Int32Array;
  readonly noise: Int32Array;
  readonly weight: Float64Array;
  readonly logSnr: Float64Array;
}

/** The simulation's context: the model's schedule and the sampling interval. */
interface Context {
  readonly model: OnnxModel;
  readonly sampling: LogSnrSampling;
  readonly edges: number[];
}

/** `n` (even) stratified-antithetic draws from a proposal: n/2 strata, one noise pair each. */
function drawFrom(ctx: Context, at: At, n: number, random: Random): SimDraws {
  const pairs = n / 2;
  const out = {
    t: new Int32Array(n),
    noise: new Int32Array(n),
    weight: new Float64Array(n),
    logSnr: new Float64Array(n),
  };
  const schedule = ctx.model.schedule!;
  for (let k = 0; k < pairs; k++) {
    const { logSnr, weight } = at((k + random.uniform()) / pairs);
    const t = schedule.nearestTimestep(logSnr), pair = 2 * random.int(2);
    for (let j = 0; j < 2; j++) {
      out.t[2 * k + j] = t;
      out.noise[2 * k + j] = pair + j;
      out.weight[2 * k + j] = weight;
      out.logSnr[2 * k + j] = schedule.logSnr[t];
    }
  }
  return out;
}

/** Each draw's value (weight × integrand) of bank contrast c. */
function values(bank: Bank, c: number, d: SimDraws): Float64Array {
  return d.weight.map((w, i) => w * bank.g[(d.t[i] * NOISES + d.noise[i]) * CONTRASTS + c]);
}

function mean(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i];
  return s / v.length;
}

function variance(v: readonly number[]): number {
  const m = mean(v);
  return v.reduce((s, x) => s + (x - m) ** 2, 0) / (v.length - 1);
}

/** The variance of one i.i.d. logistic draw of contrast c (200,000 draws). */
function iidVariance(ctx: Context, bank: Bank, c: number, logistic: At): number {
  const random = new Random(7), schedule = ctx.model.schedule!;
  const draws: number[] = [];
  for (let i = 0; i < 200_000; i++) {
    const { logSnr, weight } = logistic(random.uniform());
    const t = schedule.nearestTimestep(logSnr);
    draws.push(weight * bank.g[(t * NOISES + random.int(NOISES)) * CONTRASTS + c]);
  }
  return variance(draws);
}

/** The contrasts' draws as the fit reads them (words as the query files them). */
function fitInput(bank: Bank, contrasts: readonly number[], d: SimDraws): ContrastDraws[] {
  return contrasts.map((c) => {
    const perDraw = values(bank, c, d);
    const se = standardError(perDraw, 2, true);
    return {
      logSnr: d.logSnr,
      weight: d.weight,
      perDraw,
      estimate: { nats: mean(perDraw), se },
      removed: c === 2 ? undefined : [bank.words[c]],
    };
  });
}

/** The plan of a query over some of a bank's contrasts (shared draws). */
function bankPlan(bank: Bank, contrasts: readonly number[]) {
  return {
    prompts: [bank.prompts[0], ...contrasts.map((c) => bankPrompts(bank, c)[1])],
    contrasts: contrasts.map((_, i) => ({ with: 0, without: i + 1 })),
  };
}

/** The proposal a fitted profile gives a query over `contrasts`, at share λ. */
function queryProposal(
  ctx: Context,
  bank: Bank,
  contrasts: readonly number[],
  profile: LogSnrProfile,
  lambda: number,
): At {
  const chosen = planProposal({ kind: "fitted", lambda, profile }, bankPlan(bank, contrasts));
  return fittedProposal(ctx.sampling, (chosen as { profile: LogSnrProfile }).profile, lambda).at;
}

/**
 * How a study's rows adapt from its profile: the pilot's discount, and its draws (default: a query's
 * pilot, half the draws up to 50).
 */
interface RowAdapt {
  readonly discount: number;
  readonly pilot?: number;
}

function rowAdaptLabel({ discount, pilot }: RowAdapt): string {
  return `discount ${discount}${pilot ? `, pilot ${pilot}` : ""}`;
}

/** Variance ratio of the stratified-antithetic design from a fixed proposal, per contrast. */
function fixedRatio(
  ctx: Context,
  bank: Bank,
  c: number,
  at: At,
  samples: number,
  replicates: number,
  base: number,
): number {
  const random = new Random(3), estimates: number[] = [];
  for (let r = 0; r < replicates; r++) {
    estimates.push(mean(values(bank, c, drawFrom(ctx, at, samples, random))));
  }
  return variance(estimates) / (base / samples);
}

interface Row {
  readonly experiment: string;
  readonly scheme: string;
  readonly contrast: string;
  readonly ratio: number;
}

/**
 * A row against exact values: bias in SE, interval coverage, and (the oracle's) the share of the
 * misses whose interval lies below the truth.
 */
interface OracleRow extends Row {
  readonly biasSe: number;
  readonly coverage: number;
  readonly under?: number;
}

function priorsExperiment(
  ctx: Context,
  banks: readonly Bank[],
  bases: number[][],
  samples: number,
  replicates: number,
): Row[] {
  const schedule = scheduleProfile(ctx.model, ctx.model.schedule!);
  const schemes: [string, At][] = [
    ["logistic", tabulated(logisticProposal(ctx.sampling))],
    ["schedule, λ = 0.1", tabulated(fittedProposal(ctx.sampling, schedule, 0.1))],
    ["schedule, λ = 0.5", tabulated(fittedProposal(ctx.sampling, schedule, 0.5))],
    ["schedule alone (λ = 0.001)", tabulated(fittedProposal(ctx.sampling, schedule, 0.001))],
  ];
  const rows: Row[] = [];
  banks.forEach((bank, b) => {
    for (let c = 0; c < CONTRASTS; c++) {
      for (const [scheme, at] of schemes) {
        rows.push({
          experiment: "priors",
          scheme,
          contrast: `${bank.caption} − ${bank.words[c]}`,
          ratio: fixedRatio(ctx, bank, c, at, samples, replicates, bases[b][c]),
        });
      }
    }
  });
  return rows;
}

/**
 * One adaptive estimate's draw sets over `contrasts` of one bank, `rounds` draws in order: the
 * first from the prior, each later one from the profile fitted on every draw before it (the prior
 * again if no contrast is informative), mixed with the logistic at share `lambda`.
 */
function adaptiveDraws(
  ctx: Context,
  bank: Bank,
  contrasts: readonly number[],
  prior: At,
  rounds: readonly number[],
  lambda: number,
  random: Random,
): SimDraws[] {
  const sets: SimDraws[] = [];
  for (const n of rounds) {
    const profile = sets.length === 0
      ? undefined
      : fitProfile(ctx.model, ctx.edges, fitInput(bank, contrasts, joined(sets)), {});
    const at = profile ? queryProposal(ctx, bank, contrasts, profile, lambda) : prior;
    sets.push(drawFrom(ctx, at, n, random));
  }
  return sets;
}

/**
 * A query over `contrasts` of one bank whose rounds draw `rounds` draws ({@link adaptiveDraws}),
 * `replicates` times; each round but the last weighs `pilotDiscount` times its share of the draws,
 * the last the rest (absent: by draws).
 */
function adaptiveEstimates(
  ctx: Context,
  bank: Bank,
  contrasts: readonly number[],
  prior: At,
  rounds: readonly number[],
  lambda: number,
  replicates: number,
  pilotDiscount?: number,
): number[][] {
  const random = new Random(11);
  const estimates = contrasts.map(() => [] as number[]);
  for (let r = 0; r < replicates; r++) {
    const sets = adaptiveDraws(ctx, bank, contrasts, prior, rounds, lambda, random);
    contrasts.forEach((c, i) => estimates[i].push(rowEstimate(bank, c, sets, pilotDiscount)));
  }
  return estimates;
}

function adaptiveExperiment(
  ctx: Context,
  banks: readonly Bank[],
  bases: number[][],
  replicates: number,
  budgets: readonly number[],
  shares: readonly number[],
  lambdas: readonly number[],
  pilotDiscounts: readonly number[] = [],
): Row[] {
  const rows: Row[] = [];
  const queries: [string, number[]][] = [["perToken", [0, 1, 2]], ["about colour", [0]], [
    "about shape",
    [1],
  ]];
  for (const [priorName, prior] of priorProposals(ctx)) {
    for (const N of budgets) {
      banks.forEach((bank, b) => {
        for (const [query, contrasts] of queries) {
          contrasts.forEach((c) =>
            rows.push({
              experiment: `adaptive ${query}`,
              scheme: `N = ${N}, ${priorName} only`,
              contrast: `${bank.caption} − ${bank.words[c]}`,
              ratio: fixedRatio(ctx, bank, c, prior, N, replicates, bases[b][c]),
            })
          );
          // the shares asked for, and the library's own split at its own share ("as shipped")
          const shipped = adaptiveRounds(
            resolveOptions(ctx.model, { samples: N, proposal: undefined }),
            2,
          );
          // each: the rounds' draws, the refit shares to try, a tag for the shipped split
          type Split = [number[], readonly number[], string];
          const splits: Split[] = [
            ...shares.map((share): Split => {
              const pilot = Math.max(6, 2 * Math.round((share * N) / 2));
              return [[pilot, N - pilot], lambdas, ""];
            }),
            ...(shipped === undefined
              ? []
              : [[shipped, [SELF_FIT_SHARE], " (as shipped)"] as Split]),
          ];
          for (const [rounds, lambdaList, tag] of splits) {
            if (rounds[rounds.length - 1] < 2) continue;
            const pilot = rounds.slice(0, -1).join(" + ");
            for (const lambda of lambdaList) {
              // the rounds by their draws, then the pilot discounted as asked
              for (const discount of [undefined, ...pilotDiscounts]) {
                const est = adaptiveEstimates(
                  ctx,
                  bank,
                  contrasts,
                  prior,
                  rounds,
                  lambda,
                  replicates,
                  discount,
                );
                const weighted = discount === undefined ? "" : `, pilot discount ${discount}`;
                contrasts.forEach((c, i) =>
                  rows.push({
                    experiment: `adaptive ${query}`,
                    scheme: `N = ${N}, ${priorName} pilot ${pilot}, λ = ${lambda}${tag}${weighted}`,
                    contrast: `${bank.caption} − ${bank.words[c]}`,
                    ratio: variance(est[i]) / (bases[b][c] / N),
                  })
                );
              }
            }
          }
        }
      });
    }
  }
  return rows;
}

/** The priors compared: the logistic and SD's schedule in the defensive mixture (λ = 0.1). */
function priorProposals(ctx: Context): [string, At][] {
  const schedule = scheduleProfile(ctx.model, ctx.model.schedule!);
  return [
    ["logistic", tabulated(logisticProposal(ctx.sampling))],
    ["schedule", tabulated(fittedProposal(ctx.sampling, schedule, DEFENSIVE_SHARE))],
  ];
}

/** How a calibration row draws: its draw sets (one per round), given the bank contrast. */
interface RowScheme {
  readonly name: string;
  draw(bank: Bank, c: number, random: Random): SimDraws[];
  /**
   * each set but the last weighs this times its share of the draws, the last the rest (absent:
   * each set weighs by its draws), as the engine weighs a split budget's rounds
   */
  readonly pilotDiscount?: number;
}

/** Draw sets joined into one, as the engine reports a multi-round estimate's draws. */
function joined(sets: readonly SimDraws[]): SimDraws {
  const cat = <T extends Int32Array | Float64Array>(
    pick: (d: SimDraws) => T,
    make: (n: number) => T,
  ) => {
    const out = make(sets.reduce((n, d) => n + pick(d).length, 0));
    let at = 0;
    for (const d of sets) {
      out.set(pick(d), at);
      at += pick(d).length;
    }
    return out;
  };
  return {
    t: cat((d) => d.t, (n) => new Int32Array(n)),
    noise: cat((d) => d.noise, (n) => new Int32Array(n)),
    weight: cat((d) => d.weight, (n) => new Float64Array(n)),
    logSnr: cat((d) => d.logSnr, (n) => new Float64Array(n)),
  };
}

/** A row's estimate from its rounds, by their draws or with its pilot rounds discounted. */
function rowEstimate(
  bank: Bank,
  c: number,
  sets: readonly SimDraws[],
  pilotDiscount?: number,
): number {
  if (pilotDiscount !== undefined && sets.length >= 2) {
    const weights = discountedWeights(sets.map((d) => d.t.length), pilotDiscount);
    return sets.reduce((sum, d, k) => sum + weights[k] * mean(values(bank, c, d)), 0);
  }
  const N = sets.reduce((n, d) => n + d.t.length, 0);
  return sets.reduce((sum, d) => sum + d.t.length * mean(values(bank, c, d)), 0) / N;
}

/**
 * Leave one scene out: each held-out scene's word contrasts drawn from a profile fitted on K
 * calibration rows (word contrasts of the other scenes, in study order), over `fits` calibrations,
 * for several ways the calibration rows draw: as shipped (each row adaptive from SD's schedule,
 * a pilot of a quarter), the schedule or the logistic alone, and calibrate's half-uniform design.
 * Each calibration row's own estimate is kept: its variance ratio is reported too.
 */
function studyExperiment(
  ctx: Context,
  banks: readonly Bank[],
  bases: number[][],
  samples: number,
  replicates: number,
  counts: readonly number[],
  fits: number,
  variants: readonly { shrink: number; lambda: number }[] = [{
    shrink: 1,
    lambda: DEFENSIVE_SHARE,
  }],
  rowAdapts: readonly RowAdapt[] = [],
  schemeIndices?: readonly number[],
): Row[] {
  const rows: Row[] = [];
  const [[, logistic], [, schedule]] = priorProposals(ctx);
  const halfUniform = tabulated(
    fittedProposal(ctx.sampling, {
      kind: "infodiff.logSnrProfile",
      version: 1,
      model: { name: ctx.model.name, shape: [...ctx.model.shape] },
      edges: ctx.edges,
      mass: new Array(ctx.edges.length - 1).fill(1 / (ctx.edges.length - 1)),
      calibration: {},
    }, 0.5),
  );
  const fixed = (name: string, at: At): RowScheme => ({
    name,
    draw: (_bank, _c, random) => [drawFrom(ctx, at, samples, random)],
  });
  const pilot = 2 * Math.round((0.25 * samples) / 2);
  // a row adapting from the study's profile spends a query's pilot on it (half its draws, at
  // most 50)
  const rowPilot = pilotDraws(samples);
  // a query's rounds at this budget, as the engine splits it (a pilot of 40 % or more split too)
  const queryRounds = adaptiveRounds(resolveOptions(ctx.model, { samples }), 2) ??
    [rowPilot, samples - rowPilot];
  // a calibration row adapting within itself: its first round from the schedule, each later one
  // from a refit at share λ on the rounds before; its pilot rounds discounted, or by their draws
  const adaptingRow = (
    name: string,
    rounds: readonly number[],
    lambda: number,
    pilotDiscount?: number,
  ): RowScheme => ({
    name,
    draw: (bank, c, random) => adaptiveDraws(ctx, bank, [c], schedule, rounds, lambda, random),
    ...(pilotDiscount === undefined ? {} : { pilotDiscount }),
  });
  const schemes: RowScheme[] = [
    adaptingRow(
      `schedule, adapting in each row (pilot ${pilot})`,
      [pilot, samples - pilot],
      DEFENSIVE_SHARE,
    ),
    adaptingRow(
      `schedule, adapting in each row as a query does (rounds ${
        queryRounds.join(" + ")
      }, discount ${ADAPT_PILOT_DISCOUNT})`,
      queryRounds,
      SELF_FIT_SHARE,
      ADAPT_PILOT_DISCOUNT,
    ),
    fixed("schedule alone (as shipped)", schedule),
    fixed("logistic alone", logistic),
    fixed("half uniform (calibrate's)", halfUniform),
  ];
  // every (scene, word) row in study order: scene by scene, colour then shape
  const allRows = banks.flatMap((_, b) => [0, 1].map((c) => ({ b, c })));
  for (const scheme of schemes.filter((_, i) => !schemeIndices || schemeIndices.includes(i))) {
    // the fit's settings: the model's profile counted as `shrink` contrasts in each word's, and
    // the logistic's share λ; the defaults first, the others only for the default calibration
    const settings = schemes.indexOf(scheme) <= 2 ? variants : variants.slice(0, 1);
    for (const K of counts) {
      for (const { shrink, lambda } of settings) {
        banks.forEach((bank, held) => {
          const calibrationRows = allRows.filter((row) => row.b !== held).slice(0, K);
          const random = new Random(100 + held);
          const ratios = [[], []] as number[][];
          const adapting = rowAdapts.map(() => [[], []] as number[][]);
          for (let f = 0; f < fits; f++) {
            const observed = calibrationRows.flatMap(({ b, c }) =>
              fitInput(banks[b], [c], joined(scheme.draw(banks[b], c, random)))
            );
            const profile = fitProfile(ctx.model, ctx.edges, observed, {}, { shrink });
            for (const c of [0, 1]) {
              const at = profile ? queryProposal(ctx, bank, [c], profile, lambda) : schedule;
              ratios[c].push(fixedRatio(ctx, bank, c, at, samples, replicates, bases[held][c]));
              // each row adapting from the study's profile: half its draws from it, the rest
              // from a refit on them
              rowAdapts.forEach(({ discount, pilot: first = rowPilot }, i) => {
                const [est] = adaptiveEstimates(
                  ctx,
                  bank,
                  [c],
                  at,
                  [first, samples - first],
                  PROFILE_REFIT_SHARE,
                  replicates,
                  discount,
                );
                adapting[i][c].push(variance(est) / (bases[held][c] / samples));
              });
            }
          }
          const fit = shrink === 1 && lambda === SELF_FIT_SHARE
            ? ""
            : ` (shrink ${shrink}, λ = ${lambda})`;
          for (const c of [0, 1]) {
            rows.push({
              experiment: "study",
              scheme: `rows after ${K} calibration rows, ${scheme.name}${fit}`,
              contrast: `${bank.caption} − ${bank.words[c]}`,
              ratio: mean(ratios[c]),
            });
            rowAdapts.forEach((adapt, i) =>
              rows.push({
                experiment: "study",
                scheme:
                  `rows after ${K} calibration rows, ${scheme.name}${fit}, each adapting from it (${
                    rowAdaptLabel(adapt)
                  })`,
                contrast: `${bank.caption} − ${bank.words[c]}`,
                ratio: mean(adapting[i][c]),
              })
            );
          }
        });
      }
    }
    banks.forEach((bank, b) => {
      for (const c of [0, 1]) {
        const random = new Random(7 + b), estimates: number[] = [];
        for (let r = 0; r < replicates; r++) {
          estimates.push(rowEstimate(bank, c, scheme.draw(bank, c, random), scheme.pilotDiscount));
        }
        rows.push({
          experiment: "study",
          scheme: `calibration rows' own estimates, ${scheme.name}`,
          contrast: `${bank.caption} − ${bank.words[c]}`,
          ratio: variance(estimates) / (bases[b][c] / samples),
        });
      }
    });
  }
  return rows;
}

/** The example oracle's total and three words on shared draws at `x`, with exact values. */
function exampleCase(model: ReturnType<typeof exampleOracle>, x: Float32Array) {
  const pairs = [
    [EXAMPLE_PROMPT, ""],
    ...["red", "circle", "left"].map((w) => [EXAMPLE_PROMPT, removeWord(EXAMPLE_PROMPT, w)]),
  ];
  const prompts = [...new Set(pairs.flat())];
  return {
    names: ["total", "red", "circle", "left"],
    plan: {
      prompts,
      contrasts: pairs.map(([a, b]) => ({
        with: prompts.indexOf(a),
        without: prompts.indexOf(b),
      })),
    },
    exact: pairs.map(([a, b]) => model.logDensity(x, a) - model.logDensity(x, b)),
  };
}

/**
 * The exact oracle (real runs of the engine, standard estimator, α ∈ [−9, 11]): a perToken-like
 * query of the example image as shipped (adaptive, from the logistic), its prior alone, and a
 * study's rows after calibrating on `calibrationRows` other images of the prompt (their draws
 * fitted with `fitProfile`, `fits` calibrations), each against i.i.d. at equal draws, with bias
 * (in SE of the mean over seeds) and interval coverage. Counting calibration: a study of `rows`
 * rows pays its calibration rows at the prior's variance.
 */
async function oracleExperiment(
  seeds: number,
  samples: number,
  calibrationRows: number,
  fits: number,
  estimator: EstimatorName = "standard",
) {
  const model = exampleOracle();
  const x = model.sample(EXAMPLE_PROMPT, { seed: 1 });
  const { names, plan, exact } = exampleCase(model, x);
  const base = { samples, estimator, logSnr: { loc: 1, scale: 2, clip: 5 } } as const;
  const runSeeds = async (options: EstimatorOptions, first = 0) => {
    const values = names.map(() => [] as number[]), covered = names.map(() => 0);
    const under = names.map(() => 0); // misses with the truth above the interval
    for (let seed = first; seed < first + seeds; seed++) {
      const out = await estimateContrasts(
        model,
        x,
        plan,
        resolveOptions(model, { ...options, seed }),
      );
      out.contrasts.forEach((c, k) => {
        values[k].push(c.estimate.nats);
        const { low, high } = c.estimate.interval!;
        if (low <= exact[k] && exact[k] <= high) covered[k]++;
        else if (exact[k] > high) under[k]++;
      });
    }
    return { values, covered, under };
  };
  const iid = await runSeeds({ ...base, design: "iid", proposal: "logistic" });
  const rows: (Row | OracleRow)[] = [];
  const add = (scheme: string, r: Awaited<ReturnType<typeof runSeeds>>) =>
    names.forEach((name, k) => {
      const v = r.values[k];
      rows.push({
        experiment: `oracle (${samples} draws)`,
        scheme,
        contrast: name,
        ratio: variance(v) / variance(iid.values[k]),
        biasSe: (mean(v) - exact[k]) / Math.sqrt(variance(v) / v.length),
        coverage: r.covered[k] / v.length,
        under: r.under[k] / (v.length - r.covered[k]),
      });
    });
  add("prior alone (stratified-antithetic, logistic)", await runSeeds({ ...base, adapt: false }));
  add("as shipped: adaptive query", await runSeeds(base));
  // a study: calibration rows are other images of the prompt, at the study's draws, from the
  // prior alone (as before 2026-12-07) or adapting within each row (as shipped since), and the
  // rows after them from the profile alone (as shipped) or adapting from it (`adapt: true`)
  for (const adapt of [false, true]) {
    for (let f = 0; f < fits; f++) {
      const profile = await oracleStudyProfile(model, plan, base, calibrationRows, f, adapt);
      const how = adapt ? ", each adapting" : "";
      const label = `study: rows after ${calibrationRows} calibration rows (other images)${how}`;
      const from = { ...base, proposal: profile };
      add(label, await runSeeds(from, 10_000 * (f + 1)));
      if (adapt) {
        add(
          `${label}, rows adapting from the profile`,
          await runSeeds({ ...from, adapt }, 20_000 * (f + 1)),
        );
      }
    }
  }
  return rows;
}

/**
 * A study's profile on the exact oracle: fitted as a study fits it from `rows` calibration rows,
 * each another image of the prompt (fit f takes images 50 + f·rows onwards, never the example
 * image), drawn from the prior, adapting within each row or not.
 */
async function oracleStudyProfile(
  model: ReturnType<typeof exampleOracle>,
  plan: ReturnType<typeof exampleCase>["plan"],
  base: EstimatorOptions,
  rows: number,
  fit: number,
  adapt: boolean,
): Promise<LogSnrProfile> {
  const draws: ContrastDraws[] = [];
  for (let r = 0; r < rows; r++) {
    const image = model.sample(EXAMPLE_PROMPT, { seed: 50 + fit * rows + r });
    const options = { ...base, adapt, seed: 1000 + fit * rows + r };
    await estimateContrasts(
      model,
      image,
      plan,
      resolveOptions(model, { ...options, onDraws: (d) => draws.push(...d) }),
    );
  }
  return fitStudyProfile(model, base, draws, benchRecord(model, base, rows))!;
}

/**
 * The exact oracle over many held-out images (`oracle-images`), not at the one example image: per
 * image, the variance over `seeds` seeds of the prior alone, of an adaptive query as shipped and of
 * a study's rows after 12 calibration rows (other images of the prompt, fitted as a study fits, one
 * fit of `fits`), each summed over `images` images (seeds 200 onwards, never calibrated on) and
 * divided by i.i.d.'s sum: the variance of a study's mean over those rows, relative to i.i.d.'s. A
 * study of 100 rows pays its 12 calibration rows at the prior's ratio.
 */
async function oracleImages(
  images: number,
  seeds: number,
  samples: number,
  fits: number,
  pilotDiscounts: readonly number[],
  queriesOnly: boolean,
  rowAdapts: readonly RowAdapt[],
  studyShares: readonly number[],
  calibrationAdapt: boolean,
  firstImage: number,
) {
  const model = exampleOracle();
  const { names, plan } = exampleCase(model, model.sample(EXAMPLE_PROMPT, { seed: 1 }));
  const base = { samples, estimator: "standard", logSnr: { loc: 1, scale: 2, clip: 5 } } as const;
  const variances = async (
    x: Float32Array,
    options: EstimatorOptions,
    on: Denoiser,
    adapt?: ResolvedOptions["adapt"],
  ) => {
    const values = names.map(() => [] as number[]);
    for (let seed = 7000; seed < 7000 + seeds; seed++) {
      const resolved = resolveOptions(on, { ...options, seed });
      const out = await estimateContrasts(on, x, plan, adapt ? { ...resolved, adapt } : resolved);
      out.contrasts.forEach((c, k) => values[k].push(c.estimate.nats));
    }
    return values.map(variance);
  };
  const pictures = Array.from(
    { length: images },
    (_, i) => model.sample(EXAMPLE_PROMPT, { seed: firstImage + i }),
  );
  const summed = async (
    options: EstimatorOptions,
    on: Denoiser = model,
    adapt?: ResolvedOptions["adapt"],
  ) => {
    const sums = names.map(() => 0);
    for (const x of pictures) {
      (await variances(x, options, on, adapt)).forEach((v, k) => sums[k] += v);
    }
    return sums;
  };
  const iid = await summed({ ...base, design: "iid", proposal: "logistic", adapt: false });
  const rows: Row[] = [];
  const experiment = `oracle, ${images} images (${samples} draws)`;
  const add = (scheme: string, ratios: readonly number[]) =>
    names.forEach((contrast, k) => rows.push({ experiment, scheme, contrast, ratio: ratios[k] }));
  const ratios = (sums: readonly number[]) => sums.map((v, k) => v / iid[k]);
  const prior = ratios(await summed({ ...base, adapt: false }));
  add("prior alone (stratified-antithetic, logistic)", prior);
  const query = ratios(await summed(base));
  add("as shipped: adaptive query", query);
  // what a calibration row costs: the prior's variance, or a query's when it adapts within the row
  const calibrationCost = calibrationAdapt ? query : prior;
  const calibrating = calibrationAdapt ? ", calibration rows adapting" : "";
  const split = resolveOptions(model, base).adapt!;
  for (const discount of pilotDiscounts) {
    const adapt = { ...split, pilotDiscount: discount };
    add(`adaptive query, pilot discount ${discount}`, ratios(await summed(base, model, adapt)));
  }
  if (queriesOnly) return rows;
  for (let f = 0; f < fits; f++) {
    const profile = await oracleStudyProfile(model, plan, base, 12, f, calibrationAdapt);
    // each row adapting from the study's profile as a query adapts from the prior (`adapt: true`
    // is discount 0.8 and a query's pilot)
    for (const rowAdapt of rowAdapts) {
      const adapt = {
        ...split,
        pilotDiscount: rowAdapt.discount,
        ...(rowAdapt.pilot ? { pilot: rowAdapt.pilot } : {}),
      };
      const label = `${rowAdaptLabel(rowAdapt)}${calibrating} (fit ${f + 1})`;
      const adapting = ratios(await summed({ ...base, proposal: profile }, model, adapt));
      add(`study rows adapting from the study's profile, ${label}`, adapting);
      add(
        `study of 100 rows adapting, calibration counted, ${label}`,
        adapting.map((r, k) => 0.12 * calibrationCost[k] + 0.88 * r),
      );
    }
    for (const share of studyShares) {
      // the fit's logistic share (λ) as shipped, or another to see what the safety share costs
      const shipped = share === profile.defensiveShare;
      const label = (shipped ? "" : `, λ = ${share}`) + calibrating;
      const proposal = shipped ? profile : { ...profile, defensiveShare: share };
      const after = ratios(await summed({ ...base, proposal }));
      add(`study: rows after 12 calibration rows${label} (fit ${f + 1})`, after);
      add(
        `study of 100 rows, calibration counted${label} (fit ${f + 1})`,
        after.map((r, k) => 0.12 * calibrationCost[k] + 0.88 * r),
      );
    }
  }
  // the manual step a study saves: `infodiff calibrate` on 12 other images of the prompt at its
  // 300 draws (as tools/calibrate_shapes_tiny.ts), the model then carrying the profile; counted,
  // its 3,600 draws are added to a study of 100 rows of `samples` draws
  const calibrated = withMembers(model, {
    logSnrProfile: await calibrateProfile(
      model,
      Array.from({ length: 12 }, (_, r) => ({
        data: model.sample(EXAMPLE_PROMPT, { seed: 50 + r }),
        prompt: EXAMPLE_PROMPT,
      })),
      { samples: CALIBRATE_SAMPLES, logSnr: base.logSnr },
    ),
  });
  const rowsAfter = ratios(await summed({ ...base }, calibrated));
  add(`as calibrated: rows with a profile from 12 images × ${CALIBRATE_SAMPLES} draws`, rowsAfter);
  const extra = (12 * CALIBRATE_SAMPLES) / (100 * samples);
  add(
    "study of 100 rows as calibrated, calibration counted",
    rowsAfter.map((r) => r * (1 + extra)),
  );
  // rows on the calibrated model adapting from its profile as a study's rows adapt from a study's
  // (`adapt: true`: a pilot of half, the refit at PROFILE_REFIT_SHARE); not shipped: a calibrated
  // model's rows and queries draw from its profile alone
  const adapting = ratios(await summed({ ...base, adapt: true }, calibrated));
  add("as calibrated, each row adapting from the model's profile (adapt: true)", adapting);
  add(
    "study of 100 rows as calibrated, adapting, calibration counted",
    adapting.map((r) => r * (1 + extra)),
  );
  return rows;
}

/** The draws per image of `infodiff calibrate` as this project runs it (12 images × 300). */
const CALIBRATE_SAMPLES = 300;

/**
 * What a profile fitted on other images can reach on the exact oracle at all (`oracle-ceiling`):
 * each example contrast's second moment of the integrand along α at the example image (40,000
 * i.i.d. logistic draws in 40 bins), and from it the i.i.d. variance, relative to the logistic's,
 * of drawing α from (a) the image's own best shared profile (√ of its contrasts' normalised second
 * moments, mixed with the logistic at `SELF_FIT_SHARE`, as a study mixes its fit) and (b) a profile
 * fitted with `fitProfile` on 12 other images of the prompt from the prior, at 100 draws per image
 * (a study's calibration rows) and at 2,000 (no fitting noise left); and (c) each contrast from
 * its own best profile on draws of its own, per draw and per call (what one α draw serving every
 * contrast costs). λ = 0 beside the mixed profiles is the bound of any α proposal. The i.i.d.
 * formula ranks the proposals; the stratified-antithetic design lowers every figure alike. Also
 * the share of the logistic's variance that is the integrand's spread over ε within each α bin.
 */
async function oracleCeiling(): Promise<Row[]> {
  const model = exampleOracle();
  const x = model.sample(EXAMPLE_PROMPT, { seed: 1 });
  const { names, plan } = exampleCase(model, x);
  const base = { estimator: "standard", logSnr: { loc: 1, scale: 2, clip: 5 } } as const;
  const options = (extra: EstimatorOptions) => resolveOptions(model, { ...base, ...extra });
  const sampling = options({}).logSnr;
  const bins = 40, edges = profileEdges(sampling, bins), min = edges[0];
  const width = (edges[bins] - min) / bins;
  const binOf = (a: number) => Math.min(bins - 1, Math.max(0, Math.floor((a - min) / width)));
  const out = await estimateContrasts(
    model,
    x,
    plan,
    options({ samples: 40_000, design: "iid", proposal: "logistic", adapt: false, seed: 3 }),
  );
  const m2 = names.map(() => new Float64Array(bins)), counts = new Float64Array(bins);
  const m1 = names.map(() => new Float64Array(bins));
  out.draws.logSnr.forEach((a, i) => {
    const b = binOf(a);
    counts[b]++;
    out.contrasts.forEach((c, k) => {
      const value = c.perDraw[i] / out.draws.weight[i];
      m1[k][b] += value;
      m2[k][b] += value ** 2;
    });
  });
  for (const m of [...m1, ...m2]) m.forEach((v, b) => m[b] = counts[b] > 0 ? v / counts[b] : 0);
  const exact = out.contrasts.map((c) => c.estimate.nats);
  /** a proposal's density per bin, from its quantile function on a fine grid */
  const density = (proposal: LogSnrProposal) => {
    const q = new Float64Array(bins), n = 200_000;
    for (let i = 0; i < n; i++) q[binOf(proposal.at((i + 0.5) / n).logSnr)] += 1 / (n * width);
    return q;
  };
  const iidVariance = (q: Float64Array, k: number) =>
    m2[k].reduce((s, v, b) => s + (v > 0 ? (v / q[b]) * width : 0), 0) - exact[k] ** 2;
  const logistic = density(logisticProposal(sampling));
  const rows: Row[] = [];
  /** contrast k's variance from proposal `qOf(k)` against the logistic's, × calls per draw */
  const add = (scheme: string, qOf: (k: number) => Float64Array, calls = 1) =>
    names.forEach((contrast, k) =>
      rows.push({
        experiment: "oracle ceiling (i.i.d. formula)",
        scheme,
        contrast,
        ratio: (calls * iidVariance(qOf(k), k)) / iidVariance(logistic, k),
      })
    );
  /** a per-bin profile (any scale) as a density, mixed with the logistic at λ */
  const mixed = (profile: readonly number[], lambda: number) => {
    const sum = profile.reduce((s, v) => s + v * width, 0);
    return Float64Array.from(profile, (v, b) => (1 - lambda) * (v / sum) + lambda * logistic[b]);
  };
  const normalised = m2.map((m) => {
    const sum = m.reduce((s, v) => s + v, 0);
    return Array.from(m, (v) => v / sum);
  });
  const own = normalised[0].map((_, b) => Math.sqrt(mean(normalised.map((m) => m[b]))));
  // What one α draw shared by the contrasts costs: each contrast drawing from its own best
  // profile, on draws of its own. Those need the caption's call at each contrast's α, 2 calls a
  // contrast (8) against the shared draws' 1 + 4 (5), so a call's ratio is the variance × 8/5.
  // λ = 0 is the bound of any α proposal: what is left is the integrand's spread over ε.
  const separateCalls = (2 * names.length) / plan.prompts.length;
  // the integrand's spread over ε within each α bin, as a share of the logistic's i.i.d. variance:
  // what the logistic's draws would keep if each bin's α gave its mean exactly
  names.forEach((contrast, k) =>
    rows.push({
      experiment: "oracle ceiling (i.i.d. formula)",
      scheme: "the spread over ε within α bins (share of the logistic's variance)",
      contrast,
      ratio: m2[k].reduce((s, v, b) =>
        s + (v > 0 ? ((v - m1[k][b] ** 2) / logistic[b]) * width : 0), 0) /
        iidVariance(logistic, k),
    })
  );
  for (const lambda of [SELF_FIT_SHARE, 0]) {
    const shared = mixed(own, lambda);
    add(`the image's own shared profile, λ = ${lambda}`, () => shared);
    const separate = normalised.map((m) => mixed(m.map(Math.sqrt), lambda));
    add(`each contrast its own profile and draws, λ = ${lambda}`, (k) => separate[k]);
    add(
      `… per call (× ${separateCalls.toFixed(2)}), λ = ${lambda}`,
      (k) => separate[k],
      separateCalls,
    );
  }
  const pairs = await estimateContrasts(
    model,
    x,
    plan,
    options({ samples: 10 * BOUND_PAIRS, design: "antithetic", adapt: false, seed: 4 }),
  );
  rows.push(...designBound("oracle ceiling (the shipped design's bound)", names, pairs, sampling));
  for (const perImage of [100, 2000]) {
    const draws: ContrastDraws[] = [];
    for (let r = 0; r < 12; r++) {
      const image = model.sample(EXAMPLE_PROMPT, { seed: 50 + r });
      await estimateContrasts(
        model,
        image,
        plan,
        options({
          samples: perImage,
          adapt: false,
          seed: 1000 + r,
          onDraws: (d) => draws.push(...d),
        }),
      );
    }
    const profile = fitProfile(model, profileEdges(sampling, 24), draws, {})!;
    const fitted = planProposal({ kind: "fitted", lambda: SELF_FIT_SHARE, profile }, plan);
    if (fitted.kind !== "fitted") throw new Error("the fit gave no profile");
    const q = density(fittedProposal(sampling, fitted.profile, SELF_FIT_SHARE));
    add(`fitted on 12 other images × ${perImage} draws`, () => q);
  }
  return rows;
}

/** Antithetic pairs per bound (`designBound`): 40 to each of the 50 strata of a 100-draw run. */
const BOUND_PAIRS = 2000;

/**
 * The most any α proposal can do under the shipped design (stratified α, antithetic ε), from one
 * run of `design: "antithetic"` at i.i.d. logistic α (each pair shares α, the second draw −ε).
 * Each contrast's pair mean ḡ = (g(α, ε) + g(α, −ε))/2 of its integrand g = value/weight is
 * binned in `strata` bins of equal logistic mass (a 100-draw run's 50 strata); per bin its spread
 * s_b over ε. With α perfectly stratified, drawing α from q costs ∫ s(α)²/q(α) dα per pair, least
 * at q ∝ s: (∫ s dα)². Relative to the i.i.d. logistic's per-draw variance at equal draws (a pair is
 * two draws): the logistic itself under the design (against the real runs, a check of the
 * formula), that bound per contrast, and one α proposal shared by the contrasts (∝ √ of their
 * normalised s², alone and mixed with the logistic at `SELF_FIT_SHARE`, as fitted profiles are).
 * A bin's s also holds the spread of ḡ's mean within the bin, so the bound errs high (safe).
 */
function designBound(
  experiment: string,
  names: readonly string[],
  out: {
    readonly draws: { readonly logSnr: Float64Array; readonly weight: Float64Array };
    readonly contrasts: readonly { readonly perDraw: Float64Array }[];
  },
  sampling: LogSnrSampling,
  strata = 50,
): Row[] {
  const { logSnr, weight } = out.draws, pairs = logSnr.length / 2;
  for (let j = 0; j < pairs; j++) {
    if (logSnr[2 * j] !== logSnr[2 * j + 1]) {
      throw new Error(`draws ${2 * j}, ${2 * j + 1} are no pair`);
    }
  }
  const edges = Array.from(
    { length: strata + 1 },
    (_, b) => logSnrAtQuantile(b / strata, sampling).logSnr,
  );
  const widths = edges.slice(1).map((e, b) => e - edges[b]);
  const binOf = (a: number) => Math.min(strata - 1, Math.max(0, edges.findIndex((e) => e > a) - 1));
  const bins = Array.from({ length: pairs }, (_, j) => binOf(logSnr[2 * j]));
  /** each contrast's spread over ε per bin, of the pair mean of g (s) and of the pair's value */
  const spreads = out.contrasts.map(({ perDraw }) => {
    const of = (f: (j: number) => number) => {
      const sum = new Float64Array(strata),
        sq = new Float64Array(strata),
        n = new Float64Array(strata);
      for (let j = 0; j < pairs; j++) {
        const v = f(j);
        sum[bins[j]] += v, sq[bins[j]] += v * v, n[bins[j]]++;
      }
      return Array.from(sum, (v, b) => n[b] > 1 ? (sq[b] - (v * v) / n[b]) / (n[b] - 1) : 0);
    };
    return {
      s: of((j) => (perDraw[2 * j] / weight[2 * j] + perDraw[2 * j + 1] / weight[2 * j + 1]) / 2)
        .map(Math.sqrt),
      pairValue: of((j) => (perDraw[2 * j] + perDraw[2 * j + 1]) / 2),
      iid: variance(Array.from(perDraw)),
    };
  });
  const logistic = widths.map((w) => 1 / (strata * w));
  const cost = (s: readonly number[], q: readonly number[]) =>
    s.reduce((sum, v, b) => v > 0 ? sum + (v * v * widths[b]) / q[b] : sum, 0);
  const scale = spreads.map(({ s }) => s.reduce((sum, v, b) => sum + v * widths[b], 0));
  const shared = (lambda: number) => {
    const raw = widths.map((_, b) =>
      Math.sqrt(mean(spreads.map(({ s }, k) => (s[b] / scale[k]) ** 2)))
    );
    const z = raw.reduce((sum, v, b) => sum + v * widths[b], 0);
    return raw.map((v, b) => (1 - lambda) * (v / z) + lambda * logistic[b]);
  };
  const schemes: [string, (k: number) => number][] = [
    ["the logistic under the design (the formula's check)", (k) => mean(spreads[k].pairValue)],
    ["each contrast its own best α proposal (the bound)", (k) => scale[k] ** 2],
    ...[0, SELF_FIT_SHARE].map((lambda): [string, (k: number) => number] => {
      const q = shared(lambda);
      return [
        `one α proposal shared by the contrasts, λ = ${lambda}`,
        (k) => cost(spreads[k].s, q),
      ];
    }),
  ];
  return schemes.flatMap(([scheme, pairVariance]) =>
    names.map((contrast, k) => ({
      experiment,
      scheme,
      contrast,
      ratio: (2 * pairVariance(k)) / spreads[k].iid,
    }))
  );
}

/**
 * The shipped design's bound (`designBound`) on a trained flow model (`flow-ceiling`): perToken
 * contrasts of `scenes` held-out scenes of two objects or more, each in the standard and the
 * orthogonal form, from `BOUND_PAIRS` antithetic pairs at the model's logistic.
 */
function flowCeiling(folder: string, scenes: number): Promise<Row[]> {
  return onFlowScenes(folder, scenes, async (model, dir, multi) => {
    const rows: Row[] = [];
    for (const scene of multi.slice(0, scenes)) {
      // each scene's latent prepared once for both forms
      const x = await model.prepare(join(dir, "images", `${scene.id}.png`));
      const { words, plan } = perTokenPlan(scene.caption);
      const names = ["total", ...words.map((w) => w.word)].map((w) => `${scene.caption} − ${w}`);
      for (const estimator of ["standard", "orthogonal"] as const) {
        const options = resolveOptions(model, {
          samples: 2 * BOUND_PAIRS,
          design: "antithetic",
          proposal: "logistic",
          adapt: false,
          estimator,
          seed: 11,
        });
        const out = await estimateContrasts(model, x, plan, options);
        const experiment = `${folder.split("/").pop()} bound (${estimator})`;
        rows.push(...designBound(experiment, names, out, options.logSnr));
      }
    }
    return rows;
  });
}

/**
 * Runs `experiment` on a trained flow model (`folder`, T5 length 16, no profile) with the shapes
 * world's held-out test scenes of two objects or more (of `4 · scenes`) exported to a temporary
 * folder, and disposes of both after.
 */
async function onFlowScenes(
  folder: string,
  scenes: number,
  experiment: (model: OnnxModel, dir: string, multi: readonly ShapesScene[]) => Promise<Row[]>,
): Promise<Row[]> {
  const { shapesWorld } = await import("../src/datasets/shapes/world.ts");
  const { exportShapesDataset } = await import("../src/datasets/shapes/export.ts");
  const model = await loadModel(folder, { device: "cpu", maxSequenceLength: 16, profile: false });
  const dir = await Deno.makeTempDir({ prefix: "self-calibration-flow-" });
  try {
    const world = shapesWorld({ seed: 3, count: 4 * scenes, split: "test" });
    await exportShapesDataset(world, dir);
    return await experiment(model, dir, world.scenes.filter((s) => s.objects.length >= 2));
  } finally {
    await model.dispose();
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * The exact family fixtures (SDXL, SD 3, FLUX.1; tests/onnx-truth.ts): a perToken query of
 * `truth.main_prompt` (the total and each word, standard estimator, the model's trained range)
 * at the fixture's image, against the closed form K·(‖x − μ_c‖² − ‖x − μ_y‖²): the logistic and
 * the family's prior alone, as shipped (adaptive), and a study's rows after calibrating on 12
 * other latents of the prompt's law N(μ, v·I).
 */
async function familyExperiment(seeds: number, samples: number) {
  const { informationKernel, readFamilyTruth, fixtureDir, squaredDistance } = await import(
    "../tests/onnx-truth.ts"
  );
  const rows: OracleRow[] = [];
  for (const name of ["exact-sdxl", "exact-sd3", "exact-flux"]) {
    const truth = await readFamilyTruth(name);
    const model = await loadModel(fixtureDir(name), { device: "cpu", profile: false });
    try {
      const { min, max } = model.logSnrRange!;
      const k = informationKernel(truth.variance, min, max, (a) => model.snapLogSnr?.(a) ?? a);
      const x = Float32Array.from(truth.image_latent);
      const { plan } = perTokenPlan(truth.main_prompt);
      const mu = (p: string) => truth.prompts[p.trim().split(/\s+/).filter(Boolean).join(" ")].mu;
      const exact = plan.contrasts.map((c) =>
        k * (squaredDistance(x, mu(plan.prompts[c.without])) -
          squaredDistance(x, mu(plan.prompts[c.with])))
      );
      const names = plan.contrasts.map((c) => plan.prompts[c.without] || '""');
      const base = { samples, estimator: "standard" } as const;
      const runSeeds = async (options: EstimatorOptions) => {
        const values = names.map(() => [] as number[]), covered = names.map(() => 0);
        for (let seed = 0; seed < seeds; seed++) {
          const out = await estimateContrasts(
            model,
            x,
            plan,
            resolveOptions(model, { ...options, seed }),
          );
          out.contrasts.forEach((c, i) => {
            values[i].push(c.estimate.nats);
            const { low, high } = c.estimate.interval!;
            if (low <= exact[i] && exact[i] <= high) covered[i]++;
          });
        }
        return { values, covered };
      };
      const iid = await runSeeds({ ...base, design: "iid", proposal: "logistic" });
      const add = (scheme: string, r: Awaited<ReturnType<typeof runSeeds>>) =>
        names.forEach((contrast, i) => {
          const v = r.values[i];
          rows.push({
            experiment: `${name} (${samples} draws)`,
            scheme,
            contrast,
            ratio: variance(v) / variance(iid.values[i]),
            biasSe: (mean(v) - exact[i]) / Math.sqrt(variance(v) / v.length),
            coverage: r.covered[i] / v.length,
          });
        });
      const flow = model.flow !== undefined;
      add(
        "logistic alone (stratified-antithetic)",
        await runSeeds({ ...base, proposal: "logistic" }),
      );
      add(
        flow ? "training-law alone" : `${resolveOptions(model, {}).proposal.kind} alone`,
        await runSeeds(flow ? { ...base, proposal: "training-law" } : { ...base, adapt: false }),
      );
      add(
        flow ? "adapting from the logistic (adapt(true))" : "as shipped: adaptive query",
        await runSeeds({ ...base, adapt: true }),
      );
      // a study's calibration on 12 other latents: its rows from the prior alone (before
      // 2026-12-07) or as a query runs them (as shipped since: adapting where a query would), and
      // the rows after from the profile alone, or adapting from it as shipped where a query adapts
      for (const shipped of [false, true]) {
        const draws: ContrastDraws[] = [];
        const main = mu(truth.main_prompt), random = new Random(5);
        for (let r = 0; r < 12; r++) {
          const other = Float32Array.from(
            main,
            (m) => m + Math.sqrt(truth.variance) * random.gaussian(),
          );
          await estimateContrasts(
            model,
            other,
            plan,
            resolveOptions(model, {
              ...calibrationOptions(base, shipped && calibrationAdapts(model, base)),
              seed: 500 + r,
              onDraws: (d) => draws.push(...d),
            }),
          );
        }
        const profile = fitStudyProfile(model, base, draws, benchRecord(model, base, 12))!;
        const rowsAdapt = shipped && studyRowPilot(model, base) !== undefined;
        add(
          shipped
            ? `as shipped: a study's rows after calibrating on 12 other latents${
              rowsAdapt ? ", adapting from the profile" : ""
            }`
            : "study: rows after calibrating on 12 other latents (from the prior alone)",
          await runSeeds({ ...base, proposal: profile, ...(rowsAdapt ? { adapt: true } : {}) }),
        );
      }
    } finally {
      await model.dispose();
    }
  }
  return rows;
}

/**
 * A trained flow model (`flow-model`; shapes-flow, FLUX.1-schnell's layout, or `--flow-model`):
 * real runs of a perToken query (`estimator`: `--flow-estimator`, standard by default) on
 * held-out test scenes of two or three objects, `seeds` seeds each: the logistic alone (as
 * shipped), the training law alone, adapting from the logistic, and the profile a study fits from
 * 12 calibration rows of other scenes (`studyProfile`), stratified-antithetic, each against i.i.d.
 * logistic draws. No exact value: variances only, to about ±30 % at 40 seeds.
 */
function flowModelExperiment(
  folder: string,
  seeds: number,
  samples: number,
  scenes: number,
  estimator: EstimatorName,
): Promise<Row[]> {
  return onFlowScenes(folder, scenes, async (model, dir, multi) => {
    const rows: Row[] = [];
    const chosen = multi.slice(0, scenes);
    const profile = await studyProfile(
      model,
      multi.slice(scenes, scenes + 12),
      dir,
      samples,
      estimator,
    );
    const schemes: [string, (query: Query) => Query][] = [
      ["iid, logistic", (q) => q.design("iid").proposal("logistic")],
      ["logistic alone (stratified-antithetic; as shipped)", (q) => q.adapt(false)],
      ["training-law alone", (q) => q.proposal("training-law")],
      ["adapting from the logistic (adapt(true))", (q) => q.adapt(true)],
      [
        "study: rows after calibrating on 12 rows of other scenes",
        (q) => q.proposal(profile),
      ],
    ];
    for (const scene of chosen) {
      const image = join(dir, "images", `${scene.id}.png`);
      const values = new Map<string, number[][]>();
      let words: string[] = [];
      for (const [name, scheme] of schemes) {
        const perWord: number[][] = [];
        for (let seed = 0; seed < seeds; seed++) {
          const result = await scheme(
            model.info(image).given(scene.caption).estimator(estimator).samples(samples)
              .seed(seed),
          ).perToken();
          words = result.tokens.map((t) => t.word);
          result.tokens.forEach((t, k) => (perWord[k] ??= []).push(t.estimate.nats));
        }
        values.set(name, perWord);
      }
      const iid = values.get("iid, logistic")!;
      for (const [name] of schemes.slice(1)) {
        values.get(name)!.forEach((v, k) =>
          rows.push({
            experiment: `${folder.split("/").pop()} (real runs, ${samples} draws)`,
            scheme: name,
            contrast: `${scene.caption} − ${words[k]}`,
            ratio: variance(v) / variance(iid[k]),
          })
        );
      }
    }
    return rows;
  });
}

/**
 * The profile a study on a flow model fits from its 12 calibration rows (each a perToken row of
 * `samples` draws from the model's prior, as a study's calibration rows draw), here rows of other
 * held-out scenes than the ones measured: calibration never sees the measured images.
 */
async function studyProfile(
  model: OnnxModel,
  rows: readonly { readonly id: number; readonly caption: string }[],
  dir: string,
  samples: number,
  estimator: EstimatorName,
): Promise<LogSnrProfile> {
  const draws: ContrastDraws[] = [];
  const base = { samples, estimator, adapt: false } as const;
  for (const [r, row] of rows.entries()) {
    const x = await model.prepare(join(dir, "images", `${row.id}.png`));
    await estimateContrasts(
      model,
      x,
      perTokenPlan(row.caption).plan,
      resolveOptions(model, { ...base, seed: 500 + r, onDraws: (d) => draws.push(...d) }),
    );
  }
  const profile = fitStudyProfile(model, base, draws, benchRecord(model, base, rows.length));
  if (!profile) throw new Error("no calibration contrast carried information beyond 2 SE");
  return profile;
}

/** What a bench's study fit records of its calibration rows: their count, and the prior's kind. */
function benchRecord(model: Denoiser, options: EstimatorOptions, rows: number) {
  return {
    rows: Array.from({ length: rows }, (_, r) => `bench row ${r}`),
    prior: resolveOptions(model, options).proposal.kind,
  };
}

/** Median, worst and mean ratio per experiment and scheme. */
export function summarise(rows: readonly Row[]) {
  const keys = [...new Set(rows.map((r) => `${r.experiment}\u0000${r.scheme}`))];
  return keys.map((key) => {
    const [experiment, scheme] = key.split("\u0000");
    const ratios = rows.filter((r) => r.experiment === experiment && r.scheme === scheme)
      .map((r) => r.ratio);
    return {
      experiment,
      scheme,
      contrasts: ratios.length,
      median: median(ratios),
      worst: Math.max(...ratios),
      mean: mean(ratios),
    };
  });
}

/**
 * Runs the experiments on the banks present.
 *
 * @example
 * ```ts ignore
 * import { benchSelfCalibration } from "./self-calibration.ts";
 * console.table((await benchSelfCalibration({ replicates: 500 })).summary);
 * ```
 */
export async function benchSelfCalibration({
  samples = 40,
  replicates = 2000,
  only = ["priors", "adaptive", "study", "oracle"] as readonly string[],
  budgets = [10, 20, 40, 100, 200] as readonly number[],
  shares = [0.25, 0.5] as readonly number[],
  lambdas = [0.1, 0.3] as readonly number[],
  pilotDiscounts = [] as readonly number[],
  rowAdapts = [] as readonly RowAdapt[],
  schemeIndices = undefined as readonly number[] | undefined,
  calibrationAdapt = false,
  counts = [4, 8, 12] as readonly number[],
  fits = 6,
  bankIndices = undefined as readonly number[] | undefined,
  flowModel = "fixtures/models/shapes-flow",
  flowSeeds = 40,
  flowScenes = 2,
  flowEstimator = "standard" as EstimatorName,
  oracleSeeds = 400,
  oracleSamples = 100,
  oracleImageCount = 40,
  oracleImageSeeds = 400,
  oracleFirstImage = 200,
  oracleFits = 3,
  oracleEstimator = "standard" as EstimatorName,
  familySeeds = 60,
  studyShares = [SELF_FIT_SHARE] as readonly number[],
  variants = [{ shrink: 1, lambda: DEFENSIVE_SHARE }] as readonly {
    shrink: number;
    lambda: number;
  }[],
} = {}) {
  const rows: (Row | OracleRow)[] = [];
  if (only.includes("oracle")) {
    rows.push(
      ...await oracleExperiment(oracleSeeds, oracleSamples, 12, oracleFits, oracleEstimator),
    );
  }
  if (only.includes("oracle-ceiling")) rows.push(...await oracleCeiling());
  if (only.includes("oracle-images") || only.includes("oracle-queries")) {
    rows.push(
      ...await oracleImages(
        oracleImageCount,
        oracleImageSeeds,
        oracleSamples,
        3,
        pilotDiscounts,
        !only.includes("oracle-images"),
        rowAdapts,
        studyShares,
        calibrationAdapt,
        oracleFirstImage,
      ),
    );
  }
  if (only.includes("flow-model")) {
    rows.push(
      ...await flowModelExperiment(flowModel, flowSeeds, oracleSamples, flowScenes, flowEstimator),
    );
  }
  if (only.includes("flow-ceiling")) rows.push(...await flowCeiling(flowModel, flowScenes));
  if (only.includes("families")) rows.push(...await familyExperiment(familySeeds, oracleSamples));
  let banks: Bank[] = [];
  if (
    only.some((o) =>
      ![
        "oracle",
        "oracle-ceiling",
        "oracle-images",
        "families",
        "flow-model",
        "flow-ceiling",
      ].includes(o)
    )
  ) {
    const model = await loadModel("fixtures/models/shapes-tiny", {
      device: "cpu",
      profile: false,
    });
    try {
      banks = (await loadBanks(model, { build: false })).filter((_, i) =>
        bankIndices === undefined || bankIndices.includes(i)
      );
      if (banks.length === 0) throw new Error("no banks in out/design-bank");
      const sampling = resolveOptions(model, { proposal: "logistic" }).logSnr;
      const ctx: Context = { model, sampling, edges: profileEdges(sampling, 24) };
      const logistic = tabulated(logisticProposal(sampling));
      const bases = banks.map((bank) =>
        Array.from({ length: CONTRASTS }, (_, c) => iidVariance(ctx, bank, c, logistic))
      );
      if (only.includes("priors")) {
        rows.push(...priorsExperiment(ctx, banks, bases, samples, replicates));
      }
      if (only.includes("adaptive")) {
        rows.push(
          ...adaptiveExperiment(
            ctx,
            banks,
            bases,
            replicates,
            budgets,
            shares,
            lambdas,
            pilotDiscounts,
          ),
        );
      }
      if (only.includes("study")) {
        rows.push(
          ...studyExperiment(
            ctx,
            banks,
            bases,
            samples,
            replicates,
            counts,
            fits,
            variants,
            rowAdapts,
            schemeIndices,
          ),
        );
      }
    } finally {
      await model.dispose();
    }
  }
  return { banks: banks.length, samples, replicates, rows, summary: summarise(rows) };
}

if (import.meta.main) {
  const { values: args } = parseArgs({
    options: {
      samples: { type: "string", default: "40" },
      replicates: { type: "string", default: "2000" },
      only: { type: "string", default: "priors,adaptive,study,oracle" },
      budgets: { type: "string", default: "10,20,40,100,200" },
      shares: { type: "string", default: "0.25,0.5" },
      lambdas: { type: "string", default: "0.1,0.3" },
      // an adaptive query's pilot round weighed at these fractions of its share of the draws
      "pilot-discounts": { type: "string", default: "" },
      // a study's rows each adapting from the study's profile: discount[:pilot draws], …
      "row-adapt": { type: "string", default: "" },
      // with study: only these calibration schemes (their indices, e.g. 1,2)
      schemes: { type: "string" },
      // with oracle-images: the study's calibration rows adapting within the row, as a query
      "calibration-adapt": { type: "boolean", default: false },
      counts: { type: "string", default: "4,8,12" },
      fits: { type: "string", default: "6" },
      "oracle-seeds": { type: "string", default: "400" },
      "oracle-samples": { type: "string", default: "100" },
      "oracle-images": { type: "string", default: "40" },
      "oracle-image-seeds": { type: "string", default: "400" },
      // the first held-out image's seed (200: the images settings were chosen on; 300: others)
      "oracle-first-image": { type: "string", default: "200" },
      // with oracle: the study's calibrations (each its own 12 other images)
      "oracle-fits": { type: "string", default: "3" },
      // with oracle: the estimator's form (standard: its exact values are the log-density
      // differences, so bias and coverage mean something; orthogonal: variances only)
      "oracle-estimator": { type: "string", default: "standard" },
      "family-seeds": { type: "string", default: "60" },
      // with oracle-images: the study's fitted profile mixed with the logistic at these shares
      "study-shares": { type: "string", default: String(SELF_FIT_SHARE) },
      // the study's fit settings as shrink:λ pairs, e.g. 1:0.1,3:0.1,1:0.25
      variants: { type: "string", default: "1:0.25" },
      json: { type: "string" },
      // a subset of the banks, e.g. 0,1,2,3 to choose a setting and 4,5,6,7 to confirm it
      banks: { type: "string" },
      "flow-model": { type: "string", default: "fixtures/models/shapes-flow" },
      "flow-seeds": { type: "string", default: "40" },
      "flow-scenes": { type: "string", default: "2" },
      "flow-estimator": { type: "string", default: "standard" },
    },
  });
  const list = (s: string) => s.split(",").map(Number);
  const report = await benchSelfCalibration({
    samples: Number(args.samples),
    replicates: Number(args.replicates),
    only: args.only.split(","),
    budgets: list(args.budgets),
    shares: list(args.shares),
    lambdas: list(args.lambdas),
    pilotDiscounts: args["pilot-discounts"] ? list(args["pilot-discounts"]) : [],
    rowAdapts: args["row-adapt"]
      ? args["row-adapt"].split(",").map((spec) => {
        const [discount, pilot] = spec.split(":").map(Number);
        return { discount, ...(pilot ? { pilot } : {}) };
      })
      : [],
    counts: list(args.counts),
    schemeIndices: args.schemes === undefined ? undefined : list(args.schemes),
    calibrationAdapt: args["calibration-adapt"],
    fits: Number(args.fits),
    oracleSeeds: Number(args["oracle-seeds"]),
    oracleSamples: Number(args["oracle-samples"]),
    oracleImageCount: Number(args["oracle-images"]),
    oracleImageSeeds: Number(args["oracle-image-seeds"]),
    oracleFirstImage: Number(args["oracle-first-image"]),
    oracleFits: Number(args["oracle-fits"]),
    oracleEstimator: args["oracle-estimator"] as EstimatorName,
    familySeeds: Number(args["family-seeds"]),
    studyShares: list(args["study-shares"]),
    bankIndices: args.banks === undefined ? undefined : list(args.banks),
    flowModel: args["flow-model"],
    flowSeeds: Number(args["flow-seeds"]),
    flowScenes: Number(args["flow-scenes"]),
    flowEstimator: args["flow-estimator"] as EstimatorName,
    variants: args.variants.split(",").map((v) => {
      const [shrink, lambda] = v.split(":").map(Number);
      return { shrink, lambda };
    }),
  });
  if (args.json) await Deno.writeTextFile(args.json, JSON.stringify(report, null, 1));
  console.log(`${report.banks} banks, ${report.samples} draws, ${report.replicates} replicates`);
  console.log(
    "| experiment | scheme | contrasts | median | worst | mean |\n| --- | --- | --- | --- | --- | --- |",
  );
  // two significant digits below 0.1: the exact family fixtures' ratios are that small
  const f = (v: number) => v < 0.1 ? v.toPrecision(2) : v.toFixed(2);
  for (const s of report.summary) {
    console.log(
      `| ${s.experiment} | ${s.scheme} | ${s.contrasts} | ${f(s.median)} | ${f(s.worst)} | ${
        f(s.mean)
      } |`,
    );
  }
  const oracle = report.rows.filter((r): r is OracleRow => "biasSe" in r);
  if (oracle.length > 0) {
    console.log(
      "\n| oracle scheme | contrast | variance / iid | bias (SE) | interval covers | misses below the truth |",
    );
    console.log("| --- | --- | --- | --- | --- | --- |");
    for (const r of oracle) {
      const under = r.under === undefined || Number.isNaN(r.under)
        ? "—"
        : `${(100 * r.under).toFixed(0)} %`;
      console.log(
        `| ${r.scheme} | ${r.contrast} | ${f(r.ratio)} | ${r.biasSe.toFixed(1)} | ${
          (100 * r.coverage).toFixed(1)
        } % | ${under} |`,
      );
    }
  }
}
