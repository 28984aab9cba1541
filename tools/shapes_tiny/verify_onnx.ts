/**
 * Replays export.py's verification file with onnxruntime-node: the ONNX text encoder and UNet
 * must match torch within 1e-4, with the batch size of the export and another one (dynamic
 * axes). With the attention probe (UNet plus its attn2 Softmax outputs) it prints their shapes.
 *
 * Usage: deno run -A tools/shapes_tiny/verify_onnx.ts MODEL_DIR VERIFY_JSON [PROBE_ONNX]
 *
 * @module
 */
import { InferenceSession, Tensor } from "onnxruntime-node";

interface Verification {
  input_ids: number[];
  ids_shape: number[];
  last_hidden_state: number[];
  pooler_output: number[];
  sample: number[];
  sample_shape: number[];
  timestep: number[];
  out_sample: number[];
  hidden_shape: number[];
}

function maxAbsDiff(a: Float32Array, b: number[]): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

async function main(): Promise<void> {
  const [dir, verifyPath, probePath] = Deno.args;
  const v: Verification = JSON.parse(await Deno.readTextFile(verifyPath));
  const te = await InferenceSession.create(`${dir}/text_encoder/model.onnx`);
  const unet = await InferenceSession.create(`${dir}/unet/model.onnx`);
  const ids = new Tensor("int64", BigInt64Array.from(v.input_ids.map(BigInt)), v.ids_shape);
  const te_out = await te.run({ input_ids: ids });
  const dHidden = maxAbsDiff(te_out.last_hidden_state.data as Float32Array, v.last_hidden_state);
  const dPooled = maxAbsDiff(te_out.pooler_output.data as Float32Array, v.pooler_output);
  const feeds = {
    sample: new Tensor("float32", Float32Array.from(v.sample), v.sample_shape),
    timestep: new Tensor("int64", BigInt64Array.from(v.timestep.map(BigInt)), [v.timestep.length]),
    encoder_hidden_states: new Tensor(
      "float32",
      Float32Array.from(v.last_hidden_state),
      v.hidden_shape,
    ),
  };
  const eps = (await unet.run(feeds)).out_sample.data as Float32Array;
  const dEps = maxAbsDiff(eps, v.out_sample);
  // dynamic batch: the first item alone must give the same numbers
  const per = v.sample.length / v.sample_shape[0];
  const hid = v.last_hidden_state.length / v.hidden_shape[0];
  const one = await unet.run({
    sample: new Tensor("float32", Float32Array.from(v.sample.slice(0, per)), [1, 3, 32, 32]),
    timestep: new Tensor("int64", BigInt64Array.from([BigInt(v.timestep[0])]), [1]),
    encoder_hidden_states: new Tensor(
      "float32",
      Float32Array.from(v.last_hidden_state.slice(0, hid)),
      [1, ...v.hidden_shape.slice(1)],
    ),
  });
  const dOne = maxAbsDiff(one.out_sample.data as Float32Array, v.out_sample.slice(0, per));
  console.log(`text_encoder inputs ${te.inputNames} outputs ${te.outputNames}`);
  console.log(`unet inputs ${unet.inputNames} outputs ${unet.outputNames}`);
  console.log(
    `max |onnx - torch|: last_hidden_state ${dHidden.toExponential(2)}, ` +
      `pooler_output ${dPooled.toExponential(2)}, out_sample ${dEps.toExponential(2)}, ` +
      `out_sample batch 1 ${dOne.toExponential(2)}`,
  );
  if (probePath) {
    const probe = await InferenceSession.create(probePath);
    const out = await probe.run(feeds);
    for (const name of probe.outputNames) {
      const t = out[name];
      let rowSum = 0;
      const last = t.dims[t.dims.length - 1];
      for (let i = 0; i < last; i++) rowSum += (t.data as Float32Array)[i];
      console.log(`probe output ${name}: dims [${t.dims}] first row sums to ${rowSum.toFixed(6)}`);
    }
  }
  const ok = Math.max(dHidden, dPooled, dEps, dOne) < 1e-4;
  console.log(ok ? "OK: ONNX matches torch within 1e-4" : "FAIL: difference above 1e-4");
  if (!ok) Deno.exit(1);
}

await main();
