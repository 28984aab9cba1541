/**
 * `deno task demo`: a held-out scene of the shapes world, its caption, a per-word information table
 * with standard errors under the trained `shapes-tiny` model, and a heat-map overlay per word as
 * PNG. `--oracle` runs the same on the exact example oracle instead.
 *
 * @module
 */
import { EXAMPLE_PROMPT } from "../models/example.ts";
import { exampleOracle } from "../query/oracles.ts";
import { loadModel } from "../query/load-model.ts";
import { shapesWorld } from "../datasets/shapes/world.ts";
import { chwToRgb } from "../images/png.ts";
import { checkOutputFolder, type MapScale, writeTokenOutputs } from "./outputs.ts";
import type { PerTokenResult } from "../estimators/results.ts";
import type { Model } from "../query/model.ts";

/** Where the trained demo model lives, relative to the repository root. */
export const DEMO_MODEL = new URL("../../fixtures/models/shapes-tiny/", import.meta.url);

/** Options of {@link runDemo}. */
export interface DemoOptions {
  /** output folder (default `out/demo`) */
  readonly out?: string;
  /** noise draws (default 100) */
  readonly samples?: number;
  /** seed of the draws and of the scene (default 0) */
  readonly seed?: number;
  /** use the exact example oracle instead of shapes-tiny */
  readonly oracle?: boolean;
  /** a model folder to use instead of shapes-tiny (a pixel-space model of the shapes world) */
  readonly model?: string;
  /** colour scale of the maps: one for all words (default) or each its own */
  readonly scale?: MapScale;
  /** where to print (default console.log) */
  readonly log?: (line: string) => void;
}

/**
 * Runs the demo and returns the per-token result.
 *
 * @example
 * ```ts
 * import { runDemo } from "./demo.ts";
 * const result = await runDemo({ out: await Deno.makeTempDir(), samples: 20, oracle: true, log: () => {} });
 * console.assert(result.tokens.length === 6);
 * ```
 */
export async function runDemo(options: DemoOptions = {}): Promise<PerTokenResult> {
  const out = options.out ?? "out/demo";
  const log = options.log ?? console.log;
  const seed = options.seed ?? 0;
  await checkOutputFolder(out);
  const { model, pixels, size, prompt } = options.oracle
    ? exampleScene(seed)
    : await shapesScene(options.model ?? DEMO_MODEL.pathname, seed);
  try {
    log(`model: ${model.name} (${model.shape.join("×")})`);
    const result = await model.info({ pixels }).given(prompt).samples(options.samples ?? 100)
      .seed(seed).perToken();
    log(result.toString());
    const [height, width] = [size, size];
    const scale = Math.max(1, Math.round(256 / width)); // show small pictures at ≥ 256 px
    const rgb = chwToRgb(pixels, 3, height, width, { clamp: true }); // oracle samples pass ±1
    const big = {
      width: width * scale,
      height: height * scale,
      rgb: upscale(rgb, width, height, scale),
    };
    const files = await writeTokenOutputs(result, big, out, options.scale);
    log(
      `wrote ${files.length} files under ${out}: image.png, per word an overlay and the map ` +
        `alone (<index>-<word>[-map].png, maps/*.npy), grid.png (one colour scale), result.json`,
    );
    return result;
  } finally {
    await model.dispose();
  }
}

/** A scene for the demo: the model, the image's CHW pixels in [−1, 1] (size × size), the prompt. */
interface DemoScene {
  readonly model: Model;
  readonly pixels: Float32Array;
  readonly size: number;
  readonly prompt: string;
}

function exampleScene(seed: number): DemoScene {
  const model = exampleOracle(); // pixel space: its samples are pixels
  return {
    model,
    pixels: model.sample(EXAMPLE_PROMPT, { seed }),
    size: model.shape[2],
    prompt: EXAMPLE_PROMPT,
  };
}

/** A two-object scene of the held-out test split (never seen in training) under a trained model. */
async function shapesScene(
  dir: string,
  seed: number,
): Promise<DemoScene> {
  const model = await loadModel(dir, { device: "cpu" });
  const world = shapesWorld({ seed: seed + 1, count: 20, split: "test" });
  const scene = world.scenes.find((s) => s.objects.length === 2) ?? world.scenes[0];
  return { model, pixels: scene.toData(), size: scene.size, prompt: scene.caption };
}

/** Nearest-neighbour enlargement of an RGB image (so small pictures are visible). */
function upscale(rgb: Uint8Array, width: number, height: number, k: number): Uint8Array {
  const out = new Uint8Array(width * k * height * k * 3);
  for (let y = 0; y < height * k; y++) {
    for (let x = 0; x < width * k; x++) {
      const from = (Math.floor(y / k) * width + Math.floor(x / k)) * 3,
        to = (y * width * k + x) * 3;
      out[to] = rgb[from];
      out[to + 1] = rgb[from + 1];
      out[to + 2] = rgb[from + 2];
    }
  }
  return out;
}
