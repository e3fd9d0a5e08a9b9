"""Placement: which endpoint runs a batch, and getting its result back exactly once.

* :mod:`~academy_ml.compute.placement.endpoints`: the :class:`Endpoint` protocol and
  its kinds (local pool, Parsl, Globus Compute).
* :mod:`~academy_ml.compute.placement.registry`: endpoints from ``configs/*.toml``.
* :mod:`~academy_ml.compute.placement.affinity`: ``node key -> endpoint`` records, in
  memory or in Redis.
* :mod:`~academy_ml.compute.placement.placer`: cache affinity, then load; fail-over;
  every outcome recorded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from academy_ml.core.lazy import lazy_exports

if TYPE_CHECKING:
    from academy_ml.compute.placement.affinity import AffinityStore, InMemoryAffinity, RedisAffinity
    from academy_ml.compute.placement.endpoints import (
        RUN_BATCH,
        Endpoint,
        GlobusComputeEndpoint,
        LocalEndpoint,
        ParslEndpoint,
        Scalable,
        TaskFunction,
        resolve_task,
    )
    from academy_ml.compute.placement.placer import (
        PUT_DATASET,
        Outcome,
        PlacementError,
        PlacementRequest,
        PlacementResult,
        Placer,
        Policy,
    )
    from academy_ml.compute.placement.registry import (
        EndpointSpec,
        GlobusComputeSpec,
        LocalSpec,
        ParslSpec,
        PlacementSettings,
        RegistryError,
        build_placer,
        load_placement_settings,
        load_registry,
    )

__all__ = [
    "PUT_DATASET",
    "RUN_BATCH",
    "AffinityStore",
    "Endpoint",
    "EndpointSpec",
    "GlobusComputeEndpoint",
    "GlobusComputeSpec",
    "InMemoryAffinity",
    "LocalEndpoint",
    "LocalSpec",
    "Outcome",
    "ParslEndpoint",
    "ParslSpec",
    "PlacementError",
    "PlacementRequest",
    "PlacementResult",
    "PlacementSettings",
    "Placer",
    "Policy",
    "RedisAffinity",
    "RegistryError",
    "Scalable",
    "TaskFunction",
    "build_placer",
    "load_placement_settings",
    "load_registry",
    "resolve_task",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "AffinityStore": "academy_ml.compute.placement.affinity",
        "InMemoryAffinity": "academy_ml.compute.placement.affinity",
        "RedisAffinity": "academy_ml.compute.placement.affinity",
        "RUN_BATCH": "academy_ml.compute.placement.endpoints",
        "Endpoint": "academy_ml.compute.placement.endpoints",
        "GlobusComputeEndpoint": "academy_ml.compute.placement.endpoints",
        "LocalEndpoint": "academy_ml.compute.placement.endpoints",
        "ParslEndpoint": "academy_ml.compute.placement.endpoints",
        "Scalable": "academy_ml.compute.placement.endpoints",
        "TaskFunction": "academy_ml.compute.placement.endpoints",
        "resolve_task": "academy_ml.compute.placement.endpoints",
        "PUT_DATASET": "academy_ml.compute.placement.placer",
        "Outcome": "academy_ml.compute.placement.placer",
        "PlacementError": "academy_ml.compute.placement.placer",
        "PlacementRequest": "academy_ml.compute.placement.placer",
        "PlacementResult": "academy_ml.compute.placement.placer",
        "Placer": "academy_ml.compute.placement.placer",
        "Policy": "academy_ml.compute.placement.placer",
        "EndpointSpec": "academy_ml.compute.placement.registry",
        "GlobusComputeSpec": "academy_ml.compute.placement.registry",
        "LocalSpec": "academy_ml.compute.placement.registry",
        "ParslSpec": "academy_ml.compute.placement.registry",
        "PlacementSettings": "academy_ml.compute.placement.registry",
        "RegistryError": "academy_ml.compute.placement.registry",
        "build_placer": "academy_ml.compute.placement.registry",
        "load_placement_settings": "academy_ml.compute.placement.registry",
        "load_registry": "academy_ml.compute.placement.registry",
    },
)
