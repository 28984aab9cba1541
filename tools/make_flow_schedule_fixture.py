"""The flow-matching schedules diffusers' SD3 and FLUX pipelines step through, for
tests/flow-ode.test.ts (infodiff's flowTimes must give the same levels).

For each scheduler config (SD3's, FLUX.1-dev's, FLUX.1-schnell's) and number of steps, the sigmas
the pipeline sets, as the pipeline sets them:
  - SD3 (pipeline_stable_diffusion_3.py): scheduler.set_timesteps(steps) (no sigmas passed);
  - FLUX (pipeline_flux.py): sigmas = np.linspace(1.0, 1 / steps, steps),
    mu = calculate_shift(image_seq_len, base_image_seq_len, max_image_seq_len, base_shift, max_shift),
    scheduler.set_timesteps(sigmas=sigmas, mu=mu);
and FlowMatchHeunDiscreteScheduler's levels for SD3's config. The trailing 0 diffusers appends is
dropped.

Run: out/venv-tools/bin/python tools/make_flow_schedule_fixture.py  (writes fixtures/flow/schedules.json)
"""

import json
from pathlib import Path

import diffusers
import numpy as np
from diffusers import FlowMatchEulerDiscreteScheduler, FlowMatchHeunDiscreteScheduler
from diffusers.pipelines.flux.pipeline_flux import calculate_shift

# scheduler_config.json of stabilityai/stable-diffusion-3-medium-diffusers, black-forest-labs/FLUX.1-dev
# and black-forest-labs/FLUX.1-schnell
SD3 = {"num_train_timesteps": 1000, "shift": 3.0}
FLUX_DEV = {
    "base_image_seq_len": 256,
    "base_shift": 0.5,
    "max_image_seq_len": 4096,
    "max_shift": 1.15,
    "num_train_timesteps": 1000,
    "shift": 3.0,
    "use_dynamic_shifting": True,
}
FLUX_SCHNELL = {
    "base_image_seq_len": 256,
    "base_shift": 0.5,
    "max_image_seq_len": 4096,
    "max_shift": 1.15,
    "num_train_timesteps": 1000,
    "shift": 1.0,
    "use_dynamic_shifting": False,
}


def sd3(steps):
    scheduler = FlowMatchEulerDiscreteScheduler(**SD3)
    scheduler.set_timesteps(steps)
    return scheduler.sigmas[:-1].tolist()


def heun(steps):
    scheduler = FlowMatchHeunDiscreteScheduler(**SD3)
    scheduler.set_timesteps(steps)
    # Heun repeats each inner level (two model calls per step); the levels themselves:
    return list(dict.fromkeys(scheduler.sigmas[:-1].tolist()))


def flux(config, steps, image_seq_len):
    scheduler = FlowMatchEulerDiscreteScheduler(**config)
    mu = calculate_shift(
        image_seq_len,
        config["base_image_seq_len"],
        config["max_image_seq_len"],
        config["base_shift"],
        config["max_shift"],
    )
    scheduler.set_timesteps(sigmas=np.linspace(1.0, 1 / steps, steps), mu=mu)
    return mu, scheduler.sigmas[:-1].tolist()


cases = []
for steps in (4, 28, 50):
    cases.append({"pipeline": "sd3", "scheduler": SD3, "steps": steps, "sigmas": sd3(steps)})
    cases.append({"pipeline": "sd3-heun", "scheduler": SD3, "steps": steps, "sigmas": heun(steps)})
for steps in (4, 28):
    for seq in (1024, 4096):
        mu, sigmas = flux(FLUX_DEV, steps, seq)
        cases.append({"pipeline": "flux", "scheduler": FLUX_DEV, "steps": steps,
                      "imageSeqLen": seq, "mu": mu, "sigmas": sigmas})
    mu, sigmas = flux(FLUX_SCHNELL, steps, 4096)
    cases.append({"pipeline": "flux", "scheduler": FLUX_SCHNELL, "steps": steps,
                  "imageSeqLen": 4096, "mu": mu, "sigmas": sigmas})

out = Path(__file__).resolve().parent.parent / "fixtures" / "flow" / "schedules.json"
out.write_text(json.dumps({"diffusers": diffusers.__version__, "cases": cases}, indent=1) + "\n")
print(f"wrote {len(cases)} schedules to {out}")
