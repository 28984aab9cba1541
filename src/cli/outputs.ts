/**
 * The output folder of a per-word result (the demo and `infodiff info --out`): what the model saw,
 * each word's labelled overlay and bare map at image resolution, the maps as `.npy`, a labelled
 * grid of all words with a colour bar, and `result.json` with the numbers and their provenance.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { InvalidArgumentError } from "../errors.ts";
import type { PerTokenResult } from "../estimators/results.ts";
import { heatmapToNpy } from "../images/npy.ts";
import {
  type ChwImage,
  chwToRgb,
  heatmapToPng,
  type RgbImage,
  rgbToPng,
  writePng,
} from "../images/png.ts";
import { labelledOverlay, overlayGrid, sharedRange } from "../plots/overlays.ts";

/**
 * Checks, before anything is computed, that `out` is a folder this process can write: made if it
 * does not exist, then a probe file created in it and removed — a real write, since neither the
 * mode bits (root, ACLs, read-only mounts) nor Deno's --allow-write say it alone. Without it an
 * unwritable folder failed after the whole run, with a raw error, and the result was lost.
 *
 * @throws {InvalidArgumentError} when `out` is a file, or the folder cannot be made or written
 *   (the system's or Deno's refusal is the cause)
 *
 * @example
 * ```ts
 * import { checkOutputFolder } from "./outputs.ts";
 * const out = `${await Deno.makeTempDir()}/new/folder`;
 * await checkOutputFolder(out);
 * console.assert((await Deno.stat(out)).isDirectory && [...Deno.readDirSync(out)].length === 0);
 * ```
 */
export async function checkOutputFolder(out: string, option = "--out"): Promise<void> {
  const stat = await Deno.stat(out).catch(() => undefined);
  if (stat && !stat.isDirectory) {
    throw new InvalidArgumentError(`${option} ${out} is a file; expected a folder (or a new path)`);
  }
  const probe = join(out, `.infodiff-write-check-${Deno.pid}`);
  try {
    await Deno.mkdir(out, { recursive: true });
    await Deno.writeFile(probe, new Uint8Array(), { createNew: true });
    await Deno.remove(probe);
  } catch (error) {
    throw new InvalidArgumentError(
      `${option} ${out} cannot be written; expected a folder this process may create files in ` +
        `(checked before the run, so that no result is computed only to be lost)`,
      { cause: error },
    );
  }
}

/**
 * Checks, before anything is computed, that the file `out` can be written: not a folder, and its
 * folder made and probed as {@link checkOutputFolder} does (the file itself is not created).
 *
 * @throws {InvalidArgumentError} when `out` is a folder, or its folder cannot be made or written
 *
 * @example
 * ```ts
 * import { checkOutputFile } from "./outputs.ts";
 * const dir = await Deno.makeTempDir();
 * await checkOutputFile(`${dir}/new/car.png`);
 * console.assert((await Deno.stat(`${dir}/new`)).isDirectory);
 * ```
 */
export async function checkOutputFile(out: string, option = "--out"): Promise<void> {
  if ((await Deno.stat(out).catch(() => undefined))?.isDirectory) {
    throw new InvalidArgumentError(`${option} ${out} is a folder; expected a file path`);
  }
  await checkOutputFolder(dirname(out), `${option} ${out}: its folder`);
}

/** Which colour scale the maps use: one for all words (default), or each its own. */
export type MapScale = "shared" | "each";

/**
 * Writes the folder and returns the names of the files written (relative to `out`).
 *
 * @example
 * ```ts
 * import { writeTokenOutputs } from "./outputs.ts";
 * import { exampleOracle } from "../query/oracles.ts";
 * import { EXAMPLE_PROMPT } from "../models/example.ts";
 * const m = exampleOracle();
 * const x = m.sample(EXAMPLE_PROMPT, { seed: 1 });
 * const r = await m.info(x).given(EXAMPLE_PROMPT).samples(4).perToken();
 * const files = await writeTokenOutputs(r, { data: x, shape: [3, 16, 16] }, await Deno.makeTempDir());
 * console.assert(files.includes("grid.png") && files.includes("maps/1-red.npy"));
 * ```
 */
export async function writeTokenOutputs(
  result: PerTokenResult,
  image: RgbImage | ChwImage,
  out: string,
  scale: MapScale = "shared",
): Promise<string[]> {
  const rgb = "shape" in image
    ? {
      width: image.shape[2],
      height: image.shape[1],
      rgb: chwToRgb(image.data, image.shape[0], image.shape[1], image.shape[2], { clamp: true }),
    }
    : image;
  const files: string[] = [];
  const write = async (name: string, bytes: Uint8Array) => {
    if (name.endsWith(".png")) await writePng(join(out, name), bytes);
    else {
      await Deno.mkdir(join(out, name, ".."), { recursive: true });
      await Deno.writeFile(join(out, name), bytes);
    }
    files.push(name);
  };
  await write("image.png", await rgbToPng(rgb.rgb, rgb.width, rgb.height));
  const range = scale === "shared" ? sharedRange(result) : undefined;
  for (const token of result.tokens.filter((t) => !t.truncated)) {
    const name = `${token.index}-${token.word}`;
    await write(`${name}.png`, (await labelledOverlay(token, rgb, { range })).png);
    await write(
      `${name}-map.png`,
      await heatmapToPng(token.map, { width: rgb.width, height: rgb.height, range }),
    );
    await write(`maps/${name}.npy`, heatmapToNpy(token.map));
  }
  await write("grid.png", (await overlayGrid(result, rgb, { scale })).png);
  await Deno.writeTextFile(join(out, "result.json"), JSON.stringify(result, null, 1));
  files.push("result.json");
  return files;
}
