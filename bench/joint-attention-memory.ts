/**
 * Peak memory per item of the transformers' joint-attention maps at FLUX.1's real size (issue 25,
 * part 5): 1,024² images are 4,096 image tokens beside 512 T5 tokens, 24 heads. The graph is a
 * stand-in with FLUX.1's attention shapes and node names, not its weights: per block, the
 * probabilities softmax(q·kᵀ) [1, 24, 4,608, 4,608] (q, k one value a token, so the block costs
 * its softmax, not its matmuls; `--model` below runs real blocks), under
 * `/transformer_blocks.N/attn/Softmax` (2 double-stream) and `/single_transformer_blocks.N/...`
 * (2 single-stream). infodiff's graph edit (addJointAttentionBlocks, the capability's own) is
 * applied both ways: every layer's [24, 4,096, 512] block returned (what a small model gets), and
 * the in-graph mean over heads and layers (what a model past JOINT_ATTENTION_BUDGET gets). Each
 * runs in its own process; the peak resident memory (ru_maxrss) and the bytes handed back are printed.
 *
 * Measured 2026-12-05 (2 shared CPU cores, onnxruntime-node 1.30.0, 4 blocks): every layer's block
 * 805 MB of maps an item, peak 10.2 GB, 38 s; aggregated 8.4 MB an item, peak 8.8 GB, 14 s. The
 * peak's floor is the eager attention itself (each block's 24 × 4,608² scores and probabilities,
 * 2 GB each), which an unfused export computes anyway; the maps add 1.4 GB over it at 4 blocks,
 * and would add 57/4 × 805 MB = 11.5 GB at FLUX.1's 57 without the aggregation, 8.4 MB with it.
 *
 * With `--model PATH`, a real FLUX.1 transformer export instead of the stand-in: FLUX.1-dev's width
 * (3,072 = 24 heads × 128, T5 states of 4,096, a pooled CLIP vector of 768, 64 input channels),
 * few blocks and random weights, made by tools/make_flux_realwidth.py (optimum's unfused export,
 * external data, under out/). It is read and edited as the capability reads and edits a
 * transformer (readAttentionGraph, jointAttentionLayers, addJointAttentionBlocks), opened as
 * infodiff opens the edited graph (sessionFactory's createFromBytes, its weights from the file's
 * folder) and fed one 1,024² item (4,096 image tokens, 512 text tokens, seeded Gaussian values).
 *
 * Measured 2026-12-05 (2 CPU cores shared with other work, load average 7–11, under nice -n 10;
 * deno 2.9.6, onnxruntime-node 1.30.0; exports by torch 2.9.1, diffusers 0.36.0, optimum-onnx 0.1.0;
 * peak RSS, maps an item, wall seconds (user CPU seconds)):
 * - 1 double + 1 single block (546 M parameters, model.onnx_data 2.18 GB; 2.44 GB resident before
 *   the run): every layer's block 403 MB, peak 9.54 GB, 106 s (37 s); aggregated 8.4 MB, peak
 *   9.15 GB, 87 s (37 s).
 * - 2 + 2 blocks (1.03 G parameters, 4.11 GB; 4.38 GB before the run): every layer's block 805 MB,
 *   peak 16.0 GB, 191 s (74 s); aggregated 8.4 MB, peak 11.1 GB, 150 s (73 s).
 * Aggregated, the attention costs 6.7 GB over the weights at either depth: it does not grow with
 * the blocks. Every layer's block returned, it grew by about 2.3 GB a block while the edit added
 * its Slice nodes in layer order: onnxruntime then ran them after the transformer's last block, so
 * every layer's [24, 4,608, 4,608] probabilities (2 GB) stayed alive until then. Added in reverse,
 * each runs right after its own block: 2 + 2 blocks, every layer's block, peak 11.8 GB, 106 s
 * (was 16.0 GB), 0.7 GB above the in-graph mean.
 *
 *   deno run --allow-read --allow-write --allow-env --allow-ffi --allow-sys --allow-run \
 *     bench/joint-attention-memory.ts [layers|aggregated] [--model out/flux-realwidth/transformer/model.onnx]
 *
 * @module
 */
