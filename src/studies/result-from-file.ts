/**
 * A study's result rebuilt from its results file alone (no model): the header says which study
 * and with what settings, the rows are the study's records.
 *
 * @module
 */
import { ResultsFileError } from "../errors.ts";
import type { LocalizationMethod, LocalizationRecord } from "./localization-result.ts";
import { LocalizationResult } from "./localization-result.ts";
import { type RelationRecord, RelationsResult } from "./relations-result.ts";
import { type InterventionRecord, InterventionResult } from "./intervention-result.ts";
import { PidStudyResult, type PidStudyRow } from "./pid-study-result.ts";
import { readResults, type ResultsHeader, type StudyFailure } from "./results-file.ts";

/** Any study's result. */
export type StudyResult =
  | LocalizationResult
  | RelationsResult
  | InterventionResult
  | PidStudyResult;

/**
 * Reads a results file (a shard's or a merged one) and rebuilds its study's result.
 *
 * @throws {ResultsFileError} for a file without a header or of an unknown study
 *
 * @example
 * ```ts
 * import { resultFromFile } from "./result-from-file.ts";
 * import { pidStudy } from "./pid-study.ts";
 * import { mixtureModel } from "../query/oracles.ts";
 * const model = mixtureModel({ shape: [1, 1, 2], components: [
 *   { words: ["red", "thing"], mean: [1, 0], variance: 0.2 }, { words: ["blue", "thing"], mean: [0, 1], variance: 0.2 }] });
 * const results = await Deno.makeTempFile({ suffix: ".jsonl" });
 * await pidStudy(model, [{ image: model.sample("red", { seed: 1 }), prompt: "a red thing", wordA: "red", wordB: "thing" }], { samples: 8, results });
 * const { header, result } = await resultFromFile(results);
 * console.assert(header.study === "pid" && result instanceof Object);
 * ```
 */
export async function resultFromFile(
  path: string,
): Promise<{ header: ResultsHeader; result: StudyResult }> {
  const content = await readResults<unknown>(path);
  const header = content.header;
  if (!header) {
    throw new ResultsFileError(`${path} has no infodiff header; expected a study results file`);
  }
  const records = [...content.records.values()];
  const good = records.flatMap((r) => r.ok ? [{ id: r.id, result: r.result }] : []);
  const failures: StudyFailure[] = records.flatMap((r) =>
    r.ok ? [] : [{ id: r.id, error: r.error, kind: r.kind }]
  );
  const total = header.items ?? records.length;
  // a summary reads rows, it resumes nothing
  const run = { failures, resumed: 0, total };
  const settings = header.settings as Record<string, unknown>;
  const modelName = header.model?.name ?? "unrecorded model";
  switch (header.study) {
    case "localization": {
      const thresholds = settings.thresholds as number[];
      return {
        header,
        result: new LocalizationResult({
          run: { ...run, results: good as { id: string; result: LocalizationRecord }[] },
          methods: settings.methods as LocalizationMethod[],
          thresholds,
          fixedThreshold: settings.fixedThreshold as number,
          unavailable: new Map(
            Object.entries((settings.unavailable ?? {}) as Record<string, string>),
          ) as Map<LocalizationMethod, string>,
          maps: new Map(),
          samples: settings.samples as number,
          model: modelName,
        }),
      };
    }
    case "relations":
      return {
        header,
        result: new RelationsResult(
          { ...run, results: good as { id: string; result: RelationRecord }[] },
          settings.samples as number,
          modelName,
        ),
      };
    case "intervention": {
      const rows = good.map(({ id, result }) => ({ id, ...(result as InterventionRecord) }));
      return {
        header,
        result: InterventionResult.fromRows(modelName, rows, {
          ...run,
          attentionRan: rows.length > 0 && rows.every((r) => r.attentionMap !== undefined),
        }),
      };
    }
    case "pid":
      return {
        header,
        result: new PidStudyResult(good.map((g) => g.result as PidStudyRow), failures),
      };
    default:
      throw new ResultsFileError(
        `${path} holds a "${header.study}" study; expected localization, relations, ` +
          "intervention or pid",
      );
  }
}
