/**
 * Regenerates the shipped log-SNR profile of shapes-tiny
 * (fixtures/models/shapes-tiny/infodiff-logsnr-profile.json): 12 scenes of the TRAINING split
 * (the studies and benchmarks measure on the test split), 300 stratified draws per scene, 24 bins;
 * about 7 minutes on 2 cores.
 *
 * Usage: npx -y deno@2.9.6 run -A tools/calibrate_shapes_tiny.ts
 */
import { loadModel } from "../src/query/load-model.ts";
import { shapesWorld } from "../src/datasets/shapes/world.ts";
import { calibrateProfile } from "../src/estimators/calibrate.ts";
import { PROFILE_FILE, writeProfile } from "../src/models/profile-file.ts";

const dir = "fixtures/models/shapes-tiny";
const model = await loadModel(dir, { device: "cpu", profile: false });
const scenes = shapesWorld({ seed: 7, split: "train", count: 40 }).scenes
  .filter((s) => s.objects.length <= 2).slice(0, 12);
const profile = await calibrateProfile(
  model,
  scenes.map((s) => ({ data: s.toData(), prompt: s.caption })),
  { samples: 300 },
);
await writeProfile(`${dir}/${PROFILE_FILE}`, profile);
console.log(`wrote ${dir}/${PROFILE_FILE}`);
await model.dispose();
