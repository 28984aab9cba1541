export {
  ClipTokenizer,
  type ClipTokenizerConfig,
  loadTokenizer,
  type TokenizedPrompt,
  type WordPositions,
} from "./src/models/onnx/tokenizer.ts";
