"""What each endpoint kit takes: the operator's variables, checked before anything is written.

Each kit (``local``, ``slurm``, ``pbs``) has a pydantic model of its
variables; :func:`parse_values` checks the strings given on the command line
against it and names every problem at once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    ValidationError,
    model_validator,
)

from academy_ml.exceptions import KitError

__all__ = [
    "KITS",
    "KitError",
    "KitValues",
    "LocalValues",
    "PbsValues",
    "SlurmValues",
    "Variable",
    "kit_variables",
    "parse_values",
]


def _matching(regex: str, expected: str) -> AfterValidator:
    pattern = re.compile(regex)

    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(expected)
        return value

    return AfterValidator(check)


def _directives(prefix: str) -> AfterValidator:
    def check(value: str) -> str:
        for line in value.splitlines():
            if line.strip() and not line.startswith(f"{prefix} "):
                raise ValueError(f"every line must be a {prefix} directive")
        return value

    return AfterValidator(check)


Walltime = Annotated[
    str, _matching(r"[0-9]+:[0-5][0-9]:[0-5][0-9]", "expected HH:MM:SS such as 01:30:00")
]
Name = Annotated[
    str, _matching(r"[A-Za-z0-9_.,:@+=-]+", "expected a name without spaces or quotes")
]
ShellPath = Annotated[
    str,
    _matching(
        r"[/$][A-Za-z0-9_./${}:+@-]*",
        "expected an absolute path, $VARIABLES allowed, without spaces, quotes or ~ (write $HOME)",
    ),
]
CondaEnv = Annotated[
    str, _matching(r"[A-Za-z0-9_./${}:+@-]+", "expected a conda environment name or path")
]
Modules = Annotated[
    str,
    _matching(
        r"[A-Za-z0-9_./@+-]+( [A-Za-z0-9_./@+-]+)*", "expected module names separated by spaces"
    ),
]
Host = Annotated[str, _matching(r"[A-Za-z0-9.:-]+", "expected an IP address or a host name")]
Interface = Annotated[
    str, _matching(r"[A-Za-z0-9_.:-]{1,15}", "expected an interface name like ib0")
]
Constraint = Annotated[
    str, _matching(r"[A-Za-z0-9_.,:@+=&|()\[\]*!-]+", "expected a Slurm constraint without spaces")
]
Select = Annotated[
    str, _matching(r"[A-Za-z0-9_.=:+-]*", "expected select resources such as ngpus=4:mem=64gb")
]
Flag = Annotated[
    str, _matching(r"-{1,2}[A-Za-z][A-Za-z-]*", "expected an option such as --cpu-bind")
]
OneLine = Annotated[
    str, _matching(r"[^\n\r\"'`\\]*", "expected one line without quotes or backslashes")
]


class KitValues(BaseModel):
    """What every kit takes: the worker environment and the node-local cache."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    venv: ShellPath | None = Field(
        None, description="virtualenv with academy-ml[endpoint] installed (this or conda_env)"
    )
    conda_env: CondaEnv | None = Field(
        None, description="conda environment (name or path) with academy-ml[endpoint] (or venv)"
    )
    modules: Modules | None = Field(
        None, description="environment modules to `module load` first, space separated"
    )
    cache_dir: ShellPath = Field(
        # The user's own cache directory (as platformdirs finds it on Linux),
        # never a predictable name in a shared /tmp; sites point it at
        # node-local scratch.
        "${XDG_CACHE_HOME:-$HOME/.cache}/academy_ml",
        description="node-local cache directory, exported as ACADEMY_ML_CACHE_DIR "
        "(created private, mode 0700, by the runtime)",
    )
    workers_per_node: PositiveInt = Field(1, description="worker processes per node")
    max_blocks: PositiveInt = Field(1, description="most blocks (batch jobs) at once")

    @model_validator(mode="after")
    def _one_environment(self) -> KitValues:
        if (self.venv is None) == (self.conda_env is None):
            raise ValueError("set exactly one of the variables 'venv' and 'conda_env'")
        return self


class LocalValues(KitValues):
    """Workers on the endpoint's own machine (LocalProvider); for laptops and CI."""


