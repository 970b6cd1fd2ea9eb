"""`paddock plan calibrate`: measure what the planner needs from a running stack.

1. Each job class alone, `repeats` times: the server's phase histograms
   (`paddock_job_phase_seconds`), its step histogram (`paddock_step_duration_seconds`: steps per
   job and t(1)) and the task's own times give the class's work, phase by phase.
2. Bursts: `burst_jobs` jobs of the mix at once, so every slot is busy, `bursts` times. The
   batch-size and step histograms give how a shared forward scales (t(k), on a device of its
   own), and the burst's makespan fixes the one free parameter, how many activities the host
   runs at full speed at once: the simulation of each burst must take as long as the real one
   did, and the fits are averaged.

The lone rounds and the bursts alternate (lone, burst, lone, burst, ...), so the lone baseline
is a median over the whole calibration rather than one moment of it. Back to back, three lone
runs once came out 13 % faster than the same jobs alone before and after: every later
prediction inherits that error, and the burst fit cannot see it.

`from_bench` turns `paddock bench engine --real-size ...` output into a GPU variant instead.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import httpx

from loadtests.arrivals import Arrival, Schedule, plan_arrivals
from loadtests.generator import LoadConfig, LoadRun
from loadtests.plan.calibration import Calibration, ClassCalibration, Variant
from loadtests.plan.scrape import Reading, scrape
from loadtests.plan.simulate import Fleet, simulate
from loadtests.profile import JobClass, Profile
from loadtests.summary import JobRow

PRE_PHASES = ("load", "decode")
POST_PHASES = ("resample", "watermark", "audio", "encode", "upload")
PHASE_HISTOGRAM = "paddock_job_phase_seconds"
STEP_HISTOGRAM = "paddock_step_duration_seconds"
BATCH_HISTOGRAM = "paddock_batch_size"
PARALLELISM_RANGE = (0.25, 64.0)


@dataclass(frozen=True)
class StackRun:
    """How to reach the stack and what it is (the planner cannot read its settings over HTTP)."""

    base_url: str
    api_keys: tuple[str, ...]
    profile: Profile
    slots: int
    workers: int = 1
    metrics_urls: tuple[str, ...] = ()
    repeats: int = 3
    burst_jobs: int = 0  # 0: three jobs per slot of the stack
    bursts: int = 3
    variant: str = "measured"
    gpus_per_worker: int = 1
    step_cache: bool = False
    device_on_host: bool = True
    seed: int = 0
    # Polls cost the facade CPU, which `paddock serve` shares with its worker: poll as the load
    # tests the calibration is compared with do.
    poll_s: float = 0.5


@dataclass(frozen=True)
class _Alone:
    """One class run alone: the phases the server reported, and the task's service time."""

    pre_s: float
    generate_s: float
    post_s: float
    steps: float
    step_s: float | None
    service_s: float


def _phases(delta: Reading, phases: Sequence[str]) -> float:
    return sum(delta.total(f"{PHASE_HISTOGRAM}_sum", phase=p) for p in phases)


async def _measure_alone(run: LoadRun, index: int, metrics: list[str]) -> _Alone:
    before = await scrape(run.client, metrics)
    [row] = await run.run(arrivals=[Arrival(0, 0.0, index)])
    delta = (await scrape(run.client, metrics)).minus(before)
    if not row.succeeded or row.service_s is None:
        raise RuntimeError(f"calibration job of {row.job_class} ended {row.status} {row.code}".strip())
    return _Alone(
        pre_s=_phases(delta, PRE_PHASES),
        generate_s=_phases(delta, ("generate",)),
        post_s=_phases(delta, POST_PHASES),
        steps=delta.total(f"{STEP_HISTOGRAM}_count"),
        step_s=delta.mean(STEP_HISTOGRAM),
        service_s=row.service_s,
    )


