"""The endpoint registry: loading, validation messages, building endpoints."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import pytest

from academy_ml.compute.placement import (
    GlobusComputeSpec,
    LocalEndpoint,
    LocalSpec,
    ParslSpec,
    RegistryError,
    build_placer,
    load_placement_settings,
    load_registry,
)

REPO = Path(__file__).resolve().parents[4]


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path


def test_example_registry_loads() -> None:
    example = REPO / "configs" / "endpoints.example.toml"
    specs = load_registry(example)
    assert set(specs) == {"laptop", "cluster", "polaris"}
    assert isinstance(specs["laptop"], LocalSpec)
    assert isinstance(specs["cluster"], ParslSpec)
    assert isinstance(specs["polaris"], GlobusComputeSpec)
    assert specs["polaris"].endpoint_id == UUID("2c3f5a57-7b0e-4c9f-9d2a-7e0f3b1f6a11")
    assert load_placement_settings(example).attempts == 3
    # the directory skips examples
    assert "laptop" not in load_registry(REPO / "configs")


def test_directory_merges_files_and_ignores_other_tables(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", '[exchange]\nurl = "x"\n[endpoints.one]\nkind = "local"\n')
    write(tmp_path, "b.toml", '[endpoints.two]\nkind = "local"\nworkers = 4\n')
    write(tmp_path, "c.toml", "[placement]\npolicy = 'round_robin'\n")
    specs = load_registry(tmp_path)
    assert list(specs) == ["one", "two"]
    assert specs["two"] == LocalSpec(kind="local", workers=4)
    assert load_placement_settings(tmp_path).policy == "round_robin"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "[endpoints.hpc]\nkind = 'parsl'\nmax_blocks = 0\n",
            "endpoints.hpc.max_blocks: must be >= 1",
        ),
        ("[endpoints.hpc]\nkind = 'k8s'\n", "endpoints.hpc: kind must be one of 'local', 'parsl'"),
        ("[endpoints.hpc]\nworkers = 2\n", "endpoints.hpc: missing kind"),
        ("[endpoints.gc]\nkind = 'globus_compute'\n", "endpoints.gc.endpoint_id: required"),
        (
            "[endpoints.gc]\nkind = 'globus_compute'\nendpoint_id = 'nope'\n",
            "endpoints.gc.endpoint_id: Input should be a valid UUID",
        ),
        ("[endpoints.l]\nkind = 'local'\nthreads = 2\n", "endpoints.l.threads: unknown setting"),
        (
            "[endpoints.l]\nkind = 'local'\ncache_dir = '/c'\n",
            "endpoints.l: cache_dir needs processes",
        ),
        (
            "[endpoints.p]\nkind = 'parsl'\nprovider = 'pbs'\n",
            "endpoints.p: provider 'pbs' needs a queue",
        ),
        ("[endpoints.p]\nkind = 'parsl'\npartition = 'x'\n", "partition is a Slurm setting"),
        ("[endpoints.p]\nkind = 'parsl'\nexclusive = false\n", "exclusive is a Slurm setting"),
        (
            "[endpoints.p]\nkind = 'parsl'\nprovider = 'slurm'\nqueue = 'q'\n",
            "queue is a PBS setting: set provider = 'pbs'",
        ),
        (
            "[endpoints.p]\nkind = 'parsl'\nprovider = 'pbs'\nqueue = 'q'\nconstraint = 'c'\n",
            "constraint is a Slurm setting: set provider = 'slurm'",
        ),
        (
            "[endpoints.p]\nkind = 'parsl'\naddress = 'h'\ninterface = 'ib0'\n",
            "set at most one of address and interface",
        ),
        (
            "[endpoints.p]\nkind = 'parsl'\nprovider = 'pbs'\nqueue = 'q'\n"
            "launcher = 'simple'\nnodes_per_block = 2\n",
            "launcher 'simple' starts workers on one node only",
        ),
        (
            "[endpoints.p]\nkind = 'parsl'\ncache_dir = '/a\"b'\n",
            "endpoints.p.cache_dir: String should match",
        ),
        (
            "[endpoints.p]\nkind = 'parsl'\nconfig_file = 'x.py'\n",
            "endpoints.p.config_file: unknown setting",
        ),
        (
            "[endpoints.p]\nkind = 'parsl'\nwalltime = '1h'\n",
            "endpoints.p.walltime: String should match",
        ),
        ("[endpoints.p]\nkind = 'parsl'\ninit_blocks = 3\n", "init_blocks must be <= max_blocks"),
        ("[placement]\nattempts = 0\n", "placement.attempts: must be >= 1"),
        ("[placement]\npolicy = 'random'\n", "placement.policy: Input should be 'affinity'"),
        ("[endpoints.l\n", "x.toml: "),
    ],
)
def test_errors_name_file_key_and_problem(tmp_path: Path, text: str, problem: str) -> None:
    path = write(tmp_path, "x.toml", text)
    with pytest.raises(RegistryError) as caught:
        load_registry(path)  # validates the whole file, [placement] too
    assert str(caught.value).startswith(f"{path}: ")
    assert problem in str(caught.value)


def test_duplicates_across_files(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", "[endpoints.one]\nkind = 'local'\n[placement]\nattempts = 2\n")
    write(tmp_path, "b.toml", "[endpoints.one]\nkind = 'local'\n[placement]\nattempts = 3\n")
    with pytest.raises(RegistryError, match=r"b.toml: endpoints.one: already defined in .*a.toml"):
        load_registry(tmp_path)
    with pytest.raises(RegistryError, match=r"b.toml: placement: already defined in .*a.toml"):
        load_placement_settings(tmp_path)


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="no such file or directory"):
        load_registry(tmp_path / "nope.toml")


# parsl.addresses.address_by_interface never closes the socket it asks.
@pytest.mark.filterwarnings("ignore:unclosed <socket.socket:ResourceWarning")
def test_parsl_specs_make_configs(tmp_path: Path) -> None:
    from parsl.executors import HighThroughputExecutor
    from parsl.launchers import MpiExecLauncher, SimpleLauncher, SrunLauncher
    from parsl.providers import LocalProvider, PBSProProvider, SlurmProvider

    local = ParslSpec(kind="parsl", cache_dir="/c d", worker_init="module load x")
    executor = local.parsl_config("ep").executors[0]
    assert isinstance(executor, HighThroughputExecutor)
    assert executor.label == "ep"
    assert executor.address == "127.0.0.1"
    assert isinstance(executor.provider, LocalProvider)
    assert executor.provider.worker_init == ('module load x\nexport ACADEMY_ML_CACHE_DIR="/c d"')
    slurm = ParslSpec(kind="parsl", provider="slurm", partition="p", address="10.0.0.1")
    provider = slurm.parsl_config("s").executors[0].provider  # type: ignore[attr-defined]
    assert isinstance(provider, SlurmProvider)
    assert isinstance(provider.launcher, SrunLauncher)
    assert provider.partition == "p"
    assert (provider.qos, provider.constraint, provider.exclusive) == (None, None, True)
    slurm = ParslSpec(
        kind="parsl",
        provider="slurm",
        qos="debug",
        constraint="cpu&ib",
        exclusive=False,
        cores_per_node=64,
        interface="lo",
        cache_dir="/scratch/$USER/aml",
    )
    executor = slurm.parsl_config("s").executors[0]
    assert executor.address == "127.0.0.1"  # type: ignore[attr-defined]  # the address of lo
    provider = executor.provider  # type: ignore[attr-defined]
    assert (provider.qos, provider.constraint) == ("debug", "cpu&ib")
    assert (provider.exclusive, provider.cores_per_node) == (False, 64)
    # double quotes: the variable expands on the node
    assert provider.worker_init.strip() == 'export ACADEMY_ML_CACHE_DIR="/scratch/$USER/aml"'
    pbs = ParslSpec(kind="parsl", provider="pbs", queue="debug", address="10.0.0.1")
    provider = pbs.parsl_config("p").executors[0].provider  # type: ignore[attr-defined]
    assert isinstance(provider, PBSProProvider)
    assert isinstance(provider.launcher, MpiExecLauncher)
    assert (provider.launcher.bind_cmd, provider.launcher.overrides) == ("--cpu-bind", "--ppn 1")
    simple = ParslSpec(kind="parsl", provider="pbs", queue="q", launcher="simple", cpus_per_node=8)
    provider = simple.parsl_config("p").executors[0].provider  # type: ignore[attr-defined]
    assert isinstance(provider.launcher, SimpleLauncher)
    assert provider.cpus_per_node == 8


def test_build_placer_from_a_registry(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "r.toml",
        "[placement]\nattempts = 5\ntimeout_s = 9\n"
        "[endpoints.a]\nkind = 'local'\n[endpoints.b]\nkind = 'local'\nworkers = 1\n",
    )
    with build_placer(path) as placer:
        assert list(placer.endpoints) == ["a", "b"]
        assert all(isinstance(e, LocalEndpoint) for e in placer.endpoints.values())
        assert (placer.attempts, placer.timeout_s, placer.policy) == (5, 9, "affinity")
