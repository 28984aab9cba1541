/**
 * A study's report from its results file alone (no model): the summary table as text and JSON,
 * its chart as SVG and PNG, and one self-contained `report.html` with the provenance of the run.
 *
 * @module
 */
import { join } from "node:path";
import { escapeHtml, JUPYTER_DISPLAY } from "../jupyter.ts";
import { resultFromFile, type StudyResult } from "../studies/result-from-file.ts";
import type { ResultsHeader } from "../studies/results-file.ts";
import { LocalizationResult } from "../studies/localization-result.ts";
import { RelationsResult } from "../studies/relations-result.ts";
import { InterventionResult } from "../studies/intervention-result.ts";
import type { Chart } from "./chart.ts";
import { interventionScatter, localizationChart, relationChart } from "./study-charts.ts";

/** What {@link writeStudyReport} wrote. */
export interface StudyReport {
  /** the study */
  readonly study: string;
  /** the files written, under the output folder */
  readonly files: readonly string[];
  /** the summary table as text */
  readonly summary: string;
}

/**
 * Reads a results file (a shard's or a merged one) and writes `summary.txt`, `summary.json`,
 * `chart.svg` and `chart.png` (when the study has a chart and enough rows for it) and
 * `report.html` into `out`.
 *
 * @throws {ResultsFileError} for a file that is not a study results file
 *
 * @example
 * ```ts
 * import { writeStudyReport } from "./report.ts";
 * import { relationStudy } from "../studies/relations.ts";
 * import { mixtureModel } from "../query/oracles.ts";
 * const model = mixtureModel({ shape: [1, 1, 2], components: [
 *   { words: ["red"], mean: [1, 0], variance: 0.05 }, { words: ["blue"], mean: [0, 1], variance: 0.05 }] });
 * const results = await Deno.makeTempFile({ suffix: ".jsonl" });
 * const item = { image: "x", options: ["blue", "red"], trueIndex: 1, kind: "k", group: "g" };
 * await relationStudy(model, [item], { samples: 4, results, loadImage: () => Promise.resolve(new Float32Array([1, 0])) });
 * const report = await writeStudyReport(results, await Deno.makeTempDir());
 * console.assert(report.files.includes("report.html") && report.files.includes("chart.png"));
 * ```
 */
export async function writeStudyReport(resultsPath: string, out: string): Promise<StudyReport> {
  const { header, result } = await resultFromFile(resultsPath);
  await Deno.mkdir(out, { recursive: true });
  const files: string[] = [];
  const write = async (name: string, content: string | Uint8Array) => {
    const path = join(out, name);
    if (typeof content === "string") await Deno.writeTextFile(path, content);
    else await Deno.writeFile(path, content);
    files.push(name);
  };
  const summary = result.toString();
  await write("summary.txt", summary + "\n");
  await write("summary.json", JSON.stringify({ header, result }, null, 1) + "\n");
  const chart = studyChart(result);
  if (chart) {
    await write("chart.svg", chart.svg);
    await write("chart.png", await chart.toPNG({ scale: 2 }));
  }
  await write("report.html", reportHtml(resultsPath, header, result, chart));
  return { study: header.study, files, summary };
}

/** The study's chart, or undefined when it has none or too few rows to draw one. */
function studyChart(result: StudyResult): Chart | undefined {
  try {
    if (result instanceof LocalizationResult) return localizationChart(result);
    if (result instanceof RelationsResult) return relationChart(result);
    if (result instanceof InterventionResult) return interventionScatter(result);
  } catch {
    // a chart of too few rows (a scatter of one point, constant values) is no chart
  }
  return undefined;
}

function reportHtml(
  source: string,
  header: ResultsHeader,
  result: StudyResult,
  chart: Chart | undefined,
): string {
  const bundle = result[JUPYTER_DISPLAY]();
  const table = bundle["text/html"] ?? `<pre>${escapeHtml(result.toString())}</pre>`;
  const row = (name: string, value: unknown) =>
    `<tr><th>${escapeHtml(name)}</th><td><code>${
      escapeHtml(typeof value === "string" ? value : JSON.stringify(value))
    }</code></td></tr>`;
  const model = header.model;
  const provenance = [
    row("results file", source),
    row("study", header.study),
    row("infodiff", header.infodiff),
    row("created", header.created),
    row("model", model ? `${model.name} (${model.backend})` : "unrecorded"),
    row("model sha256", model?.sha256 || "unknown"),
    ...(model?.runtime ? [row("runtime", model.runtime)] : []),
    ...(header.mergedFrom ? [row("merged from", header.mergedFrom)] : []),
    ...(header.shard ? [row("shard", `${header.shard.index}/${header.shard.count}`)] : []),
    row("settings", header.settings),
  ].join("");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>infodiff ${
    escapeHtml(header.study)
  } report</title>
<style>body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;
vertical-align:top}code{white-space:pre-wrap;word-break:break-all}</style></head>
<body><h1>infodiff: ${escapeHtml(header.study)} study</h1>
<h2>Results</h2>${table}
${chart ? `<h2>Chart</h2>${chart.svg}` : ""}
<h2>Provenance</h2><table>${provenance}</table>
</body></html>
`;
}
