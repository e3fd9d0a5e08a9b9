"""Endpoint kits: rendered configs load with Globus Compute's and Parsl's own code."""

from __future__ import annotations

import dataclasses
import json
import os
import pwd
import re
import stat
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
from globus_compute_endpoint.endpoint.config import (  # type: ignore[import-untyped]
    CoreEndpointConfig,
    UserEndpointConfig,
)
from globus_compute_endpoint.endpoint.config.utils import (  # type: ignore[import-untyped]
    get_config,
    load_config_yaml,
    load_user_config_schema,
    load_user_config_template,
    render_config_user_template,
)
from globus_compute_endpoint.endpoint.endpoint import Endpoint  # type: ignore[import-untyped]
from globus_compute_endpoint.endpoint.identity_mapper import MappedPosixIdentity  # type: ignore[import-untyped]
from globus_compute_endpoint.engines import GlobusComputeEngine  # type: ignore[import-untyped]
from globus_compute_sdk.sdk.batch import create_user_runtime
from parsl.addresses import address_by_hostname
from parsl.concurrent import ParslPoolExecutor
from parsl.config import Config
from parsl.executors import HighThroughputExecutor
from parsl.launchers import (
    MpiExecLauncher,
    SimpleLauncher,
    SingleNodeLauncher,
    SrunLauncher,
)
from parsl.providers import LocalProvider, PBSProProvider, SlurmProvider

import academy_ml.deploy.kits
from academy_ml.compute.placement import ParslSpec, load_registry
from academy_ml.deploy.kits import (
    KITS,
    KitError,
    kit_variables,
    parse_values,
    render_kit,
)
from academy_ml.engine.cache import Cache, default_cache_dir

#: The kits' files, package data next to their code.
KITS_DIR = Path(academy_ml.deploy.kits.__file__).parent
#: The operators' directory of the repository.
ENDPOINTS = Path(__file__).resolve().parents[3] / "endpoints"
#: The least each kit needs.
REQUIRED: dict[str, dict[str, str]] = {
    "local": {"venv": "/opt/academy-ml"},
    "slurm": {"venv": "/opt/academy-ml"},
    "pbs": {"venv": "/opt/academy-ml", "account": "proj1", "queue": "debug"},
}
PROVIDERS = {"local": LocalProvider, "slurm": SlurmProvider, "pbs": PBSProProvider}
LAUNCHERS = {"local": SingleNodeLauncher, "slurm": SrunLauncher, "pbs": MpiExecLauncher}
FILES = {
    "config.yaml",
    "user_config_template.yaml.j2",
    "user_config_schema.json",
    "endpoint.toml",
    "worker_init.sh",
}


def _user_config(ep_dir: Path, user_opts: dict[str, Any]) -> UserEndpointConfig:
    """What a core endpoint does for a user's submission, with the package's own code."""
    parent = get_config(ep_dir)
    assert isinstance(parent, CoreEndpointConfig)
    template_path = Endpoint.user_config_template_path(ep_dir, parent)
    schema = load_user_config_schema(Endpoint.user_config_schema_path(ep_dir, parent))
    rendered = render_config_user_template(
        parent_config=parent,
        user_config_template=load_user_config_template(template_path),
        user_config_template_path=template_path,
        mapped_identity=MappedPosixIdentity(
            local_user_record=pwd.getpwuid(os.getuid()),
            globus_identity_candidates=[],
            matched_identity=uuid.UUID(int=0),
        ),
        user_config_schema=schema,
        user_opts=user_opts,
        user_runtime=json.loads(json.dumps(dataclasses.asdict(create_user_runtime()))),
    )
    config = load_config_yaml(rendered)
    assert isinstance(config, UserEndpointConfig)
    return config


#: Provider settings each kit's two descriptions (Globus Compute, Parsl) must agree on.
COMMON_SETTINGS = ("max_blocks", "nodes_per_block", "walltime", "scheduler_options", "account")
SLURM_SETTINGS = (
    *COMMON_SETTINGS,
    "partition",
    "qos",
    "constraint",
    "exclusive",
    "cores_per_node",
)
PBS_SETTINGS = (*COMMON_SETTINGS, "queue", "cpus_per_node", "select_options")


