// Every backend runs the one conformance suite (tests/conformance.ts).
import { denoiserConformance } from "./conformance.ts";
import { mixtureDenoiser } from "../src/models/mixture.ts";
import { flowOracle } from "../src/models/flow-oracle.ts";
import { flowConvention } from "../src/models/flow.ts";
import { EXAMPLE_PROMPT, exampleDenoiser } from "../src/models/example.ts";
import { shapesDenoiser } from "../src/models/shapes-oracle.ts";
import { shapesWorld } from "../src/datasets/shapes/world.ts";
import { loadOnnxDenoiser } from "../src/models/onnx/load-model.ts";
import { packCalls } from "../src/models/packed-calls.ts";

denoiserConformance("mixtureDenoiser", {
  create: () =>
    Promise.resolve(mixtureDenoiser({
      shape: [2, 2, 3],
      components: [
        { words: ["red"], mean: [1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1, 0], variance: 0.3 },
        { words: ["blue"], mean: [0, 0, 1, 0, 0, 1, 1, 0, 0, 1, 0, 0], variance: 0.2, weight: 2 },
      ],
      batchSize: 4,
    })),
  prompt: "a red one",
});

// the exact flow oracle: the mixture as a rectified flow, through the flow conversion
denoiserConformance("flowOracle", {
  create: () =>
    Promise.resolve(flowOracle({
      shape: [2, 2, 3],
      components: [
        { words: ["red"], mean: [1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1, 0], variance: 0.3 },
        { words: ["blue"], mean: [0, 0, 1, 0, 0, 1, 1, 0, 0, 1, 0, 0], variance: 0.2, weight: 2 },
      ],
      batchSize: 4,
      convention: flowConvention({ shift: 3, useDynamicShifting: false }),
    })),
  prompt: "a red one",
});

denoiserConformance("exampleDenoiser", {
  create: () => Promise.resolve(exampleDenoiser()),
  prompt: EXAMPLE_PROMPT,
});

const world = shapesWorld({ seed: 3, count: 12, size: 16 });
denoiserConformance("shapesDenoiser", {
  create: () => Promise.resolve(shapesDenoiser(world)),
  prompt: world.scenes[0].caption,
});

// Every ONNX fixture in the SD layout (nan-unet is the broken one: its own tests cover it).
const ONNX_FIXTURES = [
  "pixel-space",
  "sd-fixedbatch",
  "sd-floatt-weightspb",
  "sd-fp16",
  "sd-int32-int64t",
  "sd-scalart-onnxdata",
  "sd-vpred",
  "attention-tiny",
  "attention-tiny-external",
  "attention-fused",
  "shapes-tiny",
  "sd-ort-names",
  "sd-random-vae",
  "sd-unnamed-inputs",
];
for (const fixture of ONNX_FIXTURES) {
  denoiserConformance(`onnx ${fixture}`, {
    create: () => loadOnnxDenoiser(`fixtures/models/${fixture}`, { device: "cpu", batchSize: 4 }),
    prompt: "a red circle",
    // fp16 compute rounds differently when items share a call
    batchTolerance: fixture === "sd-fp16" ? 2e-3 : 1e-5,
  });
}

// SDXL, SD 3 and FLUX.1: the tiny diffusers pipelines exported by optimum-onnx (equal to diffusers:
// tests/onnx-family-diffusers.test.ts) and the exact-Gaussian fixtures with their I/O
// (tests/onnx-family-truth.test.ts), through the same contract.
const FAMILY_FIXTURES = [
  "tiny-sdxl",
  "tiny-sd3",
  "tiny-flux",
  "tiny-flux-schnell",
  "exact-sdxl",
  "exact-sd3",
  "exact-flux",
];
for (const fixture of FAMILY_FIXTURES) {
  denoiserConformance(`onnx ${fixture}`, {
    create: () => loadOnnxDenoiser(`fixtures/models/${fixture}`, { device: "cpu", batchSize: 4 }),
    prompt: "a red circle",
  });
}

// The packing decorator studies put around a model is a backend too, over a pure-JS oracle, a
// per-item-α export and a scalar-timestep one (passed through).
denoiserConformance("packCalls(exampleDenoiser)", {
  create: () => Promise.resolve(packCalls(exampleDenoiser(), 4)),
  prompt: EXAMPLE_PROMPT,
});
for (const fixture of ["pixel-space", "sd-scalart-onnxdata"]) {
  denoiserConformance(`packCalls(onnx ${fixture})`, {
    create: async () =>
      packCalls(
        await loadOnnxDenoiser(`fixtures/models/${fixture}`, { device: "cpu", batchSize: 4 }),
      ),
    prompt: "a red circle",
    batchTolerance: 1e-5,
  });
}
