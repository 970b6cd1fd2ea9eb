"""model.step: the contract at the bottom of model/ (batch keys, job state), loaded without torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from model.registry import TaskFamily
from model.sample_jobs import sample_job
from model.step import LOCAL_RUNNER, BatchKey, JobState

REPO = Path(__file__).resolve().parents[2]


def state(
    shape: tuple[int, ...], *, guided: bool, steps: int = 3, cache: str | None = None
) -> JobState[None]:
    sampler = FlowMatchEulerDiscreteScheduler()
    sampler.set_timesteps(steps)
    return JobState(
        job=sample_job(TaskFamily.T2V, 1, steps=steps),
        backend_id="wan-ti2v@1",
        latents=torch.zeros(shape),
        scheduler=sampler,
        timesteps=sampler.timesteps,
        prompt_embeds=torch.zeros(1, 4, 8),
        negative_embeds=torch.zeros(1, 4, 8) if guided else None,
        guidance_scale=5.0,
        tokens=12,
        extra=None,
        cache_context=cache,
    )


def test_step_and_registry_load_without_torch() -> None:
    code = "import sys, model.step, model.request\nprint('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_batch_keys_match_on_every_field_and_the_backends_variant() -> None:
    a = state((1, 48, 2, 2, 3), guided=True)
    assert a.batch_key(0) == state((1, 48, 2, 2, 3), guided=True).batch_key(0)
    assert a.batch_key(0) == BatchKey("wan-ti2v@1", (1, 48, 2, 2, 3), True, None, 0)
    assert a.batch_key(0) != a.batch_key(1)  # e.g. another expert
    assert a.batch_key() != state((1, 48, 2, 3, 2), guided=True).batch_key()
    assert a.batch_key() != state((1, 48, 2, 2, 3), guided=False).batch_key()
    assert a.batch_key() != state((1, 48, 2, 2, 3), guided=True, cache="job-1").batch_key()
    assert len({a.batch_key(0), a.batch_key(0), a.batch_key(1)}) == 2  # hashable


def test_state_counts_steps_and_guided_tokens() -> None:
    guided, plain = state((1, 4), guided=True, steps=2), state((1, 4), guided=False)
    assert (guided.cost, plain.cost) == (24, 12)
    assert (guided.total_steps, guided.done, float(guided.timestep)) == (2, False, 1000.0)
    guided.step = 1
    assert float(guided.timestep) == 1.0 and not guided.done
    guided.step = 2
    assert guided.done


def test_the_local_runner_calls_the_transformer_once() -> None:
    calls: list[dict[str, object]] = []

    def transformer(**inputs: object) -> tuple[torch.Tensor]:
        calls.append(inputs)
        return (torch.ones(2, 3),)

    assert LOCAL_RUNNER.run(transformer, hidden_states=torch.zeros(2, 3)).shape == (2, 3)
    assert len(calls) == 1 and calls[0]["return_dict"] is False