def _class_calibration(samples: Sequence[_Alone]) -> ClassCalibration:
    """Medians over the repeats; the engine time that is not steps is the VAE decode (the metrics
    do not split it from the encode-once prepare, which is the smaller part on every backend)."""
    med = statistics.median
    steps = round(med(s.steps for s in samples))
    step_s = med(s.step_s for s in samples if s.step_s is not None) if steps else 0.0
    pre, generate, post = (
        med(s.pre_s for s in samples),
        med(s.generate_s for s in samples),
        med(s.post_s for s in samples),
    )
    service = med(s.service_s for s in samples)
    return ClassCalibration(
        steps=steps,
        step_s=step_s,
        vae_s=max(0.0, generate - steps * step_s),
        pre_s=pre,
        post_s=post,
        misc_s=max(0.0, service - pre - generate - post),
    )


def batch_slope(step_mean: float | None, batch_mean: float | None, alone_step: float) -> float:
    """β in t(k) = t(1)·(1 + β(k − 1)) from a burst's mean step time at mean batch size."""
    if step_mean is None or batch_mean is None or batch_mean < 1.05 or alone_step <= 0:
        return 1.0
    return min(1.0, max(0.0, (step_mean / alone_step - 1.0) / (batch_mean - 1.0)))


def makespan(rows: Sequence[JobRow]) -> float:
    submits = [r.submit_time for r in rows if r.submit_time is not None]
    ends = [r.end_time for r in rows if r.end_time is not None]
    return max(ends) - min(submits) if submits and ends else 0.0


def fit_parallelism(
    variant: Variant, fleet_slots: int, workers: int, names: Sequence[str], burst: Sequence[JobRow]
) -> float:
    """The host parallelism at which the simulated burst takes as long as the measured one."""
    first = min(r.submit_time for r in burst if r.submit_time is not None)
    index = {n: i for i, n in enumerate(names)}
    arrivals = [Arrival(r.index, (r.submit_time or first) - first, index[r.job_class]) for r in burst]
    target = makespan(burst)

    def simulated(parallelism: float) -> float:
        fleet = Fleet(replace(variant, host_parallelism=parallelism), workers, fleet_slots)
        return makespan(simulate(fleet, names, arrivals))

    low, high = PARALLELISM_RANGE
    if simulated(high) >= target:
        return high
    if simulated(low) <= target:
        return low
    for _ in range(30):  # makespan falls as parallelism grows: bisect on a log scale
        mid = math.sqrt(low * high)
        low, high = (mid, high) if simulated(mid) > target else (low, mid)
    return math.sqrt(low * high)


def _controlled(stack: StackRun, client: httpx.AsyncClient) -> LoadRun:
    """A load run that sends exactly the arrivals it is given (one job, or a burst)."""
    config = LoadConfig(
        base_url=stack.base_url,
        api_keys=stack.api_keys[:1],
        profile=stack.profile,
        schedule=Schedule(rate=1.0),
        jobs=0,
        poll_interval_s=(stack.poll_s, stack.poll_s),
        seed=stack.seed,
    )
    return LoadRun(config, client)


@dataclass(frozen=True)
class MachineNow:
    """The machine at one moment of a long test, against a calibration of it."""

    lone_s: float  # the first class alone (median of the repeats); nan if none succeeded
    parallelism: float  # host parallelism fitted to one burst, at the speed lone_s shows


def slowdown(lone_s: Sequence[float], calibrated: float) -> float:
    """How much slower the machine ran than at calibration: the mean of the lone times measured
    (nan: not measured) over the calibrated one; 1.0 when none was measured."""
    times = [t for t in lone_s if math.isfinite(t)]
    return statistics.fmean(times) / calibrated if times and calibrated > 0 else 1.0


async def machine_now(stack: StackRun, variant: Variant) -> MachineNow:
    """Time the first class alone (`stack.repeats` times) and one burst now. A shared machine
    changes both under a long test: its single-job speed (other work, thermal limits, the host
    of a virtual machine) and how much of the host a burst gets (a neighbour on the other cores)."""
    first = stack.profile.jobs[0].name
    async with httpx.AsyncClient(timeout=120.0) as client:
        run = _controlled(stack, client)
        await run.prepare_media()
        services = []
        for _ in range(stack.repeats):
            [row] = await run.run(arrivals=[Arrival(0, 0.0, 0)])
            if row.service_s is not None:
                services.append(row.service_s)
        lone = statistics.median(services) if services else math.nan
        if stack.slots * stack.workers == 1:
            return MachineNow(lone, variant.host_parallelism)
        burst, _ = await _burst(run, _burst_arrivals(stack), [])
    now = variant.slowed(slowdown([lone], variant.classes[first].alone_s))
    names = [job.name for job in stack.profile.jobs]
    return MachineNow(lone, fit_parallelism(now, stack.slots, stack.workers, names, burst))


