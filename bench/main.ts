/**
 * `deno task bench`: every benchmark, printed as JSON and written to out/bench.json. Numbers are
 * recorded in docs/performance.md, never asserted in tests.
 *
 * @module
 */
import { benchOracle } from "./oracle.ts";
import { benchFamilyGlue, benchOnnx } from "./onnx.ts";
import { benchResultsFile } from "./results-file.ts";
import { benchPackedRows } from "./packed-rows.ts";
import { benchRealSize } from "./realsize.ts";
import { benchDesigns } from "./designs.ts";
import { benchDesignBank } from "./design-bank.ts";

const results = {
  date: new Date().toISOString(),
  cpu: `${navigator.hardwareConcurrency} cores`,
  oracle: await benchOracle(2000),
  onnx: await benchOnnx(),
  // SDXL, SD 3 and FLUX.1 at their real tensor sizes (near-free graphs built in out/family-realsize)
  familyGlue: await benchFamilyGlue(),
  resultsFile: await benchResultsFile(100_000),
  packedRows: await benchPackedRows(),
  realSize: await benchRealSize(),
  designs: await benchDesigns(),
  // shapes-tiny's designs from banks of its integrand (26 min to build once, kept in out/)
  designBank: (await benchDesignBank()).summary,
};
console.log(JSON.stringify(results, null, 1));
await Deno.mkdir("out", { recursive: true });
await Deno.writeTextFile("out/bench.json", JSON.stringify(results, null, 1));
console.log("wrote out/bench.json");
