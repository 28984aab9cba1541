/**
 * Which shard this process runs, from the command line or from the scheduler that started it:
 * Slurm job arrays and Kubernetes Indexed Jobs, as they set their environment.
 *
 * @module
 */
import { InvalidArgumentError } from "../errors.ts";
import type { Shard } from "./results-file.ts";

/** Environment variables, as `Deno.env.toObject()` gives them. */
export type Environment = Readonly<Record<string, string | undefined>>;

/**
 * The shard named by `spec`:
 * - `"i/n"`: shard i of n (0 ≤ i < n);
 * - `"auto"`: from the scheduler: a Slurm job array (`SLURM_ARRAY_TASK_ID` − `SLURM_ARRAY_TASK_MIN`,
 *   divided by `SLURM_ARRAY_TASK_STEP` for arrays such as `0-30:3`, of `SLURM_ARRAY_TASK_COUNT`),
 *   or a Kubernetes Indexed Job (`JOB_COMPLETION_INDEX`, of `count` or `INFODIFF_SHARD_COUNT`,
 *   since Kubernetes does not tell a pod the job's completions); outside both, the one shard 0/1.
 *
 * @throws {InvalidArgumentError} for a malformed spec or environment, saying what was read
 *
 * @example
 * ```ts
 * import { shardFromEnvironment } from "./shard.ts";
 * console.assert(shardFromEnvironment("2/5", {}).index === 2);
 * const slurm = { SLURM_ARRAY_TASK_ID: "13", SLURM_ARRAY_TASK_MIN: "10", SLURM_ARRAY_TASK_COUNT: "8" };
 * console.assert(shardFromEnvironment("auto", slurm).index === 3);
 * const k8s = { JOB_COMPLETION_INDEX: "4", INFODIFF_SHARD_COUNT: "6" };
 * console.assert(shardFromEnvironment("auto", k8s).count === 6);
 * ```
 */
export function shardFromEnvironment(
  spec: string,
  env: Environment,
  count?: number,
): Shard {
  if (spec !== "auto") return parseShard(spec);
  const slurm = env.SLURM_ARRAY_TASK_ID !== undefined;
  const kubernetes = env.JOB_COMPLETION_INDEX !== undefined;
  if (slurm && kubernetes) {
    throw new InvalidArgumentError(
      "both SLURM_ARRAY_TASK_ID and JOB_COMPLETION_INDEX are set; expected one scheduler (pass " +
        "--shard i/n to choose)",
    );
  }
  if (slurm) return slurmShard(env);
  if (kubernetes) return kubernetesShard(env, count);
  if (count !== undefined && count !== 1) {
    throw new InvalidArgumentError(
      `--shard auto with a shard count of ${count}, but neither a Slurm job array ` +
        "(SLURM_ARRAY_TASK_ID) nor a Kubernetes Indexed Job (JOB_COMPLETION_INDEX) started this " +
        "process; expected one of them, or --shard i/n",
    );
  }
  return { index: 0, count: 1 };
}

/**
 * Parses `"i/n"`.
 *
 * @example
 * ```ts
 * import { parseShard } from "./shard.ts";
 * console.assert(parseShard("0/1").count === 1);
 * ```
 */
export function parseShard(spec: string): Shard {
  const match = /^(\d+)\/(\d+)$/.exec(spec.trim());
  if (!match) {
    throw new InvalidArgumentError(`a shard is "i/n" (e.g. 0/4) or "auto", got "${spec}"`);
  }
  return checkShard({ index: Number(match[1]), count: Number(match[2]) }, `shard "${spec}"`);
}

function slurmShard(env: Environment): Shard {
  const id = integer(env, "SLURM_ARRAY_TASK_ID");
  const min = env.SLURM_ARRAY_TASK_MIN === undefined ? 0 : integer(env, "SLURM_ARRAY_TASK_MIN");
  const step = env.SLURM_ARRAY_TASK_STEP === undefined ? 1 : integer(env, "SLURM_ARRAY_TASK_STEP");
  if (env.SLURM_ARRAY_TASK_COUNT === undefined) {
    throw new InvalidArgumentError(
      "SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not; expected a Slurm job array " +
        "(sbatch --array)",
    );
  }
  const count = integer(env, "SLURM_ARRAY_TASK_COUNT");
  if (step < 1 || (id - min) % step !== 0) {
    throw new InvalidArgumentError(
      `SLURM_ARRAY_TASK_ID ${id} is not MIN ${min} plus a multiple of STEP ${step}; expected an ` +
        "array such as --array=0-15 or 0-30:2",
    );
  }
  return checkShard({ index: (id - min) / step, count }, "the Slurm job array");
}

function kubernetesShard(env: Environment, count?: number): Shard {
  const index = integer(env, "JOB_COMPLETION_INDEX");
  const total = count ??
    (env.INFODIFF_SHARD_COUNT === undefined ? undefined : integer(env, "INFODIFF_SHARD_COUNT"));
  if (total === undefined) {
    throw new InvalidArgumentError(
      "JOB_COMPLETION_INDEX is set (a Kubernetes Indexed Job) but not how many shards there " +
        "are; pass --shard-count N or set INFODIFF_SHARD_COUNT to the job's completions",
    );
  }
  return checkShard({ index, count: total }, "the Kubernetes Indexed Job");
}

function integer(env: Environment, name: string): number {
  const text = env[name] ?? "";
  if (!/^-?\d+$/.test(text.trim())) {
    throw new InvalidArgumentError(`${name} is "${text}"; expected an integer`);
  }
  return Number(text);
}

/**
 * Checks a shard: integers with 0 ≤ index < count; `from` says where it came from.
 *
 * @throws {InvalidArgumentError} otherwise
 *
 * @example
 * ```ts
 * import { checkShard } from "./shard.ts";
 * console.assert(checkShard({ index: 1, count: 2 }).index === 1);
 * ```
 */
export function checkShard(shard: Shard, from = "the shard option"): Shard {
  const { index, count } = shard;
  if (!Number.isInteger(index) || !Number.isInteger(count) || index < 0 || index >= count) {
    throw new InvalidArgumentError(
      `${from} gives shard ${index} of ${count}; expected integers 0 ≤ index < count`,
    );
  }
  return shard;
}
