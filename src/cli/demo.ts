/**
 * `deno task demo`: a held-out scene of the shapes world, its caption, a per-word information table
 * with standard errors under the trained `shapes-flow` model (a rectified-flow model in FLUX.1's
 * layout that binds colours to their shapes), and a heat-map overlay per word as PNG. `--model`
 * runs another model of the shapes world (`fixtures/models/shapes-tiny`, the earlier demo model),
 * `--oracle` the exact example oracle.
 *
 * @module
 */
import { EXAMPLE_PROMPT } from "../models/example.ts";
import { InvalidArgumentError } from "../errors.ts";
import { exampleOracle } from "../query/oracles.ts";
import { loadModel } from "../query/load-model.ts";
import { shapesWorld } from "../datasets/shapes/world.ts";
import { chwToRgb } from "../images/png.ts";
import { checkOutputFolder, type MapScale, writeTokenOutputs } from "./outputs.ts";
import type { PerTokenResult } from "../estimators/results.ts";
import type { Model } from "../query/model.ts";
import type { PipelineOptions } from "../models/onnx/pipeline.ts";

/** Where the trained demo model lives, relative to the repository root. */
export const DEMO_MODEL = new URL("../../fixtures/models/shapes-flow/", import.meta.url);

/**
 * How the demo model loads: with its T5's training length (16 tokens), not FLUX.1-schnell's
 * pipeline default of 256, whose 240 extra pad tokens it never saw.
 */
export const DEMO_LOAD_OPTIONS: PipelineOptions = Object.freeze({ maxSequenceLength: 16 });

/** Options of {@link runDemo}. */
export interface DemoOptions {
  /** output folder (default `out/demo`) */
  readonly out?: string;
  /** noise draws (default 100) */
  readonly samples?: number;
  /** seed of the draws and of the scene (default 0) */
  readonly seed?: number;
  /** use the exact example oracle instead of shapes-flow */
  readonly oracle?: boolean;
  /** a model folder of the shapes world (32×32 pixels) to use instead of shapes-flow */
  readonly model?: string;
  /**
   * how the model loads, over {@link DEMO_LOAD_OPTIONS} for the demo model and over nothing for
   * another
   */
  readonly load?: PipelineOptions;
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
  const load = options.load ?? {};
  if (options.oracle && Object.keys(load).length > 0) {
    throw new InvalidArgumentError(
      `the demo's example oracle loads nothing, so ${
        Object.keys(load).join(", ")
      } has nothing to set; expected it with the shapes model or --model`,
    );
  }
  await checkOutputFolder(out);
  const { model, pixels, size, prompt } = options.oracle ? exampleScene(seed) : await shapesScene(
    options.model ?? DEMO_MODEL.pathname,
    { ...(options.model ? {} : DEMO_LOAD_OPTIONS), ...load },
    seed,
  );
  try {
    log(`model: ${model.name} (${model.shape.join("×")})`);
    const result = await model.info({ pixels }).given(prompt).samples(options.samples ?? 100)
      .seed(seed).perToken();
    log(result.toString());
    const scale = Math.max(1, Math.round(256 / size)); // show small pictures at ≥ 256 px
    const rgb = chwToRgb(pixels, 3, size, size, { clamp: true }); // oracle samples pass ±1
    const big = { width: size * scale, height: size * scale, rgb: upscale(rgb, size, size, scale) };
    const files = await writeTokenOutputs(result, big, out, options.scale);
    log(
      `wrote ${files.length} files under ${out}: image.png, per word an overlay and the map ` +
        `alone (<index>-<word>[-map].png, maps/*.npy), grid.png (${
          options.scale === "each" ? "each map on its own colour scale" : "one colour scale"
        }), result.json`,
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
  load: PipelineOptions,
  seed: number,
): Promise<DemoScene> {
  const model = await loadModel(dir, { device: "cpu", ...load });
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
