/**
 * Benchmark: resuming a study from a large results file (read, parse, header check, duplicate
 * check, every row found finished). Linear time is the target; the figure goes in docs/performance.md.
 *
 * @module
 */
import { runStudy } from "../src/studies/runner.ts";

/**
 * Writes a results file of `rows` rows, then times a resume that recomputes nothing.
 *
 * @example
 * ```ts ignore
 * import { benchResultsFile } from "./results-file.ts";
 * console.log(await benchResultsFile(1000));
 * ```
 */
export async function benchResultsFile(rows = 100_000): Promise<Record<string, number>> {
  const file = await Deno.makeTempFile({ suffix: ".jsonl" });
  const items = Array.from({ length: rows }, (_, i) => i);
  const id = (i: number) => `row-${i}`;
  const description = { study: "bench", settings: { samples: 100 } };
  let started = performance.now();
  await runStudy(items, id, (i) => Promise.resolve({ nats: i / rows, se: 0.01 }), {
    results: file,
    description,
  });
  const writeMs = performance.now() - started;
  started = performance.now();
  const run = await runStudy(items, id, () => Promise.reject(new Error("recomputed")), {
    results: file,
    description,
  });
  const resumeMs = performance.now() - started;
  const bytes = (await Deno.stat(file)).size;
  await Deno.remove(file);
  return {
    rows,
    resumed: run.resumed,
    fileMiB: Number((bytes / 2 ** 20).toFixed(1)),
    writeMs: Math.round(writeMs),
    resumeMs: Math.round(resumeMs),
  };
}

if (import.meta.main) console.log(JSON.stringify(await benchResultsFile(), null, 1));
