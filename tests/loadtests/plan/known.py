"""Small calibrations with known answers, shared by the planner's tests."""

from __future__ import annotations

from loadtests.plan.calibration import ClassCalibration, Variant
from loadtests.profile import JobClass, Profile


def one_class_variant(
    service_s: float = 1.0, *, parallelism: float = 64.0, slots: int = 4, **kw: float
) -> Variant:
    """A class whose whole service is one step of `service_s` on a device of its own."""
    work = ClassCalibration(steps=1, step_s=service_s, **kw)  # type: ignore[arg-type]
    return Variant("test", {"a": work}, device_on_host=False, host_parallelism=parallelism, max_slots=slots)


def one_class_profile() -> Profile:
    return Profile((JobClass(name="a", model="happyhorse-1.0-t2v"),))
