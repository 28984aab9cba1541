/**
 * A model family's prior over α, before any calibration (issue 26, part 3): where the family
 * trains, as a proposal. A discrete-time model (SD 1.x/2.x, SDXL) is trained on timesteps drawn
 * uniformly from its schedule, so its training law of α puts mass 1/T on each trained timestep;
 * seen as a profile, the cell of timestep t (between the midpoints to its neighbours' α) holds 1/T.
 * A flow model's training law (SD3's logit-normal t) is `trainingLawProposal` (numerics).
 *
 * @module
 */
import { InvalidArgumentError } from "../errors.ts";
import type { TrainedSchedule } from "../models/denoiser.ts";
import type { LogSnrProfile } from "../numerics/proposal.ts";
import { type ProfileModel, profileOf } from "./profile-fit.ts";

/**
 * The uniform law over a schedule's trained timesteps as a profile: one bin per timestep, from the
 * midpoint to its lower neighbour's α to the midpoint to its upper one's (the first and last a
 * half gap beyond), each of mass 1/T. Draws snapped to the nearest timestep then land on every
 * timestep equally often.
 *
 * @throws {InvalidArgumentError} a schedule of fewer than 2 timesteps or whose α do not decrease
 *
 * @example
 * ```ts
 * import { scheduleProfile } from "./family-prior.ts";
 * const schedule = { logSnr: Float64Array.of(3, 1, 0), length: 3 } as never;
 * const p = scheduleProfile({ name: "m", shape: [1, 1, 1] }, schedule);
 * console.assert(p.edges.join() === "-0.5,0.5,2,4" && p.mass.every((m) => Math.abs(m - 1 / 3) < 1e-12));
 * ```
 */
export function scheduleProfile(
  model: ProfileModel,
  schedule: Pick<TrainedSchedule, "logSnr">,
): LogSnrProfile {
  const alphas = Array.from(schedule.logSnr).reverse(); // increasing
  const T = alphas.length;
  if (T < 2 || alphas.some((a, i) => !Number.isFinite(a) || (i > 0 && a <= alphas[i - 1]))) {
    throw new InvalidArgumentError(
      `a schedule prior needs at least 2 trained timesteps with finite, strictly decreasing ` +
        `log-SNR, got ${T} values`,
    );
  }
  const mid = (i: number) => (alphas[i] + alphas[i + 1]) / 2;
  const edges = [
    alphas[0] - (alphas[1] - alphas[0]) / 2,
    ...Array.from({ length: T - 1 }, (_, i) => mid(i)),
    alphas[T - 1] + (alphas[T - 1] - alphas[T - 2]) / 2,
  ];
  return profileOf(model, edges, new Array(T).fill(1 / T), { prior: "schedule", timesteps: T });
}
