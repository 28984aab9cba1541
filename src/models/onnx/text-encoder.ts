/**
 * A text encoder of a diffusers ONNX export (CLIP or T5): `input_ids` (int32 or int64, [B, tokens])
 * → `last_hidden_state` ([B, tokens, hidden], float32 or float16) and, for the pipelines that read
 * them, its other outputs (`hidden_states.N`, `text_embeds`, `pooler_output`), as read from the
 * session metadata.
 *
 * @module
 */
import { type InferenceSession, Tensor } from "npm:onnxruntime-node@1.30.0";
import { ModelLoadError, ModelRuntimeError } from "../../errors.ts";
import { fromFloat16Bits } from "./float16.ts";
import { describeTensors, inputInfo, outputInfo, type TensorInfo } from "./session.ts";
import { matchTensor, onlyInput, TEXT_INPUT, TEXT_OUTPUT } from "./tensor-roles.ts";

/** Encoded text: the hidden states of every position, row-major [contextLength, hiddenSize]. */
export interface EncodedText {
  /** last_hidden_state of one prompt, [contextLength · hiddenSize] */
  readonly lastHiddenState: Float32Array;
  /** number of token positions (77 for CLIP) */
  readonly contextLength: number;
  /** width of one hidden state (768 for SD 1.x, 1024 for SD 2.x) */
  readonly hiddenSize: number;
}

/**
 * Runs an SD text encoder session on padded token ids.
 *
 * @example
 * ```ts ignore
 * import { OnnxTextEncoder } from "./text-encoder.ts";
 * const encoder = new OnnxTextEncoder(session, "text_encoder/model.onnx");
 * const { lastHiddenState } = await encoder.encode(tokenizer.inputIds("a red circle"));
 * ```
 */
export class OnnxTextEncoder {
  /** the session (owned by the model, which disposes it) */
  readonly session: InferenceSession;
  /** dtype of `input_ids`: int32 (older exports) or int64 */
  readonly idsType: "int32" | "int64";
  /** the export's name for the token ids (`input_ids`) */
  readonly idsName: string;
  /** the export's name for the hidden states (`last_hidden_state`, or `text_embeddings`) */
  readonly outputName: string;
  /** dtype of `last_hidden_state` */
  readonly outputType: "float32" | "float16";
  /** token positions per prompt, from the metadata (or the tokenizer when symbolic) */
  readonly contextLength: number | undefined;
  /** width of the hidden states, from the metadata (undefined when symbolic) */
  readonly hiddenSize: number | undefined;
  /** every output of the graph, by name */
  readonly outputs: ReadonlyMap<string, TensorInfo>;
  /** total milliseconds spent in session.run */
  runMs = 0;
  /** session.run calls */
  runs = 0;

  /** @param session a text-encoder session; @param source its path, for messages */
  constructor(session: InferenceSession, readonly source: string) {
    this.session = session;
    const inputs = inputInfo(session);
    const outputs = outputInfo(session);
    const ids = onlyInput(inputs, TEXT_INPUT, source, "input_ids int32/int64 [B,77]");
    const hidden = matchTensor(outputs, TEXT_OUTPUT, `${source} outputs`);
    if (ids.type !== "int32" && ids.type !== "int64") {
      throw new ModelLoadError(
        `${source}: input_ids has type ${ids.type}; expected int32 or int64`,
      );
    }
    if (hidden.type !== "float32" && hidden.type !== "float16") {
      throw new ModelLoadError(
        `${source}: last_hidden_state has type ${hidden.type}; expected float32 or float16`,
      );
    }
    if (ids.shape.length !== 2) {
      throw new ModelLoadError(`${source}: input_ids has shape [${ids.shape}]; expected [B, 77]`);
    }
    this.outputs = outputs;
    this.idsName = ids.name;
    this.outputName = hidden.name;
    this.idsType = ids.type as "int32" | "int64";
    this.outputType = hidden.type as "float32" | "float16";
    this.contextLength = typeof ids.shape[1] === "number" ? ids.shape[1] : undefined;
    this.hiddenSize = typeof hidden.shape[2] === "number" ? hidden.shape[2] : undefined;
  }

  /** Encodes one prompt's padded ids (length = context length) into its hidden states. */
  async encode(inputIds: Int32Array): Promise<EncodedText> {
    const output = (await this.run(inputIds, [this.outputName])).get(this.outputName)!;
    const [, positions, hiddenSize] = output.dims;
    return { lastHiddenState: output.values, contextLength: positions, hiddenSize };
  }

  /**
   * Runs the encoder on one prompt's padded ids and returns the named outputs, each as float32
   * values (fp16 outputs widened) with its dims: what SDXL, SD 3 and FLUX.1 read besides
   * `last_hidden_state` (`hidden_states.N`, `text_embeds`, `pooler_output`).
   *
   * @throws {ModelRuntimeError} wrong number of ids, an output the graph lacks, non-finite values
   */
  async run(inputIds: Int32Array, names: readonly string[]): Promise<Map<string, EncoderOutput>> {
    if (this.contextLength !== undefined && inputIds.length !== this.contextLength) {
      throw new ModelRuntimeError(
        `${this.source}: got ${inputIds.length} token ids; the text encoder expects ${this.contextLength}`,
      );
    }
    const absent = names.filter((name) => !this.outputs.has(name));
    if (absent.length > 0) {
      throw new ModelRuntimeError(
        `${this.source}: has no output ${absent.join(", ")}; found outputs ${
          describeTensors(new Map(this.outputs))
        }`,
      );
    }
    const data = this.idsType === "int64"
      ? BigInt64Array.from(inputIds, (id) => BigInt(id))
      : Int32Array.from(inputIds);
    const feeds = { [this.idsName]: new Tensor(this.idsType, data, [1, inputIds.length]) };
    const start = performance.now();
    const results = await this.session.run(feeds, [...names]);
    this.runMs += performance.now() - start;
    this.runs++;
    const out = new Map<string, EncoderOutput>();
    for (const name of names) {
      const output = results[name];
      const values = output.type === "float16"
        ? fromFloat16Bits(output.data as Uint16Array)
        : Float32Array.from(output.data as Float32Array);
      const dims = [...output.dims];
      output.dispose();
      for (let i = 0; i < values.length; i++) {
        if (!Number.isFinite(values[i])) {
          throw new ModelRuntimeError(
            `${this.source}: ${name} contains ${values[i]} at index ${i}; expected finite values`,
          );
        }
      }
      out.set(name, { values, dims });
    }
    return out;
  }
}

/** One output of a text encoder run: its float32 values, row-major, and its dims. */
export interface EncoderOutput {
  /** the values (fp16 outputs widened to float32) */
  readonly values: Float32Array;
  /** the dims, batch first ([1, tokens, width] or [1, width]) */
  readonly dims: readonly number[];
}