def _burst_arrivals(stack: StackRun) -> list[Arrival]:
    """The burst: `burst_jobs` jobs of the mix (default three per slot), every one at time 0."""
    size = stack.burst_jobs or 3 * stack.slots * stack.workers
    plan = plan_arrivals(Schedule(rate=1.0), jobs=size, weights=stack.profile.weights, seed=stack.seed)
    return [Arrival(a.index, 0.0, a.job_class) for a in plan]


async def _burst(run: LoadRun, arrivals: list[Arrival], metrics: list[str]) -> tuple[list[JobRow], Reading]:
    """One burst and its metrics' change."""
    before = await scrape(run.client, metrics)
    burst = await run.run(arrivals=arrivals)
    delta = (await scrape(run.client, metrics)).minus(before)
    failed = [r for r in burst if not r.succeeded]
    if failed:
        first = failed[0]
        raise RuntimeError(f"{len(failed)} burst jobs did not succeed (first: {first.status} {first.code})")
    return burst, delta


def _burst_slope(burst: Sequence[JobRow], delta: Reading, classes: dict[str, ClassCalibration]) -> float:
    """β of one burst, against the lone step times of the classes it ran."""
    alone_step = statistics.fmean(classes[r.job_class].step_s for r in burst)
    return batch_slope(delta.mean(STEP_HISTOGRAM), delta.mean(BATCH_HISTOGRAM), alone_step)


async def calibrate_stack(stack: StackRun, log: Callable[[str], None] = print) -> Calibration:
    """Measure `stack` and return a one-variant calibration."""
    if stack.repeats < 1 or stack.bursts < 1:
        raise ValueError("a calibration needs at least one lone run of each class and one burst")
    profile = stack.profile
    metrics = list(stack.metrics_urls or (f"{stack.base_url}/metrics",))
    async with httpx.AsyncClient(timeout=120.0) as client:
        run = _controlled(stack, client)
        await run.prepare_media()
        log("calibrate: warming up (one job of each class)")
        await run.run(arrivals=[Arrival(i, 0.0, i) for i in range(len(profile.jobs))])
        arrivals = _burst_arrivals(stack)
        alone: list[list[_Alone]] = [[] for _ in profile.jobs]
        bursts: list[tuple[list[JobRow], Reading]] = []
        for round_ in range(max(stack.repeats, stack.bursts)):
            if round_ < stack.repeats:
                for i, samples in enumerate(alone):
                    samples.append(await _measure_alone(run, i, metrics))
                log(f"calibrate: lone round {round_ + 1}/{stack.repeats} done")
            if round_ < stack.bursts:
                bursts.append(await _burst(run, arrivals, metrics))
                took = f"{len(arrivals)} jobs at once took {makespan(bursts[-1][0]):.1f} s"
                log(f"calibrate: burst {round_ + 1}/{stack.bursts}: {took}")
    classes: dict[str, ClassCalibration] = {}
    for job, samples in zip(profile.jobs, alone, strict=True):
        found = classes[job.name] = _class_calibration(samples)
        log(f"calibrate: {job.name}: alone {found.alone_s:.2f} s ({_describe(found)})")
    # Every burst counts, as every lone round does: the load tests meet the machine's typical
    # moments, not its best one (fitting the fastest burst once put capacity 7 % high).
    slope = 1.0
    if not stack.device_on_host:
        slope = statistics.fmean(_burst_slope(burst, delta, classes) for burst, delta in bursts)
    classes = {name: replace(c, batch_slope=slope) for name, c in classes.items()}
    variant = Variant(
        name=stack.variant,
        classes=classes,
        gpus_per_worker=stack.gpus_per_worker,
        step_cache=stack.step_cache,
        device_on_host=stack.device_on_host,
        max_slots=stack.slots,
        source=stack.base_url,
    )
    names = [job.name for job in profile.jobs]
    if stack.slots * stack.workers == 1:
        parallelism = 1.0  # jobs never overlap: nothing to fit, and they never contend either
        log("calibrate: one slot, so no host parallelism to fit")
    else:
        fits = [fit_parallelism(variant, stack.slots, stack.workers, names, burst) for burst, _ in bursts]
        parallelism = statistics.fmean(fits)
        each = ", ".join(f"{fit:.2f}" for fit in fits)
        log(f"calibrate: the host runs {parallelism:.2f} activities at full speed (bursts: {each})")
    return Calibration((replace(variant, host_parallelism=parallelism),))


