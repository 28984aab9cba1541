/**
 * `deno task demo`: a per-word information table for a built-in example, and a heat map per word
 * written as PNG overlays under an output folder.
 *
 * @module
 */
import { join } from "node:path";
import { EXAMPLE_PROMPT, exampleOracle } from "../models/example.ts";
import { chwToRgb, overlayPng, rgbToPng, writePng } from "../images/png.ts";
import type { PerTokenResult } from "../estimators/results.ts";

/** Options of {@link runDemo}. */
export interface DemoOptions {
  /** output folder (default `out/demo`) */
  readonly out?: string;
  /** noise draws (default 200) */
  readonly samples?: number;
  /** seed (default 0) */
  readonly seed?: number;
  /** where to print (default console.log) */
  readonly log?: (line: string) => void;
}

/**
 * Runs the demo on the exact example oracle and returns the per-token result.
 *
 * @example
 * ```ts
 * import { runDemo } from "./demo.ts";
 * const result = await runDemo({ out: await Deno.makeTempDir(), samples: 20, log: () => {} });
 * console.assert(result.tokens.length === 6);
 * ```
 */
export async function runDemo(options: DemoOptions = {}): Promise<PerTokenResult> {
  const out = options.out ?? "out/demo";
  const log = options.log ?? console.log;
  const model = exampleOracle();
  const [channels, height, width] = model.shape;
  const image = model.sample(EXAMPLE_PROMPT, { seed: options.seed ?? 0 });
  log(
    `model: ${model.name} (exact; ${model.components.length} components, ${channels}×${height}×${width})`,
  );
  const result = await model.info(image).given(EXAMPLE_PROMPT).samples(options.samples ?? 200)
    .seed(options.seed ?? 0).perToken();
  log(result.toString());
  const rgb = chwToRgb(image, channels, height, width, { clamp: true }); // samples have noise past ±1
  const scale = 16; // show 16×16 pictures at 256 px
  const big = {
    width: width * scale,
    height: height * scale,
    rgb: upscale(rgb, width, height, scale),
  };
  await writePng(join(out, "image.png"), await rgbToPng(big.rgb, big.width, big.height));
  for (const token of result.tokens) {
    const file = join(out, `${token.index}-${token.word}.png`);
    await writePng(file, await overlayPng(big, token.map, { alpha: 0.6 }));
  }
  await Deno.writeTextFile(join(out, "result.json"), JSON.stringify(result, null, 1));
  log(
    `wrote ${out}/image.png, one heat-map overlay per word (${out}/<index>-<word>.png) and result.json`,
  );
  return result;
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
