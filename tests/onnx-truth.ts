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
  const f = (alpha: number) => {
    const s = 1 / (1 + Math.exp(-snap(alpha)));
    return (s * (1 - s)) / (s * v + 1 - s) ** 2;
  };
  const h = (max - min) / steps;
  let sum = f(min) + f(max);
  for (let k = 1; k < steps; k++) sum += (k % 2 ? 4 : 2) * f(min + k * h);
  return 0.5 * (sum * h) / 3;
}
