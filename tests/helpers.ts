/** Small mixtures with known answers, shared by the estimator tests. */
import assert from "node:assert/strict";
import { mixtureModel } from "../src/query/oracles.ts";
import type { MixtureModel } from "../src/query/oracles.ts";
import type { LoadModelOptions } from "../src/models/onnx/load-model.ts";
import { loadModel, type OnnxModel } from "../src/query/load-model.ts";

/** A wide log-SNR range: the truncated tails contribute < 0.01 nats for these mixtures. */
export const WIDE = { loc: 1, scale: 2, clip: 5 } as const;
/** Stated allowance for the truncation of the log-SNR range to [−9, 11] (see WIDE). */
export const TRUNCATION_ALLOWANCE = 0.01;

/** Three overlapping components in 4 dimensions carrying colour and shape words. */
export function colourShapeMixture(): MixtureModel {
  return mixtureModel({
    shape: [1, 2, 2],
    components: [
      { words: ["red", "circle"], mean: [1, 0.5, 0, 0], variance: 0.3 },
      { words: ["blue", "circle"], mean: [0, 0, 1, 0.5], variance: 0.3 },
      { words: ["red", "square"], mean: [0.5, 1, 0, 0.5], variance: 0.2, weight: 2 },
    ],
  });
}

/** Two words, one component each, overlapping: I(X;Y) strictly between 0 and log 2. */
export function twoWordMixture(): MixtureModel {
  return mixtureModel({
    shape: [2, 1, 2],
    components: [
      { words: ["red"], mean: [0.6, 0, 0.3, 0], variance: 0.25 },
      { words: ["blue"], mean: [0, 0.6, 0, 0.3], variance: 0.25 },
    ],
  });
}

/** Asserts |estimate − truth| ≤ k·se + allowance, with a message that shows the numbers. */
export function assertWithin(
  estimate: { nats: number; se: number },
  truth: number,
  k = 3,
  allowance = TRUNCATION_ALLOWANCE,
): void {
  const gap = Math.abs(estimate.nats - truth);
  if (!(gap <= k * estimate.se + allowance)) {
    throw new Error(
      `estimate ${estimate.nats.toFixed(4)} ± ${estimate.se.toFixed(4)} is ${
        (gap / estimate.se).toFixed(2)
      } SE from the truth ${truth.toFixed(4)} (allowed ${k} SE + ${allowance})`,
    );
  }
}

/** A Python package a test runs, and how to install it. */
export interface PythonPackage {
  /** the module the test imports, e.g. "numpy" */
  readonly module: string;
  /** Debian's package, e.g. "python3-numpy" */
  readonly debian: string;
  /** PyPI's name, e.g. "numpy" */
  readonly pip: string;
}

/** NumPy, to read back .npy files. */
export const NUMPY: PythonPackage = { module: "numpy", debian: "python3-numpy", pip: "numpy" };
/** PyYAML, to parse the Kubernetes example as kubectl's YAML reader would. */
export const PYYAML: PythonPackage = { module: "yaml", debian: "python3-yaml", pip: "pyyaml" };
/** nbformat and jupyter_client, which tools/run_notebooks.py imports. */
export const NOTEBOOK_RUNNER: readonly PythonPackage[] = [
  { module: "nbformat", debian: "python3-nbformat", pip: "nbformat" },
  { module: "jupyter_client", debian: "python3-jupyter-client", pip: "jupyter_client" },
];

/** The Python interpreter a test runs, or why there is none. */
export interface PythonForTest {
  /** Deno.test's `ignore`: the packages are missing here and CI is not "true" */
  readonly ignore: boolean;
  /**
   * The interpreter to run. Throws, naming the packages and their install lines, when no python3
   * here has them: under CI=true (.ci/run installs them) their absence fails the test.
   */
  interpreter(): string;
}

/**
 * Finds a python3 that imports every package: the one on PATH, else Debian's /usr/bin/python3 (a
 * pyenv or venv on PATH may lack Debian's packages). Without one, a test is ignored (Node.js and npm
 * are all the README asks for) and one line says which package is missing and how to install it;
 * under CI=true it is not ignored, and fails saying so.
 */
