/**
 * Benchmark: rows per second of the studies on shapes-tiny with one row at a time and with rows
 * in flight whose model calls are packed (`rowsInFlight`), and how full the calls are. The
 * numbers are the same either way (tests/packed-calls.test.ts); only the calls differ.
 *
 * @module
 */
import { join } from "node:path";
import { loadModel } from "../src/query/load-model.ts";
import { type Denoiser, type NoiseBatch, withMembers } from "../src/models/denoiser.ts";
import { shapesWorld } from "../src/datasets/shapes/world.ts";
import { exportShapesDataset } from "../src/datasets/shapes/export.ts";
import { readAro } from "../src/datasets/aro.ts";
import { shapesLocalizationRows } from "../src/studies/localization-rows.ts";
import { localizationStudy } from "../src/studies/localization.ts";
import { relationStudy } from "../src/studies/relations.ts";
import { pidStudy } from "../src/studies/pid-study.ts";

interface Case {
  readonly study: string;
  readonly rows: number;
  readonly run: (model: Denoiser, rowsInFlight: number, batchSize: number) => Promise<unknown>;
}

/**
 * Times each study at `rowsInFlight` 1 and 4, at batch 8 (the CPU default) and 32 (a GPU's).
 *
 * @example
 * ```ts ignore
 * import { benchPackedRows } from "./packed-rows.ts";
 * console.log(await benchPackedRows());
 * ```
 */
export async function benchPackedRows(samples = 30): Promise<Record<string, unknown>[]> {
  const model = await loadModel("fixtures/models/shapes-tiny", { device: "cpu" });
  const world = shapesWorld({ seed: 3, count: 16, maxObjects: 2 });
  const dir = await Deno.makeTempDir();
  await exportShapesDataset(world, dir);
  const aro = (await readAro(join(dir, "aro_attribution.json"))).slice(0, 8);
  const locRows = shapesLocalizationRows(world).slice(0, 8);
  const pidRows = world.scenes.slice(0, 6).map((scene) => {
    const [, colour, shape] = scene.caption.split(" ");
    return { image: scene.toData(), prompt: scene.caption, wordA: colour, wordB: shape };
  });
  const cases: Case[] = [
    {
      study: "localization",
      rows: locRows.length,
      run: (m, rowsInFlight, batchSize) =>
        localizationStudy(m, locRows, {
          samples,
          batchSize,
          rowsInFlight,
          methods: ["information"],
        }),
    },
    {
      study: "relations (2 options)",
      rows: aro.length,
      run: (m, rowsInFlight, batchSize) =>
        relationStudy(m, aro, { samples, batchSize, rowsInFlight }),
    },
    {
      study: "pid",
      rows: pidRows.length,
      run: (m, rowsInFlight, batchSize) =>
        pidStudy(m, pidRows, { samples, batchSize, rowsInFlight, resamples: 50 }),
    },
  ];
  const out: Record<string, unknown>[] = [];
  try {
    for (const c of cases) {
      for (const batchSize of [8, 32]) {
        for (const rowsInFlight of [1, 4]) {
          const { model: counted, sizes } = countCalls(model);
          const started = performance.now();
          await c.run(counted, rowsInFlight, batchSize);
          const seconds = (performance.now() - started) / 1000;
          const items = sizes.reduce((a, b) => a + b, 0);
          out.push({
            study: c.study,
            batchSize,
            rowsInFlight,
            rowsPerSecond: Number((c.rows / seconds).toFixed(2)),
            calls: sizes.length,
            itemsPerCall: Number((items / sizes.length).toFixed(1)),
          });
        }
      }
    }
  } finally {
    await model.dispose();
    await Deno.remove(dir, { recursive: true });
  }
  return out;
}

/** The model with every call's size recorded. */
function countCalls(model: Denoiser): { model: Denoiser; sizes: number[] } {
  const sizes: number[] = [];
  const predictNoise = (batch: NoiseBatch) => {
    sizes.push(batch.logSnr.length);
    return model.predictNoise(batch);
  };
  return { model: withMembers(model, { predictNoise }), sizes };
}

if (import.meta.main) console.log(JSON.stringify(await benchPackedRows(), null, 1));
