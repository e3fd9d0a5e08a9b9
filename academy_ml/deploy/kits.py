"""Endpoint kits: ready Globus Compute endpoint and Parsl configurations per site.

A kit is a directory of the repository's ``endpoints/`` (``local``, ``slurm``,
``pbs``). It holds the endpoint's ``config.yaml`` (a template-capable endpoint:
no ``engine`` block), ``user_config_template.yaml.j2`` (GlobusComputeEngine,
provider, launcher), ``user_config_schema.json`` (what a user may override per
submission) and ``parsl_config.py.j2`` (the same executor for Parsl); every kit
shares ``endpoints/worker_init.sh.j2`` (activate the environment, point the
cache at node-local disk, download nothing).

:func:`render_kit` checks the operator's values against the kit's model and
writes a directory to hand to ``globus-compute-endpoint configure``::

    render_kit("slurm", {"venv": "/opt/aml", "account": "abc"}, Path("slurm-ep"))

The endpoint template is written with the operator's values in a ``site``
block on top: Globus Compute renders it again for every user endpoint process,
and a user's options (checked against the schema) override the site values.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import jinja2
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    ValidationError,
    model_validator,
)

from academy_ml import __version__
from academy_ml.exceptions import KitError

__all__ = [
    "KITS",
    "KitError",
    "KitValues",
    "LocalValues",
    "PbsValues",
    "SlurmValues",
    "Variable",
    "find_kits_dir",
    "kit_variables",
    "parse_values",
    "render_kit",
]

#: Files of a kit directory copied to the output as they are.
COPIED = ("config.yaml", "user_config_schema.json")
#: The Globus Compute template, written with the ``site`` block on top.
USER_TEMPLATE = "user_config_template.yaml.j2"
#: Templates rendered now: kit file -> output file.
RENDERED = {"worker_init.sh.j2": "worker_init.sh", "parsl_config.py.j2": "parsl_config.py"}


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


def find_kits_dir(kits_dir: Path | None = None) -> Path:
    """The directory holding the kits.

    ``kits_dir`` if given; else ``endpoints/`` next to the ``academy_ml``
    package (a checkout, or an editable install); else ``./endpoints``. Wheels
    do not ship the kits (a top-level ``endpoints`` would clash with PyPI's).

    Raises:
        KitError: none of these holds the kits.
    """
    candidates = (
        [kits_dir]
        if kits_dir is not None
        else [Path(__file__).resolve().parent.parent / "endpoints", Path.cwd() / "endpoints"]
    )
    for candidate in candidates:
        if (candidate / "worker_init.sh.j2").is_file():
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    raise KitError(
        f"no endpoint kits in {looked}: pass the endpoints/ directory of an academy_ml checkout"
    )


def render_kit(
    kit: str, values: Mapping[str, str], output: Path, *, kits_dir: Path | None = None
) -> list[Path]:
    """Writes a ready endpoint configuration of ``kit`` into ``output``.

    ``output`` receives ``config.yaml``, ``user_config_template.yaml.j2`` and
    ``user_config_schema.json`` (for ``globus-compute-endpoint configure``),
    ``parsl_config.py`` (the same executor for Parsl) and ``worker_init.sh``
    (what workers run first; source it on a compute node to check it).
    Existing files of those names are replaced.

    Args:
        kit: ``local``, ``slurm`` or ``pbs``.
        values: variable name -> value, as strings.
        output: directory to write (created if needed).
        kits_dir: where the kits are (see :func:`find_kits_dir`).

    Returns:
        The files written.

    Raises:
        KitError: see :func:`parse_values` and :func:`find_kits_dir`; or a
            kit file is missing or broken, or ``output`` cannot be written.
    """
    checked = parse_values(kit, values)
    root = find_kits_dir(kits_dir)
    try:
        return _render(kit, checked, root, output)
    except (OSError, jinja2.TemplateError) as error:
        raise KitError(f"kit {kit!r}: {type(error).__name__}: {error}") from error


def _render(kit: str, values: KitValues, root: Path, output: Path) -> list[Path]:
    source = root / kit
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader([source, root]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    environment.filters["py"] = repr
    environment.filters["py_text"] = _python_text
    context: dict[str, Any] = {"kit": kit, **values.model_dump()}
    context["worker_init"] = environment.get_template("worker_init.sh.j2").render(context)
    output.mkdir(parents=True, exist_ok=True)
    written = []
    for name, target in RENDERED.items():
        written.append(_write(output / target, environment.get_template(name).render(context)))
    for name in COPIED:
        written.append(Path(shutil.copyfile(source / name, output / name)))
    site = {key: "" if value is None else value for key, value in context.items() if key != "kit"}
    site["worker_init"] = context["worker_init"].rstrip("\n")
    header = (
        f"{{#- Written by `academy-ml endpoint render {kit}` (academy_ml {__version__}).\n"
        "    `site` holds the operator's values: edit them here, or render again. -#}\n"
        f"{{%- set site = {json.dumps(site, indent=2, sort_keys=True)} %}}\n"
    )
    template = (source / USER_TEMPLATE).read_text()
    written.append(_write(output / USER_TEMPLATE, header + template))
    return written


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


def _python_text(text: str) -> str:
    """``text`` as a Python literal, triple-quoted when that is exact (readable scripts)."""
    if '"""' in text or "\\" in text or text.endswith('"'):
        return repr(text)
    return '"""\\\n' + text + '"""'


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
