/**
 * The flow-matching ODE of a rectified-flow model (SD 3/3.5, FLUX.1; `Denoiser.flow`), as
 * diffusers' `FlowMatchEulerDiscreteScheduler` (and `FlowMatchHeunDiscreteScheduler`) steps it:
 * `dx_t/dt = v(x_t, t)`, from noise at the top of the schedule down to data at t = 0, and back up
 * to invert. The velocity comes from the model's ε̂ exactly (`v̂ = (ε̂ − x_t)/(1−t)`, the inverse
 * of the conversion a flow backend's `predictNoise` runs), evaluated on the VP state x_t/s at
 * α = 2·log((1−t)/t); classifier-free guidance on ε̂ is the same guidance on v̂.
 *
 * The levels ({@link flowTimes}) are the pipelines' sigmas: SD3's `set_timesteps(steps)`,
 * `shift(linspace(1, shift(1/N), steps))` (the scheduler's σ_min is already shifted, and is
 * shifted again, as diffusers does), and FLUX's `shift(linspace(1, 1/steps, steps))`
 * (`FlowConvention.lastSigma` "1/steps") with the resolution-dependent shift `e^μ`,
 * `μ = calculate_shift(image_seq_len, …)`. Diffusers' first level
 * is t = 1, pure noise, where α = −∞ and ε̂ says nothing of v; infodiff starts at the top of the
 * model's trained range `t_max` (< 1) instead, from `x = s(t_max)·z` with z ~ N(0, I), as DDIM
 * starts at the top trained timestep; levels above `t_max` start there (merged into one). The last
 * step goes to t = 0 with Euler in both solvers (t = 0 is never evaluated).
 *
 * - "euler" (default, the pipelines'): `x ← x + (t_{k+1} − t_k)·v(x, t_k)`;
 * - "heun": Heun's 2nd-order steps between levels (`FlowMatchHeunDiscreteScheduler`), Euler into
 *   t = 0.
 *
 * Inversion runs the same levels upwards: Euler evaluates `v` at the level it moves to with the
 * current state (diffusers' inverse schedulers' approximation, exact as the steps shrink), which
 * also keeps t = 0 unevaluated; Heun takes that step out of t = 0, then Heun steps upwards. The
 * inverted state is returned in the VP scale (x_{t_max}/s, ≈ N(0, I) like DDIM's x_T), which
 * {@link flowBatch}'s "generate" takes back.
 *
 * @module
 */
import { InvalidArgumentError } from "../errors.ts";
import type { Denoiser } from "../models/denoiser.ts";
import { checkModelData } from "../models/denoiser.ts";
import {
  type FlowConvention,
  flowLogSnr,
  flowScale,
  schedulerShift,
  shiftTime,
  velocityFromNoise,
} from "../models/flow.ts";
import type { ImageInput } from "../models/denoiser.ts";
import { checkSteps, type DdimRequest, initialNoise } from "./ddim.ts";
import { guidedConditions, guidedNoise, scaledCopy } from "./guided-noise.ts";

/** The flow ODE's solvers. */
export const FLOW_SOLVERS: readonly ["euler", "heun"] = Object.freeze(["euler", "heun"] as const);

/** One of {@link FLOW_SOLVERS}. */
export type FlowSolver = typeof FLOW_SOLVERS[number];

/** The SD3 and FLUX.1-dev pipelines' default number of inference steps. */
export const FLOW_STEPS = 28;

/** Options of {@link flowBatch}. */
export interface FlowOdeOptions {
  /** levels of the schedule (default 28, the SD3 and FLUX.1-dev pipelines') */
  readonly steps?: number;
  /** "euler" (default, the pipelines' scheduler) or "heun" */
  readonly solver?: FlowSolver;
  /** classifier-free guidance scale (default 1: none) */
  readonly guidance?: number;
}

/**
 * The flow convention of a model, or a clear refusal for a model that is not a flow model.
 *
 * @example
 * ```ts
 * import { requireFlow } from "./flow-ode.ts";
 * import { flowOracle } from "../models/flow-oracle.ts";
 * const oracle = flowOracle({ shape: [1, 1, 1], components: [{ words: [], mean: [0], variance: 1 }] });
 * console.assert(requireFlow(oracle, "generate").tRange[1] < 1);
 * ```
 */
