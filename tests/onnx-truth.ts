/**
 * Test helpers for the exact-Gaussian ONNX fixtures (tools/build_onnx_fixtures.py): their truth
 * files and the closed forms of REFERENCE §2.
 */

/** One fixture's truth.json. */
export interface FixtureTruth {
  readonly shape: [number, number, number];
  readonly variance: number;
  readonly image: string;
  readonly image_latent: number[];
  readonly scaling_factor: number | null;
  readonly prediction_type: string;
  readonly pad_id: number;
  readonly bos_id: number;
  readonly eos_id: number;
  readonly prompts: Record<string, { input_ids: number[]; mu: number[] }>;
}

/** Every fixture with an exact truth, and what distinguishes it. */
export const EXACT_FIXTURES = [
  "sd-int32-int64t",
  "sd-floatt-weightspb",
  "sd-scalart-onnxdata",
  "sd-vpred",
  "sd-fp16",
  "pixel-space",
] as const;

/** Folder of a fixture. */
export function fixtureDir(name: string): string {
  return `fixtures/models/${name}`;
}

/** Reads a fixture's truth.json. */
export async function readTruth(name: string): Promise<FixtureTruth> {
  return JSON.parse(await Deno.readTextFile(`${fixtureDir(name)}/truth.json`));
}

/** The prompt's mean μ, failing loudly if the truth file lacks it. */
export function meanOf(truth: FixtureTruth, prompt: string): number[] {
  const entry = truth.prompts[prompt];
  if (!entry) throw new Error(`truth.json has no prompt "${prompt}"`);
  return entry.mu;
}

/** Exact ε̂(z) = sqrt(1−s)(z − sqrt(s)μ)/(s·v + 1 − s) for one item at ᾱ = s. */
export function exactNoise(z: ArrayLike<number>, mu: number[], v: number, s: number): Float64Array {
  const out = new Float64Array(z.length);
  for (let j = 0; j < z.length; j++) {
    out[j] = (Math.sqrt(1 - s) * (z[j] - Math.sqrt(s) * mu[j])) / (s * v + 1 - s);
  }
  return out;
}

/** Squared distance of two vectors. */
export function squaredDistance(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let sum = 0;
  for (let j = 0; j < a.length; j++) sum += (a[j] - b[j]) ** 2;
  return sum;
}

/**
 * K = ½∫ s(1−s)/(s·v + 1 − s)² dα over [min, max] with s = σ(α) (Simpson's rule). With K, both
 * information forms of the Gaussian fixture have closed forms over that α range:
 * orthogonal iᵒ = K·‖μ_with − μ_without‖², standard E_ε i = K·(‖x − μ_without‖² − ‖x − μ_with‖²).
 * Over all of ℝ, K = 1/(2v). `snap` evaluates the integrand at the snapped α (what the model sees).
 */
export function informationKernel(
  v: number,
  min: number,
  max: number,
  snap: (alpha: number) => number = (a) => a,
  steps = 200_000,
): number {
  return halfIntegral(
    (alpha) => {
      const s = 1 / (1 + Math.exp(-snap(alpha)));
      return (s * (1 - s)) / (s * v + 1 - s) ** 2;
    },
    min,
    max,
    steps,
  );
}

/**
 * ½∫ f(α) dα over [min, max] by Simpson's rule (`steps` even). The kernels of the closed forms
 * below are such integrals; `f` reads σ(snap(α)) where the model snaps α.
 */
export function halfIntegral(
  f: (alpha: number) => number,
  min: number,
  max: number,
  steps = 200_000,
): number {
  const h = (max - min) / steps;
  let sum = f(min) + f(max);
  for (let k = 1; k < steps; k++) sum += (k % 2 ? 4 : 2) * f(min + k * h);
  return 0.5 * (sum * h) / 3;
}

