"""What an attacker sends an endpoint: the names issue 14 resolved, and a spec rewriter."""

from __future__ import annotations

from typing import Any

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