export function requireFlow(model: Denoiser, what: string): FlowConvention {
  if (!model.flow) {
    throw new InvalidArgumentError(
      `${what}: ${model.name} is not a flow-matching model (it has no flow convention); expected ` +
        `a flow model (SD 3/3.5, FLUX.1), or DDIM / Karras–Heun for this one`,
    );
  }
  return model.flow;
}

/**
 * The times a `steps`-level run visits, noisiest first (see the module): the pipeline's shifted
 * sigmas, those above the trained range's top started at `t_max` and merged.
 *
 * @throws {InvalidArgumentError} a model without `flow`, or `steps` beyond the trained timesteps
 *
 * @example
 * ```ts
 * import { flowTimes } from "./flow-ode.ts";
 * import { flowOracle } from "../models/flow-oracle.ts";
 * import { flowConvention } from "../models/flow.ts";
 * const convention = flowConvention({ shift: 3, useDynamicShifting: false });
 * const oracle = flowOracle({ shape: [1, 1, 1], components: [{ words: [], mean: [0], variance: 1 }], convention });
 * const t = flowTimes(oracle, 28);
 * console.assert(t.length === 28 && t[0] === convention.tRange[1] && t[27] > 0);
 * ```
 */
export function flowTimes(model: Denoiser, steps: number): Float64Array {
  const flow = requireFlow(model, "the flow ODE");
  checkSteps(steps);
  const trained = flow.scheduler.numTrainTimesteps ?? 1000;
  if (steps > trained) {
    throw new InvalidArgumentError(
      `steps = ${steps} exceeds the ${trained} trained timesteps of ${model.name}; expected ` +
        `1…${trained}`,
    );
  }
  const shift = schedulerShift(flow.scheduler, flow.imageSeqLen);
  // the pipelines' unshifted sigmas: FLUX passes linspace(1, 1/steps); SD3 takes the scheduler's
  // linspace(σ_max, σ_min), σ_min = shift(1/N) already shifted (1/N when it shifts by resolution)
  const last = flow.lastSigma === "1/steps"
    ? 1 / steps
    : flow.scheduler.useDynamicShifting
    ? 1 / trained
    : shiftTime(1 / trained, shift);
  const top = flow.tRange[1];
  const times: number[] = [];
  for (let k = 0; k < steps; k++) {
    const base = steps === 1 ? 1 : 1 + (k / (steps - 1)) * (last - 1);
    const t = Math.min(top, shiftTime(base, shift));
    if (times.length === 0 || times[times.length - 1] !== t) times.push(t);
  }
  return Float64Array.from(times);
}

/**
 * Runs several trajectories of the flow ODE together, sharing every model call. `"generate"`
 * maps each VP state at `t_max` (e.g. seeded N(0, I) noise) to data at t = 0; `"invert"` maps each
 * datum to its VP state at `t_max`. Results are in request order.
 *
 * @example
 * ```ts
 * import { flowBatch } from "./flow-ode.ts";
 * import { flowOracle } from "../models/flow-oracle.ts";
 * const oracle = flowOracle({ shape: [1, 1, 2], components: [{ words: ["a"], mean: [1, -1], variance: 0.1 }] });
 * const x = oracle.sample("a", { seed: 1 });
 * const [noise] = await flowBatch(oracle, [{ prompt: "a", start: x }], "invert", { steps: 40, solver: "heun" });
 * const [back] = await flowBatch(oracle, [{ prompt: "a", start: noise }], "generate", { steps: 40, solver: "heun" });
 * console.assert(Math.abs(back[0] - x[0]) < 1e-3 && Math.abs(back[1] - x[1]) < 1e-3);
 * ```
 */