import { resourceUsage } from "node:process";
import onnxProto from "npm:onnx-proto@8.0.1";
import * as ort from "npm:onnxruntime-node@1.30.0";
import {
  addJointAttentionBlocks,
  jointAttentionLayers,
  readAttentionGraph,
} from "../src/models/onnx/attention-graph.ts";
import { sessionFactory } from "../src/models/onnx/session.ts";
import { Random } from "../src/numerics/random.ts";

const { onnx } = onnxProto;
const HEADS = 24, IMAGE = 4096, TEXT = 512, N = IMAGE + TEXT;
const BLOCKS = [
  "/transformer_blocks.0",
  "/transformer_blocks.1",
  "/single_transformer_blocks.0",
  "/single_transformer_blocks.1",
];

/** The stand-in: x [1, 24, N, 1] → per block softmax(c·x·xᵀ), each reduced into the output. */
function standIn(): Uint8Array {
  const value = (name: string, dims: number[]) => ({
    name,
    type: { tensorType: { elemType: 1, shape: { dim: dims.map((d) => ({ dimValue: d })) } } },
  });
  type Node = {
    name?: string;
    opType: string;
    input: string[];
    output: string[];
    attribute: { name: string; type: number; ints?: number[]; i?: number }[];
  };
  const nodes: Node[] = [{
    opType: "Transpose",
    input: ["x"],
    output: ["xt"],
    attribute: [{ name: "perm", type: onnx.AttributeProto.AttributeType.INTS, ints: [0, 1, 3, 2] }],
  }];
  const initializer: { name: string; dataType: number; dims: number[]; floatData: number[] }[] = [];
  let out = "";
  BLOCKS.forEach((block, i) => {
    const scale = `${block}/scale`, probs = `${block}/attn/Softmax_output_0`;
    initializer.push({ name: scale, dataType: 1, dims: [], floatData: [1 + i] });
    nodes.push(
      { opType: "Mul", input: ["x", scale], output: [`${block}/q`], attribute: [] },
      { opType: "MatMul", input: [`${block}/q`, "xt"], output: [`${block}/scores`], attribute: [] },
      {
        opType: "Softmax",
        input: [`${block}/scores`],
        output: [probs],
        attribute: [{ name: "axis", type: onnx.AttributeProto.AttributeType.INT, i: -1 }],
      },
      {
        opType: "ReduceMean",
        input: [probs],
        output: [`${block}/mean`],
        attribute: [{ name: "keepdims", type: onnx.AttributeProto.AttributeType.INT, i: 0 }],
      },
    );
    const next = `${block}/out`;
    nodes.push(
      out
        ? { opType: "Add", input: [out, `${block}/mean`], output: [next], attribute: [] }
        : { opType: "Identity", input: [`${block}/mean`], output: [next], attribute: [] },
    );
    out = next;
  });
  nodes.forEach((node, i) => Object.assign(node, { name: `${node.output[0]}_node${i}` }));
  // the Softmax nodes carry the exporter's names
  nodes.filter((n) => n.opType === "Softmax").forEach((n) =>
    Object.assign(n, { name: n.output[0].replace("_output_0", "") })
  );
  return onnx.ModelProto.encode({
    irVersion: 8,
    opsetImport: [{ domain: "", version: 18 }],
    graph: {
      name: "flux-attention-stand-in",
      node: nodes,
      initializer,
      input: [value("x", [1, HEADS, N, 1])],
      output: [{ name: out }],
    },
  }).finish();
}

/** The process's peak resident memory (getrusage's ru_maxrss, kB). */
function peakRss(): number {
  return resourceUsage().maxRSS * 1024;
}

type Mode = "layers" | "aggregated";

/** The stand-in, edited: its four blocks' Softmax outputs under the exporter's names. */
async function standInSession(mode: Mode) {
  const layers = BLOCKS.map((block) => ({
    node: `${block}/attn/Softmax`,
    output: `${block}/attn/Softmax_output_0`,
  }));
  const edited = addJointAttentionBlocks(
    standIn(),
    layers,
    { order: "text-image", textTokens: TEXT },
    mode === "aggregated",
  );
  const session = await ort.InferenceSession.create(edited.bytes, {
    executionProviders: ["cpu"],
    intraOpNumThreads: 2,
  });
  const x = new Float32Array(HEADS * N).map((_, i) => Math.sin(i) * 0.1);
  return {
    session,
    outputs: edited.outputs,
    feeds: { x: new ort.Tensor("float32", x, [1, HEADS, N, 1]) },
  };
}

