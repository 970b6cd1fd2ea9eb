"""Fixtures of the deployment tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.deploy.helm import HELM
from tests.deploy.live_stack import LiveStack, chart_like_stack


@pytest.fixture(scope="package")
def live_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    """One stack for the package: starting `paddock serve` costs seconds."""
    if HELM is None:
        pytest.skip("no helm in .tools/bin or on PATH (`make helm-tools`)")
    with chart_like_stack(tmp_path_factory.mktemp("live-stack")) as stack:
        yield stack