export async function flowBatch(
  model: Denoiser,
  requests: readonly DdimRequest[],
  direction: "generate" | "invert",
  options: FlowOdeOptions = {},
): Promise<Float32Array[]> {
  const solver = checkSolver(options.solver ?? "euler");
  const times = flowTimes(model, options.steps ?? FLOW_STEPS);
  const top = times[0];
  const states = requests.map((r, i) => {
    const start = checkModelData(model.shape, r.start, `request ${i} (${direction})`);
    // generation starts from the VP state at t_max: x = s·z
    return scaledCopy(start, direction === "generate" ? flowScale(top) : 1);
  });
  const { conditions, nullCondition, guidance } = await guidedConditions(
    model,
    requests.map((r) => r.prompt),
    options.guidance,
  );
  const velocity = async (xs: readonly Float32Array[], t: number) => {
    const s = flowScale(t);
    const eps = await guidedNoise(
      model,
      xs.map((x) => scaledCopy(x, 1 / s)),
      flowLogSnr(t),
      conditions,
      nullCondition,
      guidance,
    );
    return xs.map((x, i) => velocityFromNoise(x, eps[i], t));
  };
  // the path of times, ending (generate) or starting (invert) at t = 0
  const path = direction === "generate" ? [...times, 0] : [0, ...times.slice().reverse()];
  for (let k = 0; k + 1 < path.length; k++) {
    const from = path[k], to = path[k + 1], step = to - from;
    if (from === 0 || to === 0 || solver === "euler") {
      // Euler: at the current level going down, at the next one going up (t = 0 never evaluated)
      const v = await velocity(states, direction === "generate" ? from : to);
      states.forEach((x, i) => axpy(x, step, v[i]));
      continue;
    }
    const v0 = await velocity(states, from);
    const predicted = states.map((x, i) => axpy(x.slice(), step, v0[i]));
    const v1 = await velocity(predicted, to);
    states.forEach((x, i) => {
      for (let j = 0; j < x.length; j++) x[j] += 0.5 * step * (v0[i][j] + v1[i][j]);
    });
  }
  return direction === "invert" ? states.map((x) => scaledCopy(x, 1 / flowScale(top))) : states;
}

/**
 * Generates one datum from a prompt with the flow ODE, starting from the seeded VP noise at
 * `t_max` (`initialNoise`, as DDIM's x_T): what `model.generate` runs on a flow model.
 *
 * @example
 * ```ts
 * import { flowGenerate } from "./flow-ode.ts";
 * import { flowOracle } from "../models/flow-oracle.ts";
 * const oracle = flowOracle({ shape: [1, 1, 1], components: [{ words: ["a"], mean: [3], variance: 0.01 }] });
 * const [x] = await flowGenerate(oracle, "a", { seed: 1, solver: "heun" });
 * console.assert(Math.abs(x - 3) < 0.5);
 * ```
 */
export async function flowGenerate(
  model: Denoiser,
  prompt: string,
  options: FlowOdeOptions & { readonly seed?: number } = {},
): Promise<Float32Array> {
  const start = initialNoise(model, options.seed ?? 0);
  const [result] = await flowBatch(model, [{ prompt, start }], "generate", options);
  return result;
}

/**
 * Inverts an image with the flow ODE to its VP state at `t_max`, which {@link flowGenerate}'s ODE
 * (`flowBatch` "generate") maps back: what `model.invert` runs on a flow model.
 *
 * @example
 * ```ts
 * import { flowBatch, flowInvert } from "./flow-ode.ts";
 * import { flowOracle } from "../models/flow-oracle.ts";
 * const oracle = flowOracle({ shape: [1, 1, 1], components: [{ words: ["a"], mean: [3], variance: 0.5 }] });
 * const x = Float32Array.of(2.5);
 * const z = await flowInvert(oracle, x, "a", { steps: 50, solver: "heun" });
 * const [back] = await flowBatch(oracle, [{ prompt: "a", start: z }], "generate", { steps: 50, solver: "heun" });
 * console.assert(Math.abs(back[0] - 2.5) < 1e-3);
 * ```
 */
export async function flowInvert(
  model: Denoiser,
  image: ImageInput,
  prompt: string,
  options: FlowOdeOptions = {},
): Promise<Float32Array> {
  requireFlow(model, "invert");
  const data = await model.prepare(image);
  const [result] = await flowBatch(model, [{ prompt, start: data }], "invert", options);
  return result;
}

/**
 * Checks a solver name.
 *
 * @example
 * ```ts
 * import { checkSolver } from "./flow-ode.ts";
 * console.assert(checkSolver("heun") === "heun");
 * ```
 */
export function checkSolver(name: string): FlowSolver {
  if (!(FLOW_SOLVERS as readonly string[]).includes(name)) {
    throw new InvalidArgumentError(
      `unknown flow solver "${name}"; expected one of ${
        FLOW_SOLVERS.map((s) => `"${s}"`).join(", ")
      }`,
    );
  }
  return name as FlowSolver;
}

/** x ← x + a·y, in place; returns x. */
function axpy(x: Float32Array, a: number, y: Float32Array): Float32Array {
  for (let j = 0; j < x.length; j++) x[j] += a * y[j];
  return x;
}