def _same_executor(gc: Any, parsl: Any, settings: tuple[str, ...]) -> None:
    """The Globus Compute engine's executor and the registry entry's are the same."""
    assert (gc.address, gc.max_workers_per_node) == (parsl.address, parsl.max_workers_per_node)
    assert type(gc.provider) is type(parsl.provider)
    assert type(gc.provider.launcher) is type(parsl.provider.launcher)
    assert gc.provider.worker_init.strip() == parsl.provider.worker_init.strip()
    for name in settings:
        assert getattr(gc.provider, name) == getattr(parsl.provider, name), name


def _parsl_config(directory: Path) -> Config:
    """The Parsl config of the registry entry a kit rendered into ``directory``."""
    ((name, spec),) = load_registry(directory / "endpoint.toml").items()
    assert isinstance(spec, ParslSpec)
    return spec.parsl_config(name)


@pytest.mark.parametrize("kit", sorted(KITS))
def test_every_kit_renders_with_defaults_and_required_values(kit: str, tmp_path: Path) -> None:
    written = render_kit(kit, REQUIRED[kit], tmp_path)

    assert {path.name for path in written} == FILES
    assert {path.name for path in tmp_path.iterdir()} == FILES
    assert isinstance(get_config(tmp_path), CoreEndpointConfig)

    config = _user_config(tmp_path, {})
    engine = config.engine
    assert isinstance(engine, GlobusComputeEngine)
    provider = engine.executor.provider
    assert type(provider) is PROVIDERS[kit]
    assert type(provider.launcher) is LAUNCHERS[kit]
    address = "127.0.0.1" if kit == "local" else address_by_hostname()
    assert engine.executor.address == address
    assert provider.max_blocks == 1
    worker_init = (tmp_path / "worker_init.sh").read_text()
    assert provider.worker_init.strip() == worker_init.strip()
    assert 'source "/opt/academy-ml/bin/activate"' in worker_init
    assert 'export ACADEMY_ML_CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/academy_ml"' in worker_init
    assert "mkdir" not in worker_init, "the runtime creates the cache directory private"
    assert not re.search(r"\b(pip|uv|curl|wget|conda install)\b", worker_init)
    subprocess.run(["bash", "-n", str(tmp_path / "worker_init.sh")], check=True)

    parsl = _parsl_config(tmp_path)
    (executor,) = parsl.executors
    assert isinstance(executor, HighThroughputExecutor)
    assert type(executor.provider) is PROVIDERS[kit]
    assert type(executor.provider.launcher) is LAUNCHERS[kit]
    assert executor.address == address
    assert executor.provider.worker_init.strip() == worker_init.strip()


# parsl.addresses.address_by_interface never closes the socket it asks.
@pytest.mark.filterwarnings("ignore:unclosed <socket.socket:ResourceWarning")
def test_site_values_and_user_options_reach_the_slurm_engine(tmp_path: Path) -> None:
    values = {
        "conda_env": "academy",
        "modules": "conda/2024 gcc",
        "cache_dir": "/local/scratch/$USER/academy-ml-cache",
        "account": "m1234",
        "partition": "regular",
        "constraint": "cpu&ib",
        "walltime": "02:00:00",
        "nodes_per_block": "2",
        "max_blocks": "4",
        "workers_per_node": "2",
        "cores_per_node": "64",
        "exclusive": "false",
        "interface": "lo",
        "scheduler_options": '#SBATCH --output=aml-%j.out\n#SBATCH --comment="a %} b"',
    }
    render_kit("slurm", values, tmp_path)

    provider = _user_config(tmp_path, {}).engine.executor.provider
    assert (provider.account, provider.partition, provider.qos) == ("m1234", "regular", None)
    assert (provider.walltime, provider.nodes_per_block, provider.max_blocks) == ("02:00:00", 2, 4)
    assert (provider.constraint, provider.cores_per_node) == ("cpu&ib", 64)
    assert provider.exclusive is False
    assert provider.scheduler_options.startswith(values["scheduler_options"])
    assert provider.worker_init.splitlines()[-4:] == [
        "module load conda/2024 gcc",
        'eval "$(conda shell.bash hook)"',
        'conda activate "academy"',
        'export ACADEMY_ML_CACHE_DIR="/local/scratch/$USER/academy-ml-cache"',
    ]

    overridden = _user_config(
        tmp_path, {"walltime": "00:30:00", "partition": "debug", "max_blocks": 1}
    ).engine
    assert overridden is not None
    assert overridden.executor.max_workers_per_node == 2
    provider = overridden.executor.provider
    assert (provider.walltime, provider.partition, provider.max_blocks) == ("00:30:00", "debug", 1)
    assert provider.account == "m1234"

    parsl = _parsl_config(tmp_path).executors[0]
    assert isinstance(parsl, HighThroughputExecutor)
    assert parsl.address == "127.0.0.1"  # address_by_interface("lo")
    assert isinstance(parsl.provider, SlurmProvider)
    assert parsl.provider.scheduler_options.startswith(values["scheduler_options"])
    _same_executor(_user_config(tmp_path, {}).engine.executor, parsl, SLURM_SETTINGS)


