/**
 * Merging the results files of a sharded study into one, without a model: every shard must have
 * been written by the same study, with the same settings and model; nothing is dropped; missing
 * shards, shards with fewer rows than they were given, and duplicated rows are reported; two
 * different results for one item are refused.
 *
 * @module
 */
import { ResultsFileError } from "../errors.ts";
import {
  headerDifferences,
  readResults,
  type ResultsHeader,
  type StudyRecord,
  writeAtomically,
} from "./results-file.ts";

/** What a merge found. */
export interface MergeReport {
  /** the merged file */
  readonly output: string;
  /** the study */
  readonly study: string;
  /** shards the files say there are */
  readonly shardCount: number;
  /** shard indices no file holds */
  readonly missingShards: readonly number[];
  /** shards whose file holds fewer items than the shard was given */
  readonly incompleteShards: readonly { index: number; items: number; expected: number }[];
  /** good rows in the merged file */
  readonly rows: number;
  /** failed rows in the merged file */
  readonly failures: number;
  /** items found in more than one file with the same result (kept once) */
  readonly duplicates: readonly string[];
  /** true when no shard is missing or incomplete */
  readonly complete: boolean;
}

/**
 * Merges shard results files into `output` (written atomically; an existing file is refused).
 * Within a file the last record of an item wins, as on resume; across files an item with the
 * same result is kept once, a good result wins over a failure, and two different good results
 * are an error.
 *
 * @throws {ResultsFileError} for a file without a header, files of different studies, settings,
 *   models or shard counts, two files of one shard, conflicting results, or an existing output
 *
 * @example
 * ```ts
 * import { mergeResults } from "./merge.ts";
 * import { runStudy } from "./runner.ts";
 * const dir = await Deno.makeTempDir();
 * const description = { study: "squares", settings: { samples: 4 } };
 * for (const index of [0, 1]) {
 *   await runStudy([1, 2, 3], (n) => `n${n}`, (n) => Promise.resolve(n * n),
 *     { results: `${dir}/shard-${index}.jsonl`, shard: { index, count: 2 }, description });
 * }
 * const report = await mergeResults([`${dir}/shard-0.jsonl`, `${dir}/shard-1.jsonl`], `${dir}/all.jsonl`);
 * console.assert(report.rows === 3 && report.complete);
 * ```
 */
export async function mergeResults(
  inputs: readonly string[],
  output: string,
): Promise<MergeReport> {
  if (inputs.length === 0) throw new ResultsFileError("nothing to merge: no results files given");
  if (inputs.includes(output)) {
    throw new ResultsFileError(`the output ${output} is one of the inputs; expected a new file`);
  }
  if (await Deno.stat(output).then(() => true, () => false)) {
    throw new ResultsFileError(`${output} exists; expected a new file for the merged results`);
  }
  const files = await Promise.all(inputs.map(async (path) => {
    const content = await readResults<unknown>(path);
    if (!content.header) {
      throw new ResultsFileError(`${path} has no infodiff header; expected a shard results file`);
    }
    return { path, header: content.header, records: content.records };
  }));
  const first = files[0].header;
  const shardCount = first.shard?.count ?? 1;
  const byShard = new Map<number, string>();
  for (const file of files) {
    const differences = headerDifferences(
      file.header,
      { study: first.study, settings: first.settings, model: first.model },
      [`in ${file.path}`, `in ${files[0].path}`],
    );
    if (differences.length > 0) {
      throw new ResultsFileError(
        `${file.path} and ${files[0].path} come from different runs: ${differences.join("; ")}`,
      );
    }
    const shard = file.header.shard ?? { index: 0, count: 1 };
    if (shard.count !== shardCount) {
      throw new ResultsFileError(
        `${file.path} is shard ${shard.index} of ${shard.count}, ${files[0].path} of ` +
          `${shardCount}; expected the shards of one split`,
      );
    }
    const other = byShard.get(shard.index);
    if (other !== undefined) {
      throw new ResultsFileError(
        `${other} and ${file.path} both hold shard ${shard.index} of ${shardCount}; expected ` +
          "one file per shard",
      );
    }
    byShard.set(shard.index, file.path);
  }

  const merged = new Map<string, StudyRecord<unknown>>();
  const duplicates: string[] = [];
  for (const file of files) {
    for (const [id, record] of file.records) {
      const seen = merged.get(id);
      if (!seen) {
        merged.set(id, record);
      } else if (JSON.stringify(seen) === JSON.stringify(record)) {
        duplicates.push(id);
      } else if (!seen.ok || !record.ok) {
        if (record.ok) merged.set(id, record); // a good result wins over a failure
        duplicates.push(id);
      } else {
        throw new ResultsFileError(
          `item "${id}" has two different results (one in ${file.path}); expected one result ` +
            "per item: were the shards run with different code or data?",
        );
      }
    }
  }

  const missingShards = Array.from({ length: shardCount }, (_, i) => i).filter((i) =>
    !byShard.has(i)
  );
  const incompleteShards = files.flatMap((file) => {
    const expected = file.header.items;
    const items = file.records.size;
    return expected !== undefined && items < expected
      ? [{ index: file.header.shard?.index ?? 0, items, expected }]
      : [];
  });
  const header: ResultsHeader = {
    ...first,
    created: new Date().toISOString(),
    shard: undefined,
    items: files.reduce((sum, f) => sum + (f.header.items ?? f.records.size), 0),
    mergedFrom: [...inputs],
  };
  const lines = [JSON.stringify(header), ...[...merged.values()].map((r) => JSON.stringify(r))];
  await writeAtomically(output, lines.join("\n") + "\n");
  const records = [...merged.values()];
  return {
    output,
    study: first.study,
    shardCount,
    missingShards,
    incompleteShards,
    rows: records.filter((r) => r.ok).length,
    failures: records.filter((r) => !r.ok).length,
    duplicates,
    complete: missingShards.length === 0 && incompleteShards.length === 0,
  };
}

/**
 * The report as lines of text, for the command line.
 *
 * @example
 * ```ts
 * import { formatMergeReport } from "./merge.ts";
 * const text = formatMergeReport({ output: "all.jsonl", study: "s", shardCount: 2, missingShards: [1],
 *   incompleteShards: [], rows: 3, failures: 0, duplicates: [], complete: false });
 * console.assert(text.includes("missing shards: 1"));
 * ```
 */
export function formatMergeReport(report: MergeReport): string {
  const lines = [
    `merged ${report.shardCount} shard(s) of ${report.study} into ${report.output}: ` +
    `${report.rows} rows, ${report.failures} failed`,
  ];
  if (report.missingShards.length) lines.push(`missing shards: ${report.missingShards.join(", ")}`);
  for (const s of report.incompleteShards) {
    lines.push(`shard ${s.index} holds ${s.items} of its ${s.expected} items (still running?)`);
  }
  if (report.duplicates.length) {
    lines.push(
      `${report.duplicates.length} item(s) were in more than one file and kept once: ` +
        report.duplicates.slice(0, 5).join(", ") + (report.duplicates.length > 5 ? ", …" : ""),
    );
  }
  lines.push(report.complete ? "complete" : "incomplete");
  return lines.join("\n");
}
