"""Type stubs for the Rust runtime extension (kept by hand, checked by stubtest)."""

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["PLAN_VERSION", "__version__", "check_plan", "run_plan"]

PLAN_VERSION: int
__version__: str

def check_plan(plan: bytes) -> int: ...
def run_plan(
    plan: bytes,
    x: NDArray[np.float64],
    targets: Mapping[str, NDArray[np.float64]],
    indices: Mapping[str, NDArray[np.int64]],
    threads: int | None = None,
) -> tuple[list[Any], int]: ...
