"""Rendering a kit: one registry entry, and the Globus Compute files made from the same values.

A kit's files ship inside this package (``academy_ml/deploy/kits/<kit>/``),
so an installed wheel renders them without a checkout. From the operator's
values :func:`render_kit` writes:

* ``endpoint.toml``: the endpoint as a registry entry (``kind = "parsl"``,
  a :class:`~academy_ml.compute.placement.ParslSpec`): the Parsl executor,
  for ``build_placer`` or ``load_registry``;
* ``worker_init.sh``: what every node runs first (the entry's
  ``worker_init`` and cache directory);
* ``config.yaml``, ``user_config_template.yaml.j2`` and
  ``user_config_schema.json`` for ``globus-compute-endpoint configure``: the
  template (Jinja, rendered by Globus Compute per user endpoint) gets the
  operator's values in a ``site`` block on top, its ``worker_init`` the same
  script, and a user's options (checked against the schema) override them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import ValidationError

from academy_ml import __version__
from academy_ml.compute.placement.parsl_spec import ParslSpec
from academy_ml.deploy.kits.values import KitValues, parse_values
from academy_ml.exceptions import KitError

__all__ = ["ENTRY", "WORKER_INIT", "kit_spec", "render_kit"]

#: Files of a kit copied to the output as they are.
COPIED = ("config.yaml", "user_config_schema.json")
#: The Globus Compute template, written with the ``site`` block on top.
USER_TEMPLATE = "user_config_template.yaml.j2"
#: The registry entry and the worker script written for every kit.
ENTRY = "endpoint.toml"
WORKER_INIT = "worker_init.sh"


def kit_spec(kit: str, values: KitValues) -> ParslSpec:
    """The registry entry (a Parsl executor) ``kit`` describes with ``values``.

    Every kit variable the registry knows keeps its name; ``venv``,
    ``conda_env`` and ``modules`` become the entry's ``worker_init``.

    Raises:
        KitError: the values make no valid entry.
    """
    given = values.model_dump()
    entry: dict[str, Any] = {
        name: value
        for name, value in given.items()
        if name in ParslSpec.model_fields and value not in (None, "")
    }
    entry.update(
        kind="parsl",
        provider=kit,
        # Batch kits scale from zero: a block is a job that waits in a queue.
        init_blocks=1 if kit == "local" else 0,
        worker_init=_environment(kit, values),
    )
    try:
        return ParslSpec.model_validate(entry)
    except ValidationError as error:
        raise KitError(f"kit {kit!r}: {error}") from None


def render_kit(
    kit: str, values: Mapping[str, str], output: Path, *, name: str | None = None
) -> list[Path]:
    """Writes a ready endpoint configuration of ``kit`` into ``output``.

    Args:
        kit: ``local``, ``slurm`` or ``pbs``.
        values: variable name -> value, as strings.
        output: directory to write (created if needed); files of the same
            names there are replaced.
        name: the endpoint's name in ``endpoint.toml`` (default: the kit's).

    Returns:
        The files written.

    Raises:
        KitError: see :func:`~academy_ml.deploy.kits.parse_values`; or
            ``output`` cannot be written.
    """
    checked = parse_values(kit, values)
    spec = kit_spec(kit, checked)
    try:
        return _write_all(kit, checked, spec, output, name or kit)
    except OSError as error:
        raise KitError(f"kit {kit!r}: {type(error).__name__}: {error}") from error


def _environment(kit: str, values: KitValues) -> str:
    """Shell lines that load the modules and activate the environment."""
    lines = [
        f"# academy_ml worker_init ({kit} kit): runs on every node before its workers",
        "# start. It activates an environment that already has academy_ml installed and",
        "# points the academy_ml cache at node-local disk. It installs and downloads",
        "# nothing.",
    ]
    if values.modules:
        lines.append(f"module load {values.modules}")
    # The values are checked against patterns without quotes or spaces.
    if values.venv:
        lines.append(f'source "{values.venv}/bin/activate"')
    else:
        lines += ['eval "$(conda shell.bash hook)"', f'conda activate "{values.conda_env}"']
    return "\n".join(lines)


def _write_all(kit: str, values: KitValues, spec: ParslSpec, output: Path, name: str) -> list[Path]:
    source = resources.files(__package__).joinpath(kit)
    script = spec.worker_script()
    output.mkdir(parents=True, exist_ok=True)
    entry = spec.model_dump(mode="json", exclude_unset=True)
    header = (
        f"# Written by `academy-ml endpoint render {kit}` (academy_ml {__version__}).\n"
        "# A registry entry: copy this file into a registry directory (configs/), or\n"
        "# build_placer(this file). The Globus Compute template beside it runs the\n"
        "# same executor.\n"
    )
    table = tomli_w.dumps({"endpoints": {name: entry}}, multiline_strings=True)
    written = [
        _write(output / ENTRY, header + table),
        _write(output / WORKER_INIT, script + "\n"),
    ]
    for file in COPIED:
        written.append(_write(output / file, source.joinpath(file).read_text()))
    site = {key: "" if value is None else value for key, value in values.model_dump().items()}
    site["worker_init"] = script
    template_header = (
        f"{{#- Written by `academy-ml endpoint render {kit}` (academy_ml {__version__}).\n"
        "    `site` holds the operator's values: edit them here, or render again. -#}\n"
        f"{{%- set site = {json.dumps(site, indent=2, sort_keys=True)} %}}\n"
    )
    template = source.joinpath(USER_TEMPLATE).read_text()
    written.append(_write(output / USER_TEMPLATE, template_header + template))
    return written


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
