/**
 * The studies of the papers (localization, relations, prompt intervention, PID) and the resumable,
 * sharded runner they share. Subpath export `@infodiff/infodiff/studies`.
 *
 * @example
 * ```ts
 * import { runStudy } from "./mod.ts";
 * const run = await runStudy([1, 2], (n) => `n${n}`, (n) => Promise.resolve(n * 2));
 * console.assert(run.results.length === 2);
 * ```
 *
 * @module
 */
export {
  formatProgress,
  type RunOptions,
  runOptions,
  runStudy,
  type Shard,
  shardItems,
  type StudyCalibration,
  type StudyDescription,
  type StudyFailure,
  type StudyOptions,
  type StudyProgress,
  type StudyRecord,
  type StudyRun,
} from "./runner.ts";
export {
  headerDifferences,
  readResults,
  RESULTS_FORMAT,
  type ResultsContent,
  ResultsFile,
  type ResultsHeader,
  writeAtomically,
} from "./results-file.ts";
export { resultFromFile, type StudyResult } from "./result-from-file.ts";
export {
  CALIBRATION_ADAPT_MIN_SAMPLES,
  CALIBRATION_ROWS,
  runCalibratedStudy,
  type StudyProfilePlan,
  studyProfilePlan,
} from "./self-calibration.ts";
export { checkShard, type Environment, parseShard, shardFromEnvironment } from "./shard.ts";
export { formatMergeReport, type MergeReport, mergeResults } from "./merge.ts";
export {
  contentId,
  type IdPart,
  imageIdPart,
  numberRepeats,
  withContentIds,
} from "./content-id.ts";
export {
  describeStudy,
  estimatorOptions,
  estimatorSettings,
  optionKind,
} from "./study-description.ts";
export { rowSeed } from "./row-seed.ts";
export {
  type GlobalThreshold,
  iou,
  PAPER_THRESHOLDS,
  selectGlobalThreshold,
  thresholdIous,
} from "./iou.ts";
export {
  type CocoItLocalizationDataset,
  cocoItRows,
  type CocoLocalizationDataset,
  cocoRows,
  type GroundTruth,
  type LocalizationDataset,
  type LocalizationRow,
  localizationRows,
  shapesLocalizationRows,
} from "./localization-rows.ts";
export {
  type AttentionDraws,
  localizationStudy,
  type LocalizationStudyOptions,
} from "./localization.ts";
export {
  ATTENTION_METHODS,
  LOCALIZATION_METHODS,
  type LocalizationMaps,
  type LocalizationMethod,
  type LocalizationRecord,
  LocalizationResult,
  type LocalizationResultInit,
  type LocalizationResultJSON,
  type LocalizationSummaryRow,
  PAPER_LOCALIZATION_METHODS,
} from "./localization-result.ts";
export { aroItemId, relationStudy, type RelationStudyOptions } from "./relations.ts";
export {
  type Accuracy,
  ARO_MIN_ATTRIBUTE_ITEMS,
  ARO_SYMMETRIC_RELATIONS,
  binomialAccuracy,
  type MacroAccuracy,
  macroAccuracy,
  type RelationRecord,
  RelationsResult,
  type RelationsResultJSON,
} from "./relations-result.ts";
export {
  interveneOne,
  INTERVENTION_SAMPLES,
  type InterventionCase,
  interventionId,
  type InterventionItem,
  interventionPrompts,
  type InterventionSampler,
  interventionStudy,
  type InterventionStudyOptions,
} from "./intervention.ts";
export {
  type InterventionRecord,
  InterventionResult,
  type InterventionResultJSON,
  type InterventionRow,
  type InterventionSummary,
  type NatsWithError,
} from "./intervention-result.ts";
export { type PidRow, pidRowId, pidStudy, type PidStudyOptions } from "./pid-study.ts";
export {
  PidStudyResult,
  type PidStudyResultJSON,
  type PidStudyRow,
  type PidStudyTerm,
} from "./pid-study-result.ts";
export type { ImageFit } from "../images/load-image.ts";