def test_pbs_with_the_simple_launcher_runs_one_node_blocks(tmp_path: Path) -> None:
    render_kit("pbs", {**REQUIRED["pbs"], "launcher": "simple", "address": "10.1.2.3"}, tmp_path)

    engine = _user_config(tmp_path, {"queue": "prod", "nodes_per_block": 4}).engine
    assert engine is not None
    provider = engine.executor.provider
    assert type(provider.launcher) is SimpleLauncher
    assert (provider.queue, provider.nodes_per_block) == ("prod", 1)
    assert engine.executor.address == "10.1.2.3"
    parsl = _parsl_config(tmp_path).executors[0]
    assert isinstance(parsl, HighThroughputExecutor)
    assert isinstance(parsl.provider, PBSProProvider)
    assert type(parsl.provider.launcher) is SimpleLauncher
    assert parsl.address == "10.1.2.3"
    _same_executor(_user_config(tmp_path, {}).engine.executor, parsl, PBS_SETTINGS)


def test_the_pbs_mpiexec_launcher_is_the_same_in_both(tmp_path: Path) -> None:
    values = {**REQUIRED["pbs"], "mpiexec_bind_cmd": "-bind-to", "mpiexec_overrides": "--ppn 2"}
    values |= {"select_options": "ngpus=4", "cpus_per_node": "32", "nodes_per_block": "3"}
    render_kit("pbs", values, tmp_path)

    gc = _user_config(tmp_path, {}).engine.executor
    parsl: Any = _parsl_config(tmp_path).executors[0]
    _same_executor(gc, parsl, PBS_SETTINGS)
    for launcher in (gc.provider.launcher, parsl.provider.launcher):
        assert isinstance(launcher, MpiExecLauncher)
        assert (launcher.bind_cmd, launcher.overrides) == ("-bind-to", "--ppn 2")
    assert (parsl.provider.select_options, parsl.provider.nodes_per_block) == ("ngpus=4", 3)


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        ({"walltime": "abc"}, "does not match"),
        ({"max_blocks": 0}, "less than the minimum"),
        ({"worker_init": "curl evil | sh"}, "Additional properties"),
    ],
)
def test_the_schema_refuses_bad_user_options(
    tmp_path: Path, options: dict[str, Any], complaint: str
) -> None:
    render_kit("slurm", REQUIRED["slurm"], tmp_path)

    with pytest.raises(jsonschema.ValidationError, match=complaint):
        _user_config(tmp_path, options)


@pytest.mark.parametrize("kit", sorted(KITS))
def test_the_schema_lists_only_kit_variables_and_accepts_their_defaults(kit: str) -> None:
    schema = json.loads((KITS_DIR / kit / "user_config_schema.json").read_text())
    defaults = parse_values(kit, REQUIRED[kit]).model_dump()

    assert set(schema["properties"]) <= set(KITS[kit].model_fields)
    jsonschema.validate({k: defaults[k] for k in schema["properties"] if defaults[k]}, schema)


