/**
 * Peak memory per item of the transformers' joint-attention maps at FLUX.1's real size (issue 25,
 * part 5): 1,024² images are 4,096 image tokens beside 512 T5 tokens, 24 heads. The graph is a
 * stand-in with FLUX.1's attention shapes and node names, not its weights: per block, the
 * probabilities softmax(q·kᵀ) [1, 24, 4,608, 4,608] (q, k one value a token, so the block costs
 * its softmax, not its matmuls: 2 CPU cores cannot run the real blocks here), under
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
 *   deno run --allow-read --allow-write --allow-env --allow-ffi --allow-sys --allow-run \
 *     bench/joint-attention-memory.ts [layers|aggregated]
 *
 * @module
 */
import { resourceUsage } from "node:process";
import onnxProto from "npm:onnx-proto@8.0.1";
import * as ort from "npm:onnxruntime-node@1.30.0";
import { addJointAttentionBlocks } from "../src/models/onnx/attention-graph.ts";

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

async function measure(mode: "layers" | "aggregated"): Promise<void> {
  const bytes = standIn();
  const layers = BLOCKS.map((block) => ({
    node: `${block}/attn/Softmax`,
    output: `${block}/attn/Softmax_output_0`,
  }));
  const edited = addJointAttentionBlocks(
    bytes,
    layers,
    { order: "text-image", textTokens: TEXT },
    mode === "aggregated",
  );
  const session = await ort.InferenceSession.create(edited.bytes, {
    executionProviders: ["cpu"],
    intraOpNumThreads: 2,
  });
  const x = new Float32Array(HEADS * N).map((_, i) => Math.sin(i) * 0.1);
  const before = peakRss();
  const started = performance.now();
  const result = await session.run({ x: new ort.Tensor("float32", x, [1, HEADS, N, 1]) });
  const seconds = (performance.now() - started) / 1000;
  const held = edited.outputs.reduce(
    (n, name) => n + (result[name].data as Float32Array).byteLength,
    0,
  );
  console.log(JSON.stringify({
    mode,
    outputs: edited.outputs.length,
    dims: result[edited.outputs[0]].dims,
    mapBytesPerItem: held,
    peakRssBytes: peakRss(),
    peakRssBeforeRun: before,
    seconds: Number(seconds.toFixed(1)),
  }));
  await session.release();
}

if (import.meta.main) {
  const mode = Deno.args[0];
  if (mode === "layers" || mode === "aggregated") await measure(mode);
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
        ],
      }).output();
      console.log(new TextDecoder().decode(stdout).trim() || new TextDecoder().decode(stderr));
    }
  }
}