class BatchValues(KitValues):
    """What a batch scheduler kit adds: job shape and how workers reach the endpoint."""

    walltime: Walltime = Field("01:00:00", description="wall time of a block, HH:MM:SS")
    nodes_per_block: PositiveInt = Field(1, description="nodes per block")
    address: Host | None = Field(
        None, description="address compute nodes reach the login node at (default: its hostname)"
    )
    interface: Interface | None = Field(
        None, description="network interface whose address to use instead (e.g. ib0, hsn0)"
    )

    @model_validator(mode="after")
    def _one_address(self) -> BatchValues:
        if self.address is not None and self.interface is not None:
            raise ValueError("set at most one of the variables 'address' and 'interface'")
        return self


class SlurmValues(BatchValues):
    """Slurm clusters: SlurmProvider, one worker pool per node through srun."""

    account: Name | None = Field(None, description="Slurm account (--account)")
    partition: Name | None = Field(None, description="Slurm partition (--partition)")
    qos: Name | None = Field(None, description="Slurm quality of service (--qos)")
    constraint: Constraint | None = Field(None, description="Slurm node features (--constraint)")
    cores_per_node: PositiveInt | None = Field(None, description="cores to request per node")
    exclusive: bool = Field(True, description="request whole nodes (--exclusive)")
    scheduler_options: Annotated[str, _directives("#SBATCH")] = Field(
        "", description="extra '#SBATCH ...' lines"
    )


class PbsValues(BatchValues):
    """PBS Pro clusters: PBSProProvider, one worker pool per node through mpiexec."""

    account: Name = Field(description="PBS project to charge (-A)")
    queue: Name = Field(description="PBS queue (-q)")
    cpus_per_node: PositiveInt = Field(1, description="ncpus of each select chunk")
    select_options: Select = Field("", description="more select resources, e.g. ngpus=4")
    launcher: Literal["mpiexec", "simple"] = Field(
        "mpiexec", description="mpiexec: a worker pool per node; simple: one-node blocks"
    )
    mpiexec_bind_cmd: Flag = Field("--cpu-bind", description="mpiexec's binding option")
    mpiexec_overrides: OneLine = Field("--ppn 1", description="more mpiexec options")
    scheduler_options: Annotated[str, _directives("#PBS")] = Field(
        "", description="extra '#PBS ...' lines, e.g. '#PBS -l filesystems=home'"
    )

    @model_validator(mode="after")
    def _simple_is_one_node(self) -> PbsValues:
        if self.launcher == "simple" and self.nodes_per_block != 1:
            raise ValueError(
                "launcher 'simple' starts workers on one node only: set nodes_per_block=1"
                " or launcher=mpiexec"
            )
        return self


#: Every kit and the model of its values.
KITS: dict[str, type[KitValues]] = {"local": LocalValues, "slurm": SlurmValues, "pbs": PbsValues}


@dataclass(frozen=True)
class Variable:
    """One variable of a kit, as ``academy-ml endpoint kits`` lists it."""

    name: str
    required: bool
    default: Any
    description: str


def kit_variables(kit: str) -> list[Variable]:
    """The variables ``kit`` takes, in declaration order."""
    model = _model(kit)
    return [
        Variable(name, field.is_required(), field.default, field.description or "")
        for name, field in model.model_fields.items()
    ]


def parse_values(kit: str, values: Mapping[str, str]) -> KitValues:
    """Checks ``values`` (strings, as given on the command line) against ``kit``.

    Raises:
        KitError: the kit is unknown, or a variable is missing, unknown or
            has a value the kit cannot use; the message names each of them.
    """
    model = _model(kit)
    try:
        return model.model_validate(dict(values))
    except ValidationError as error:
        problems = [_problem(kit, model, detail) for detail in error.errors()]
        raise KitError(f"kit {kit!r}: " + "; ".join(problems)) from None


def _model(kit: str) -> type[KitValues]:
    try:
        return KITS[kit]
    except KeyError:
        raise KitError(f"unknown kit {kit!r}; kits: {', '.join(sorted(KITS))}") from None


def _problem(kit: str, model: type[KitValues], detail: Mapping[str, Any]) -> str:
    name = ".".join(str(part) for part in detail["loc"])
    kind = detail["type"]
    if kind == "missing":
        return f"variable {name!r} is required"
    if kind == "extra_forbidden":
        return f"unknown variable {name!r} (the {kit} kit takes: {', '.join(model.model_fields)})"
    message = str(detail["ctx"]["error"]) if kind == "value_error" else detail["msg"]
    if not name:
        return message
    return f"variable {name!r}: {message} (got {detail['input']!r})"
