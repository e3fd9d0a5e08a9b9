"""A Parsl endpoint described as data: the registry's ``kind = "parsl"``.

:class:`ParslSpec` is the one description of a Parsl HighThroughputExecutor
in academy_ml: a registry entry written by hand, or the ``endpoint.toml`` an
endpoint kit renders (``academy-ml endpoint render slurm ...``), becomes a
Parsl :class:`~parsl.config.Config` here. The kit's Globus Compute template
describes the same executor from the same values, and both run the
:meth:`ParslSpec.worker_script` as ``worker_init``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from academy_ml.compute.placement.endpoints import Endpoint, ParslEndpoint

if TYPE_CHECKING:
    from parsl.config import Config

__all__ = ["ParslSpec"]

#: Settings of one provider only, and the provider they belong to.
_PROVIDER_SETTINGS = {
    "partition": "slurm",
    "qos": "slurm",
    "constraint": "slurm",
    "exclusive": "slurm",
    "cores_per_node": "slurm",
    "queue": "pbs",
    "cpus_per_node": "pbs",
    "select_options": "pbs",
    "launcher": "pbs",
    "mpiexec_bind_cmd": "pbs",
    "mpiexec_overrides": "pbs",
}
_PROVIDER_NAMES = {"slurm": "Slurm", "pbs": "PBS"}


class ParslSpec(BaseModel):
    """A Parsl HighThroughputExecutor on this machine, Slurm or PBS Pro.

    Settings that belong to one provider (``partition``, ``qos``... for
    Slurm; ``queue``, ``cpus_per_node``... for PBS) are refused with another.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["parsl"]
    provider: Literal["local", "slurm", "pbs"] = "local"
    address: str | None = Field(
        None, description="address workers reach the client at (local: 127.0.0.1; else hostname)"
    )
    interface: str | None = Field(
        None, description="take the address of this network interface instead (ib0, hsn0...)"
    )
    max_blocks: int = Field(1, ge=1, description="most blocks (batch jobs) at once")
    init_blocks: int = Field(1, ge=0, description="blocks started at once")
    nodes_per_block: int = Field(1, ge=1)
    workers_per_node: int = Field(1, ge=1, description="worker processes per node")
    cache_dir: str | None = Field(
        None,
        # Exported in double quotes: $VARIABLES expand on the node.
        pattern=r'^[^"`\\\n\r]+$',
        description="node-local cache (ACADEMY_ML_CACHE_DIR); $VARIABLES expand on the node",
    )
    worker_init: str = Field("", description="shell lines run before the workers start")
    walltime: str = Field("01:00:00", pattern=r"^\d+:\d\d:\d\d$")
    account: str | None = Field(None, description="account or project to charge")
    scheduler_options: str = Field("", description="extra #SBATCH / #PBS lines")
    partition: str | None = Field(None, description="Slurm partition")
    qos: str | None = Field(None, description="Slurm quality of service")
    constraint: str | None = Field(None, description="Slurm node features")
    exclusive: bool = Field(True, description="Slurm: whole nodes")
    cores_per_node: int | None = Field(None, ge=1, description="Slurm: cores per node")
    queue: str | None = Field(None, description="PBS queue")
    cpus_per_node: int = Field(1, ge=1, description="PBS: ncpus of each select chunk")
    select_options: str = Field("", description="PBS: more select resources, e.g. ngpus=4")
    launcher: Literal["mpiexec", "simple"] = Field(
        "mpiexec", description="PBS: mpiexec (a pool per node) or simple (one-node blocks)"
    )
    mpiexec_bind_cmd: str = Field("--cpu-bind", description="PBS: mpiexec's binding option")
    mpiexec_overrides: str = Field("--ppn 1", description="PBS: more mpiexec options")
    strategy_period: float = Field(0.2, gt=0, description="seconds between scaling decisions")
    heartbeat_period: int = Field(
        30, ge=1, description="seconds between heartbeats; also how often lost workers are noticed"
    )
    heartbeat_threshold: int = Field(120, ge=1, description="seconds of silence: manager lost")
    run_dir: str | None = Field(None, description="Parsl's run directory (default: ./runinfo)")

    @model_validator(mode="after")
    def _provider_fits(self) -> ParslSpec:
        if self.heartbeat_threshold <= self.heartbeat_period:
            raise ValueError("heartbeat_threshold must be > heartbeat_period")
        if self.init_blocks > self.max_blocks:
            raise ValueError("init_blocks must be <= max_blocks")
        if self.address is not None and self.interface is not None:
            raise ValueError("set at most one of address and interface")
        for name in sorted(self.model_fields_set & _PROVIDER_SETTINGS.keys()):
            owner = _PROVIDER_SETTINGS[name]
            if self.provider != owner:
                label = _PROVIDER_NAMES[owner]
                raise ValueError(f"{name} is a {label} setting: set provider = '{owner}'")
        if self.provider == "pbs" and self.queue is None:
            raise ValueError("provider 'pbs' needs a queue")
        if self.provider == "pbs" and self.launcher == "simple" and self.nodes_per_block != 1:
            raise ValueError("launcher 'simple' starts workers on one node only: nodes_per_block=1")
        return self

    def worker_script(self) -> str:
        """What every node runs before its workers start: ``worker_init``, then the cache."""
        lines = [self.worker_init.rstrip("\n")] if self.worker_init else []
        if self.cache_dir is not None:
            # No mkdir: the runtime creates the directory itself, private (0700).
            lines.append(f'export ACADEMY_ML_CACHE_DIR="{self.cache_dir}"')
        return "\n".join(lines)

    def parsl_config(self, name: str) -> Config:
        """The Parsl :class:`~parsl.config.Config` this spec describes."""
        from parsl.config import Config
        from parsl.executors import HighThroughputExecutor

        return Config(
            executors=[
                HighThroughputExecutor(
                    label=name,
                    address=self._address(),
                    max_workers_per_node=self.workers_per_node,
                    heartbeat_period=self.heartbeat_period,
                    heartbeat_threshold=self.heartbeat_threshold,
                    provider=self._provider(),
                )
            ],
            run_dir=self.run_dir or "runinfo",
            strategy_period=self.strategy_period,
            initialize_logging=False,
        )

    def build(self, name: str) -> Endpoint:
        """A :class:`ParslEndpoint` named ``name`` (its kernel starts now)."""
        return ParslEndpoint(name, self.parsl_config(name))

    def _address(self) -> str:
        if self.address is not None:
            return self.address
        if self.interface is not None:
            from parsl.addresses import address_by_interface

            return address_by_interface(self.interface)
        if self.provider == "local":
            return "127.0.0.1"
        from parsl.addresses import address_by_hostname

        return address_by_hostname()

    def _provider(self) -> Any:
        blocks: dict[str, Any] = {
            "init_blocks": self.init_blocks,
            "min_blocks": 0,
            "max_blocks": self.max_blocks,
            "nodes_per_block": self.nodes_per_block,
            "worker_init": self.worker_script(),
        }
        if self.provider == "local":
            from parsl.providers import LocalProvider

            return LocalProvider(**blocks)  # type: ignore[no-untyped-call]
        if self.provider == "slurm":
            from parsl.launchers import SrunLauncher
            from parsl.providers import SlurmProvider

            return SlurmProvider(
                partition=self.partition,
                account=self.account,
                qos=self.qos,
                constraint=self.constraint,
                cores_per_node=self.cores_per_node,
                exclusive=self.exclusive,
                walltime=self.walltime,
                scheduler_options=self.scheduler_options,
                launcher=SrunLauncher(),
                **blocks,
            )
        from parsl.launchers import MpiExecLauncher, SimpleLauncher
        from parsl.providers import PBSProProvider

        launcher = (
            SimpleLauncher()
            if self.launcher == "simple"
            else MpiExecLauncher(bind_cmd=self.mpiexec_bind_cmd, overrides=self.mpiexec_overrides)
        )
        return PBSProProvider(  # type: ignore[no-untyped-call]
            queue=self.queue,
            account=self.account,
            walltime=self.walltime,
            cpus_per_node=self.cpus_per_node,
            select_options=self.select_options,
            scheduler_options=self.scheduler_options,
            launcher=launcher,
            **blocks,
        )
