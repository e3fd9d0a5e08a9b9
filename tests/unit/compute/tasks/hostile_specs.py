"""What an attacker sends an endpoint: issue 14's names, a spec rewriter, raw requests."""

from __future__ import annotations

from typing import Any

import msgpack
from sklearn.linear_model import Ridge

from academy_ml.compute.tasks.request import MESSAGE_VERSION
from academy_ml.compute.tasks.specs import encode_pipelines
from academy_ml.messaging.codec import Decoder, Encoder

#: The paths the module-prefix check resolved (issue 14, item 1).
ATTACK_PATHS = [
    "numpy.testing._private.extbuild:subprocess.run",
    "sklearn.datasets._base:os.system",
    "numpy._core.numeric:builtins.eval",
]


def rename(data: bytes, old: str, new: str) -> bytes:
    """Encoded specs with every name ``old`` replaced by ``new``, as an attacker writes them."""

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: new if v == old else walk(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(walk(v) for v in value)
        return value

    specs = walk(Decoder([], allow_pickle=False).unpack(data))
    return Encoder(allow_pickle=False).pack(specs)


def request_fields(**changes: Any) -> bytes:
    """The bytes of a request of a Ridge on 5 folds, with ``changes`` made to its fields."""
    fields: dict[str, Any] = {
        "plan_key": "a" * 32,
        "node_keys": ["b" * 32],
        "pipelines": encode_pipelines([Ridge()]),
        "cv": 5,
        "scoring": None,
        "dataset": "c" * 32,
        "threads": None,
    }
    fields.update(changes)
    return bytes(msgpack.packb([MESSAGE_VERSION, "BatchRequest", fields], use_bin_type=True))