/**
 * A real FLUX.1 transformer export (tools/make_flux_realwidth.py), read and edited as the
 * capability does (readAttentionGraph, jointAttentionLayers, addJointAttentionBlocks) and opened as
 * infodiff opens an edited transformer (sessionFactory's createFromBytes: its external weights from
 * the file's folder); fed one 1,024² item: 4,096 packed latent tokens × 64, 512 T5 states × 4,096,
 * a pooled CLIP vector, FLUX.1's ids, t = 0.5 and guidance 1 (Gaussian values, seed 0).
 */
async function modelSession(path: string, mode: Mode) {
  const bytes = Deno.readFileSync(path);
  const layers = jointAttentionLayers(readAttentionGraph(bytes, path));
  if (typeof layers === "string") throw new Error(layers);
  const edited = addJointAttentionBlocks(
    bytes,
    layers,
    { order: "text-image", textTokens: TEXT },
    mode === "aggregated",
  );
  const session = await sessionFactory({ device: "cpu", threads: 2 }).createFromBytes(
    edited.bytes,
    path,
  );
  const random = new Random(0);
  const gaussian = (n: number) => Float32Array.from({ length: n }, () => random.gaussian());
  const side = Math.sqrt(IMAGE);
  const imageIds = new Float32Array(IMAGE * 3).map((_, i) =>
    i % 3 === 1 ? Math.floor(i / 3 / side) : i % 3 === 2 ? (i / 3) % side : 0
  );
  const feeds: Record<string, ort.Tensor> = {
    hidden_states: new ort.Tensor("float32", gaussian(IMAGE * 64), [1, IMAGE, 64]),
    encoder_hidden_states: new ort.Tensor("float32", gaussian(TEXT * 4096), [1, TEXT, 4096]),
    pooled_projections: new ort.Tensor("float32", gaussian(768), [1, 768]),
    timestep: new ort.Tensor("float32", Float32Array.of(0.5), [1]),
    img_ids: new ort.Tensor("float32", imageIds, [IMAGE, 3]),
    txt_ids: new ort.Tensor("float32", new Float32Array(TEXT * 3), [TEXT, 3]),
    guidance: new ort.Tensor("float32", Float32Array.of(1), [1]),
  };
  return { session, outputs: edited.outputs, feeds, layers: layers.map((l) => l.node) };
}

async function measure(mode: Mode, model?: string): Promise<void> {
  const { session, outputs, feeds, layers } = model
    ? await modelSession(model, mode)
    : { ...await standInSession(mode), layers: BLOCKS };
  const before = peakRss();
  const started = performance.now();
  const result = await session.run(feeds);
  const seconds = (performance.now() - started) / 1000;
  const held = outputs.reduce(
    (n, name) => n + (result[name].data as Float32Array).byteLength,
    0,
  );
  const finite = Object.values(result).every((t) =>
    (t.data as Float32Array).every((v) => Number.isFinite(v))
  );
  console.log(JSON.stringify({
    mode,
    model: model ?? "stand-in",
    layers,
    outputs: outputs.length,
    dims: result[outputs[0]].dims,
    finite,
    mapBytesPerItem: held,
    peakRssBytes: peakRss(),
    peakRssBeforeRun: before,
    seconds: Number(seconds.toFixed(1)),
  }));
  await session.release();
}

if (import.meta.main) {
  const at = Deno.args.indexOf("--model");
  const model = at >= 0 ? Deno.args[at + 1] : undefined;
  if (at >= 0 && !model) throw new Error("--model takes the path of a transformer's model.onnx");
  const mode = Deno.args.find((_, i) => at < 0 || (i !== at && i !== at + 1));
  if (mode === "layers" || mode === "aggregated") await measure(mode, model);
  else {
    for (const m of ["layers", "aggregated"]) {
      const { stdout, stderr } = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-read",
          "--allow-write",
          "--allow-env",
          "--allow-ffi",
          "--allow-sys",
          import.meta.filename!,
          m,
          ...(model ? ["--model", model] : []),
        ],
      }).output();
      console.log(new TextDecoder().decode(stdout).trim() || new TextDecoder().decode(stderr));
    }
  }
}