export async function pythonWith(
  label: string,
  ...packages: readonly PythonPackage[]
): Promise<PythonForTest> {
  const imports = `import ${packages.map((p) => p.module).join(", ")}`;
  for (const command of ["python3", "/usr/bin/python3"]) {
    try {
      const { success } = await new Deno.Command(command, {
        args: ["-c", imports],
        stdout: "null",
        stderr: "null",
      }).output();
      if (success) return { ignore: false, interpreter: () => command };
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  const names = packages.map((p) => p.module).join(" and ");
  const missing = `needs the Python package${packages.length > 1 ? "s" : ""} ${names}, which ` +
    `no python3 here imports (PATH's, /usr/bin/python3): sudo apt-get install ` +
    `${packages.map((p) => p.debian).join(" ")}, or pip install ${
      packages.map((p) => p.pip).join(" ")
    }`;
  const absent = missingRequirement(label, missing, packages.length > 1 ? "them" : "it");
  return {
    ignore: absent.ignore,
    interpreter: () => {
      throw absent.error();
    },
  };
}

/**
 * What a test does without something .ci/run installs: outside CI it is ignored and one line says
 * what is missing and how to install it; under CI=true it runs, and `error()` is its failure.
 */
function missingRequirement(
  label: string,
  missing: string,
  pronoun: "it" | "them",
): { ignore: boolean; error(): Error } {
  const ci = Deno.env.get("CI") === "true";
  if (!ci) console.log(`${label}: ignored — ${missing}`);
  return {
    ignore: !ci,
    error: () =>
      new Error(`${label} ${missing} (CI=true: .ci/run installs ${pronoun}, so its absence fails)`),
  };
}

/**
 * Whether the figure font (DejaVu Sans, Debian's fonts-dejavu-core) is installed, as
 * {@link pythonWith} decides for Python packages: without it a test is ignored with one line
 * saying so, except under CI=true (.ci/run installs it), where `require()` fails the test.
 */
export function figureFont(label: string): { ignore: boolean; require(): void } {
  const path = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
  let present = false;
  try {
    present = Deno.statSync(path).isFile;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  if (present) return { ignore: false, require: () => {} };
  const absent = missingRequirement(
    label,
    `needs DejaVu Sans (${path}): sudo apt-get install fonts-dejavu-core`,
    "it",
  );
  return {
    ignore: absent.ignore,
    require: () => {
      throw absent.error();
    },
  };
}

/** A float32 array as the tools' reference JSON files store it: its shape and base64 bytes. */
export interface StoredArray {
  readonly shape: number[];
  readonly base64: string;
}

/** The values of a {@link StoredArray}. */
export function storedValues(stored: StoredArray): Float32Array {
  const bytes = Uint8Array.from(atob(stored.base64), (c) => c.charCodeAt(0));
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

/** max |a − b| over max |b|: fp32 agreement relative to the reference's scale. */
export function relativeDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`lengths ${a.length} and ${b.length} differ`);
  let worst = 0, scale = 0;
  for (let i = 0; i < b.length; i++) {
    worst = Math.max(worst, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return worst / Math.max(scale, 1e-30);
}

/**
 * A pipeline's reference.json (tools/build_family_pipelines.py, tools/shapes_flow/export.py): what
 * diffusers' PyTorch pipeline computed for fixed prompts, times and noise — encoder outputs, the
 * latent, each level's noisy input and the model's ε̂ — in one format for every family.
 */
export interface PipelineReference {
  readonly latent: StoredArray;
  readonly encoders: readonly {
    readonly prompt: string;
    readonly input_ids: Record<string, number[]>;
    readonly prompt_embeds: StoredArray;
    readonly pooled_prompt_embeds: StoredArray;
  }[];
  readonly levels: readonly {
    readonly timestep: number;
    /** flow time (SD 3, FLUX.1) */
    readonly t?: number;
    /** ᾱ (SDXL) */
    readonly alpha_bar?: number;
    readonly x_t: StoredArray;
    /** the transformer's packed input (FLUX.1) */
    readonly hidden_states?: StoredArray;
  }[];
  readonly predictions: readonly {
    readonly level: number;
    readonly prompt: string | null;
    readonly eps_hat: StoredArray;
  }[];
  readonly unconditional?: {
    readonly prompt_embeds: StoredArray;
    readonly pooled_prompt_embeds: StoredArray;
  };
  readonly time_ids?: StoredArray;
  readonly img_ids?: StoredArray;
  readonly txt_ids?: StoredArray;
  readonly guidance?: number;
}

/** Asserts `a` equals the reference `b` within `tolerance`, relative to b's scale. */
export function assertRelativelyClose(
  what: string,
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  tolerance: number,
): void {
  assert.equal(a.length, b.length, `${what}: lengths`);
  const error = relativeDifference(a, b);
  assert.ok(error <= tolerance, `${what}: relative difference ${error} > ${tolerance}`);
}

/** Runs `body` on the model loaded from `dir` (CPU unless `options` say otherwise), then frees it. */
export async function withLoadedModel<T>(
  dir: string,
  options: LoadModelOptions,
  body: (model: OnnxModel) => Promise<T> | T,
): Promise<T> {
  const model = await loadModel(dir, { device: "cpu", ...options });
  try {
    return await body(model);
  } finally {
    await model.dispose();
  }
}
