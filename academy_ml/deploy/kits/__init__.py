"""Endpoint kits: one endpoint per kind of site, as a registry entry and a Globus Compute endpoint.

A kit (``local``, ``slurm``, ``pbs``) is a model of the operator's
variables (:mod:`~academy_ml.deploy.kits.values`) and the Globus Compute
files of its directory here, shipped as package data.
:func:`render_kit` checks the values and writes a directory to hand to
``globus-compute-endpoint configure``, plus ``endpoint.toml``, the same
executor as a registry entry for Parsl::

    render_kit("slurm", {"venv": "/opt/aml", "account": "abc"}, Path("slurm-ep"))
"""

from __future__ import annotations

from academy_ml.deploy.kits.render import ENTRY, WORKER_INIT, kit_spec, render_kit
from academy_ml.deploy.kits.values import (
    KITS,
    KitError,
    KitValues,
    LocalValues,
    PbsValues,
    SlurmValues,
    Variable,
    kit_variables,
    parse_values,
)

__all__ = [
    "ENTRY",
    "KITS",
    "WORKER_INIT",
    "KitError",
    "KitValues",
    "LocalValues",
    "PbsValues",
    "SlurmValues",
    "Variable",
    "kit_spec",
    "kit_variables",
    "parse_values",
    "render_kit",
]
