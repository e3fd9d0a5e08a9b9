"""Type stubs for the Rust runtime extension (kept by hand, checked by stubtest)."""

from collections.abc import Mapping
from typing import Any, final

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "PLAN_VERSION",
    "RUNTIME_ID",
    "NodeCache",
    "__version__",
    "cache_summary",
    "check_plan",
    "interrupt_runs",
    "max_threads",
    "run_plan",
]

PLAN_VERSION: int
RUNTIME_ID: str
__version__: str

@final
class NodeCache:
    def __new__(cls, path: str, memory_bytes: int, disk_bytes: int) -> NodeCache: ...
    def stats(self) -> dict[str, int]: ...
    def memory_used(self) -> int: ...
    def clear(self) -> int: ...
    @staticmethod
    def clear_dir(path: str) -> int: ...
    def flush(self) -> None: ...
    def get_blob(self, key: str) -> bytes | None: ...
    def put_blob(self, key: str, data: bytes) -> bool: ...

def cache_summary(path: str) -> tuple[int, int, dict[str, int]]: ...
def check_plan(plan: bytes) -> int: ...
def interrupt_runs() -> int: ...
def max_threads() -> int: ...
def run_plan(
    plan: bytes,
    x: NDArray[np.float64],
    targets: Mapping[str, NDArray[np.float64]],
    indices: Mapping[str, NDArray[np.int64]],
    threads: int | None = None,
    cache: NodeCache | None = None,
) -> tuple[list[Any], dict[str, Any]]: ...