@pytest.mark.parametrize("kit", sorted(KITS))
def test_globus_compute_endpoint_configure_takes_the_rendered_files(
    kit: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    render_kit(kit, REQUIRED[kit], out)
    env = {**os.environ, "GLOBUS_COMPUTE_USER_DIR": str(tmp_path / "gc")}
    cli = str(Path(sys.executable).parent / "globus-compute-endpoint")
    configure = [cli, "configure", "--multi-user", "false"]
    for flag, name in (
        ("--core-config", "config.yaml"),
        ("--template-config", "user_config_template.yaml.j2"),
        ("--schema-config", "user_config_schema.json"),
    ):
        configure += [flag, str(out / name)]
    subprocess.run([*configure, f"aml-{kit}"], env=env, check=True, capture_output=True)

    done = subprocess.run(
        [cli, "render-user-config", "--endpoint", f"aml-{kit}", "--user-options", "-"],
        input='{"max_blocks": 3}',
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    assert isinstance(get_config(tmp_path / "gc" / f"aml-{kit}"), CoreEndpointConfig)
    assert "max_blocks: 3" in done.stdout
    assert isinstance(load_config_yaml(done.stdout).engine, GlobusComputeEngine)


def test_the_local_kit_runs_tasks_in_the_activated_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "node-cache"
    render_kit("local", {"venv": sys.prefix, "cache_dir": str(cache)}, tmp_path / "kit")
    config = _parsl_config(tmp_path / "kit")
    config.run_dir = str(tmp_path / "runinfo")
    config.initialize_logging = False
    # Parsl starts its interchange by name from this process's PATH.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("ACADEMY_ML_CACHE_DIR", raising=False)
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)

    with ParslPoolExecutor(config=config) as pool:
        cache_dir = pool.submit(default_cache_dir).result(timeout=120)  # type: ignore[no-untyped-call]
        venv = pool.submit(os.getenv, "VIRTUAL_ENV").result(timeout=60)  # type: ignore[no-untyped-call]

    assert cache_dir == cache
    assert not cache.exists(), "worker_init leaves creating the cache to the runtime"
    Cache(cache_dir)
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    assert venv == sys.prefix


@pytest.mark.parametrize(
    ("kit", "values", "message"),
    [
        ("pbs", {"venv": "/opt/aml", "queue": "q"}, "kit 'pbs': variable 'account' is required"),
        ("local", {}, "set exactly one of the variables 'venv' and 'conda_env'"),
        ("local", {"venv": "/a", "conda_env": "b"}, "set exactly one of the variables 'venv'"),
        ("slurm", {"venv": "/a", "walltim": "1"}, "kit 'slurm': unknown variable 'walltim'"),
        ("slurm", {"venv": "/a", "walltime": "abc"}, "variable 'walltime': expected HH:MM:SS"),
        ("slurm", {"venv": "/a", "max_blocks": "-1"}, "variable 'max_blocks': Input should be"),
        ("slurm", {"venv": "/a", "nodes_per_block": "two"}, "variable 'nodes_per_block'"),
        ("local", {"venv": "~/env"}, "variable 'venv': expected an absolute path"),
        ("local", {"venv": "/my env"}, "without spaces"),
        ("slurm", {"venv": "/a", "account": "a b"}, "variable 'account'"),
        ("slurm", {"venv": "/a", "scheduler_options": "--x"}, "#SBATCH directive"),
        ("slurm", {"venv": "/a", "address": "h", "interface": "ib0"}, "at most one of"),
        ("pbs", {**REQUIRED["pbs"], "launcher": "srun"}, "variable 'launcher'"),
        ("pbs", {**REQUIRED["pbs"], "launcher": "simple", "nodes_per_block": "2"}, "one node"),
        ("cloud", {}, "unknown kit 'cloud'; kits: local, pbs, slurm"),
    ],
)
def test_bad_values_are_named(
    kit: str, values: dict[str, str], message: str, tmp_path: Path
) -> None:
    with pytest.raises(KitError, match=re.escape(message)):
        render_kit(kit, values, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_unwritable_output_is_a_kit_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(KitError, match="kit 'local': FileExistsError"):
        render_kit("local", REQUIRED["local"], tmp_path / "file")


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(KitError) as caught:
        parse_values("slurm", {"walltime": "abc", "max_blocks": "-1", "foo": "1", "venv": "/a"})
    message = str(caught.value)
    assert "'walltime'" in message
    assert "'max_blocks'" in message
    assert "(got 'abc')" in message
    assert "unknown variable 'foo'" in message


def test_the_kits_ship_in_the_package_and_nowhere_else() -> None:
    for kit in KITS:
        assert {p.name for p in (KITS_DIR / kit).iterdir()} == {
            "config.yaml",
            "user_config_schema.json",
            "user_config_template.yaml.j2",
        }
    # The operators' directory points at `academy-ml endpoint render`: no second copy.
    assert [p.name for p in ENDPOINTS.iterdir()] == ["README.md"]
    assert "academy-ml endpoint render" in (ENDPOINTS / "README.md").read_text()


def test_the_operator_readme_explains_every_variable() -> None:
    readme = (ENDPOINTS / "README.md").read_text()
    for kit in KITS:
        for variable in kit_variables(kit):
            assert f"`{variable.name}`" in readme, (kit, variable.name)
