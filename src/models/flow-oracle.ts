/**
 * The exact flow oracle: the Gaussian-mixture oracle (src/models/mixture.ts) seen as a
 * rectified-flow model. Its "network" is the mixture's exact velocity `v = E[ε − x | x_t]` in flow
 * coordinates, computed in closed form from the flow path `x_t = (1−t)·x + t·ε` itself (not from
 * the VP posterior), and it reaches the estimators only through the conversion every flow backend
 * runs ({@link flowPredictNoise}). A mistake in that conversion (a wrong time convention, a missing
 * scale, v taken as ε) therefore moves every estimate away from the mixture's exact log-density
 * differences, which the oracle still gives (`logDensity`, `sample`).
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { Condition, ModelIdentity, NoiseBatch } from "./denoiser.ts";
import { withMembers } from "./denoiser.ts";
import {
  type FlowBatch,
  type FlowConvention,
  flowConvention,
  flowLogSnrRange,
  flowPredictNoise,
} from "./flow.ts";
import {
  logSumExp,
  type MixtureComponent,
  type MixtureCondition,
  type MixtureDenoiser,
  mixtureDenoiser,
  type MixtureSpec,
} from "./mixture.ts";

/** Specification of {@link flowOracle}: a mixture, and the flow convention it presents. */
export interface FlowOracleSpec extends MixtureSpec {
  /**
   * the training law, grid and scheduler it claims (default: a scheduler with shift 1, i.e. t ∈
   * [0.001, 0.999], logit-normal(0, 1), so α ∈ ±6.18 for the estimators)
   */
  readonly convention?: FlowConvention;
}

/** The exact mixture as a flow model: a {@link MixtureDenoiser} with `flow` and its velocity. */
export interface FlowOracle extends MixtureDenoiser {
  /** its flow convention */
  readonly flow: FlowConvention;
  /** the exact velocity E[ε − x | x_t] of each item, item-major (what its "network" returns) */
  velocity(batch: FlowBatch<Condition>): Promise<Float32Array>;
}

/**
 * Builds the exact flow oracle of a mixture (see the module). Its `predictNoise` is
 * `flowPredictNoise` over its exact velocity, so it equals the mixture oracle's exact ε̂.
 *
 * @example
 * ```ts
 * import { flowOracle } from "./flow-oracle.ts";
 * import { mixtureDenoiser } from "./mixture.ts";
 * const spec = { shape: [1, 1, 2] as const, components: [
 *   { words: ["red"], mean: [1, -1], variance: 0.2 }, { words: ["blue"], mean: [-1, 1], variance: 0.3 }] };
 * const flow = flowOracle(spec), exact = mixtureDenoiser(spec);
 * const batch = { noisy: new Float32Array([0.3, -0.2]), logSnr: new Float64Array([0.7]),
 *   conditions: [flow.condition("")] };
 * const [a, b] = [await flow.predictNoise(batch), await exact.predictNoise(batch)];
 * console.assert(Math.abs(a[0] - b[0]) < 1e-5 && Math.abs(a[1] - b[1]) < 1e-5);
 * console.assert(flow.flow.tRange[0] > 0 && Math.abs(flow.logSnrRange!.max - 6.180464612335626) < 1e-12);
 * ```
 */
export function flowOracle(spec: FlowOracleSpec): FlowOracle {
  const mixture = mixtureDenoiser({ ...spec, name: spec.name ?? "flow oracle" });
  const convention = spec.convention ?? flowConvention({ shift: 1, useDynamicShifting: false });
  const means = mixture.components.map((c) => Float64Array.from(c.mean));
  const velocity = (batch: FlowBatch<Condition>): Promise<Float32Array> => {
    const size = batch.t.length, d = batch.xt.length / size;
    const out = new Float32Array(batch.xt.length);
    for (let i = 0; i < size; i++) {
      const from = i * d, to = from + d;
      mixtureVelocity(
        mixture.components,
        means,
        batch.conditions[i] as MixtureCondition,
        batch.xt.subarray(from, to),
        batch.t[i],
        out.subarray(from, to),
      );
    }
    return Promise.resolve(out);
  };
  let identity: Promise<ModelIdentity> | undefined;
  return withMembers(mixture, {
    flow: convention,
    // the mixture's hash and the convention it claims: a flow oracle is not its mixture's model
    identity: () =>
      identity ??= mixture.identity!().then((own) => ({
        ...own,
        backend: "flow oracle",
        sha256: createHash("sha256").update(own.sha256).update(JSON.stringify(convention))
          .digest("hex"),
      })),
    logSnrRange: flowLogSnrRange(convention),
    velocity,
    predictNoise: (batch: NoiseBatch) => flowPredictNoise(batch, velocity),
  }, "flow oracle") as FlowOracle;
}

/**
 * The exact velocity of a Gaussian mixture restricted to a condition, in flow coordinates: with
 * component k's path x_t | k ~ N((1−t)·μ_k, τ_k·I), τ_k = (1−t)²·v_k + t², and responsibilities
 * r_k ∝ π_k·N(x_t; (1−t)·μ_k, τ_k·I),
 * `v = Σ_k r_k·[(t − (1−t)·v_k)/τ_k · (x_t − (1−t)·μ_k) − μ_k]`
 * (E[ε | x_t, k] = t/τ_k·(x_t − (1−t)μ_k), E[x | x_t, k] = μ_k + (1−t)v_k/τ_k·(x_t − (1−t)μ_k)).
 *
 * @example
 * ```ts
 * import { mixtureVelocity } from "./flow-oracle.ts";
 * // one standard Gaussian at 0: v = (2t − 1)/((1−t)² + t²)·x_t, zero at t = ½
 * const condition = { prompt: "", knownWords: [], active: Int32Array.of(0), logWeights: Float64Array.of(0) };
 * const v = mixtureVelocity([{ words: [], mean: [0], variance: 1, weight: 1 }], [Float64Array.of(0)],
 *   condition, Float32Array.of(2), 0.75, new Float32Array(1));
 * console.assert(Math.abs(v[0] - 2 * 0.5 / 0.625) < 1e-6);
 * ```
 */
export function mixtureVelocity(
  components: readonly Required<MixtureComponent>[],
  means: readonly Float64Array[],
  condition: MixtureCondition,
  xt: Float32Array,
  t: number,
  out: Float32Array,
): Float32Array {
  const n = condition.active.length, d = xt.length, keep = 1 - t;
  const logR = new Float64Array(n), tau = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const k = condition.active[i], mean = means[k];
    tau[i] = keep * keep * components[k].variance + t * t;
    let sq = 0;
    for (let j = 0; j < d; j++) sq += (xt[j] - keep * mean[j]) ** 2;
    logR[i] = condition.logWeights[i] - 0.5 * d * Math.log(tau[i]) - sq / (2 * tau[i]);
  }
  const norm = logSumExp(logR);
  const sum = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    const r = Math.exp(logR[i] - norm);
    if (r < 1e-300) continue;
    const k = condition.active[i], mean = means[k];
    const slope = (t - keep * components[k].variance) / tau[i];
    for (let j = 0; j < d; j++) sum[j] += r * (slope * (xt[j] - keep * mean[j]) - mean[j]);
  }
  for (let j = 0; j < d; j++) out[j] = sum[j];
  return out;
}