def _describe(c: ClassCalibration) -> str:
    return (
        f"pre {c.pre_s:.2f}, {c.steps} steps x {c.step_s * 1000:.1f} ms, vae {c.vae_s:.2f}, "
        f"post {c.post_s:.2f}, other {c.misc_s:.2f}"
    )


# -- from `paddock bench engine --real-size ...` ----------------------------------------------------
_BENCH_SHAPE = re.compile(r"real-size .*?, (\d+)p x (\d+) frames \((\d+) tokens\)")
_BENCH_STEP = re.compile(r"seconds per step: ([0-9.]+)")
_BENCH_VAE = re.compile(r"seconds per VAE decode: ([0-9.]+)")
_TIER_PIXELS = {"720P": 1280 * 720, "1080P": 1920 * 1080}
REAL_FPS = 16  # Wan 2.x generates 16 fps; 81 frames is its 5 s clip


@dataclass(frozen=True)
class BenchResult:
    """One real-size measurement: seconds per guided step (CFG in one forward) at `tokens`, and
    one VAE decode of that clip when the bench timed it."""

    tokens: int
    step_s: float
    vae_s: float | None = None

    @property
    def vae_s_per_token(self) -> float | None:
        return None if self.vae_s is None else self.vae_s / self.tokens


def parse_bench(text: str) -> BenchResult:
    shape, step = _BENCH_SHAPE.search(text), _BENCH_STEP.search(text)
    if shape is None or step is None:
        raise ValueError(
            "not the output of `paddock bench engine --real-size` (no shape or seconds per step)"
        )
    vae = _BENCH_VAE.search(text)
    return BenchResult(int(shape[3]), float(step[1]), float(vae[1]) if vae else None)


def real_tokens(job: JobClass) -> int:
    """Transformer tokens of this class at real size (Wan: VAE 4x8x8, patch 1x2x2, 16 fps)."""
    pixels = _TIER_PIXELS.get(job.resolution.upper(), _TIER_PIXELS["1080P"])
    seconds = job.duration if job.duration is not None else job.video_seconds
    latent_frames = (round(seconds * REAL_FPS) // 4) + 1
    return latent_frames * pixels // 256


def from_bench(
    bench: BenchResult,
    base: Variant,
    profile: Profile,
    *,
    steps: int,
    host_parallelism: float,
    vae_s_per_token: float = 0.0,
    max_slots: int = 4,
    name: str = "gpu",
) -> Variant:
    """A GPU variant: steps from the bench, scaled linearly by each class's token count (attention
    makes the real curve a little steeper), and the host phases (input decode, resample, encode,
    upload: the same work whatever made the frames) from `base`."""
    classes = {}
    for job in profile.jobs:
        host = base.classes[job.name]
        tokens = real_tokens(job)
        classes[job.name] = replace(
            host,
            steps=steps,
            step_s=bench.step_s * tokens / bench.tokens,
            batch_slope=1.0,  # one real-size job already fills the GPU
            vae_s=vae_s_per_token * tokens,
        )
    return Variant(
        name=name,
        classes=classes,
        gpus_per_worker=1,
        device_on_host=False,
        host_parallelism=host_parallelism,
        max_slots=max_slots,
        source="paddock bench engine --real-size",
    )
