"""A new i2v job's first frame is VAE-encoded on the engine's loop thread while finished jobs are
VAE-decoded on its decode thread, on the same VAE: the two must never overlap (diffusers' Wan VAE
clears its feature cache in `encode`, which broke a decode in flight: found by `paddock loadtest`)."""

from __future__ import annotations

import threading
from typing import Any

import torch

from model.backends.base import Backend
from model.registry import TaskFamily
from model.sample_jobs import sample_job


def finished_states(backend: Backend[Any], count: int) -> list[Any]:
    """Prepared t2v jobs whose latents stand in for denoised ones (decode reads only those)."""
    return [backend.prepare(sample_job(TaskFamily.T2V, seed, frames=33)) for seed in range(count)]


def test_encoding_a_first_frame_never_breaks_a_decode_in_flight(ti2v: Backend[Any]) -> None:
    states = finished_states(ti2v, 2)
    errors: list[BaseException] = []
    stop = threading.Event()

    def admit_i2v_jobs() -> None:  # what the engine's loop thread does
        seed = 100
        while not stop.is_set():
            try:
                ti2v.prepare(sample_job(TaskFamily.I2V, seed, frames=33))
            except BaseException as exc:
                errors.append(exc)
            seed += 1

    admitting = threading.Thread(target=admit_i2v_jobs)
    admitting.start()
    try:
        torch.set_num_threads(1)
        for _ in range(8):  # what the engine's decode thread does, over and over meanwhile
            clips = ti2v.decode(states)
            assert [clip.frames.shape[0] for clip in clips] == [33, 33]
    finally:
        stop.set()
        admitting.join()
    assert not errors, errors