/**
 * L = ½∫ [s²v²/(s·v + 1 − s)² − s] dα over [min, max] with s = σ(snap(α)): per dimension, the
 * part of the Gaussian fixture's −log p(x | y) that does not depend on x, so that over that range
 * −log p(x | y) = (d/2)·log(2πe) + d·L + K·‖x − μ_y‖² (K: {@link informationKernel}). Over all of
 * ℝ, L = ½·log v − ½ and the sum is −log N(x; μ_y, v·I).
 */
export function likelihoodKernel(
  v: number,
  min: number,
  max: number,
  snap: (alpha: number) => number = (a) => a,
  steps = 200_000,
): number {
  return halfIntegral(
    (alpha) => {
      const s = 1 / (1 + Math.exp(-snap(alpha)));
      return (s * s * v * v) / (s * v + 1 - s) ** 2 - s;
    },
    min,
    max,
    steps,
  );
}

/** One row of a family fixture's sensitivity table (tools/build_family_fixtures.py). */
export interface SensitivityRow {
  /** the wrong convention's key, e.g. "last-layer" */
  readonly convention: string;
  /** what the backend would do wrong */
  readonly wrong: string;
  /** what is compared: orthogonal information of `prompt` against `against`, −log p(x | prompt),
   * or the orthogonal pixel map of `prompt` against `against` */
  readonly quantity: "orthogonal" | "nll" | "map";
  readonly prompt: string;
  readonly against?: string;
  /** the closed form under the pipeline's convention (a map's total for "map") */
  readonly truth: number;
  /** the closed form the estimators converge to under the wrong convention */
  readonly converges_to: number;
  /** the two pixel maps (quantity "map"), [h·w] row-major */
  readonly truth_map?: number[];
  readonly converges_to_map?: number[];
  /** max |wrong share − true share| / max true share of the two maps */
  readonly map_shape_difference?: number;
}

/** A family fixture's truth.json (exact-sdxl, exact-sd3, exact-flux). */
export interface FamilyTruth {
  readonly family: "sdxl" | "sd3" | "flux";
  readonly shape: [number, number, number];
  readonly variance: number;
  readonly image: string;
  readonly image_latent: number[];
  readonly vae: { readonly scaling_factor: number; readonly shift_factor: number | null };
  /** the trained log-SNR range the sensitivity table was integrated over */
  readonly log_snr_range: { readonly min: number; readonly max: number };
  readonly main_prompt: string;
  readonly pid_words: [string, string];
  /**
   * per prompt: each encoder's input ids (by encoder folder) and μ, flattened C·H·W (SDXL's "": μ
   * of the zero unconditional, and `mu_encoded` of the encoded "")
   */
  readonly prompts: Record<
    string,
    { input_ids: Record<string, number[]>; mu: number[]; mu_encoded?: number[] }
  >;
  readonly sensitivity: readonly SensitivityRow[];
}

/** The exact-Gaussian fixtures of SDXL, SD 3 and FLUX.1 (tools/build_family_fixtures.py). */
export const FAMILY_FIXTURES = ["exact-sdxl", "exact-sd3", "exact-flux"] as const;

/** Reads a family fixture's truth.json. */
export async function readFamilyTruth(name: string): Promise<FamilyTruth> {
  return JSON.parse(await Deno.readTextFile(`${fixtureDir(name)}/truth.json`));
}

/**
 * The orthogonal information's pixel map of the Gaussian fixture: K·Σ_c (μ_y − μ_c)² per pixel
 * (row-major h·w), for means flattened C·H·W.
 */
export function informationMap(
  k: number,
  muY: ArrayLike<number>,
  muC: ArrayLike<number>,
  shape: readonly [number, number, number],
): Float64Array {
  const [c, h, w] = shape, pixels = h * w;
  const map = new Float64Array(pixels);
  for (let channel = 0; channel < c; channel++) {
    for (let p = 0; p < pixels; p++) {
      const j = channel * pixels + p;
      map[p] += k * (muY[j] - muC[j]) ** 2;
    }
  }
  return map;
}
