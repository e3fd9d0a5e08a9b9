from __future__ import annotations

from pathlib import Path

import pytest

from academy_ml.deploy.launch import load_deployment
from academy_ml.deploy.launch.config import parse_overrides
from academy_ml.exceptions import ConfigError

CONFIGS = Path(__file__).resolve().parents[4] / "configs"


def test_the_shipped_deployments_load() -> None:
    local = load_deployment(CONFIGS / "local.toml")
    assert set(local.agents) == {"generation", "analysis", "planner"}
    assert not local.processes
    assert local.knowledge_url is None
    assert local.knowledge_path == CONFIGS / "runinfo" / "mofa" / "knowledge.sqlite"
    redis = load_deployment(CONFIGS / "redis.toml")
    assert redis.processes
    assert redis.knowledge_url == "redis://127.0.0.1:6379/0"
    assert redis.registry == CONFIGS / "local.toml"
    analysis = redis.agents["analysis"]
    assert analysis.placement is not None
    assert analysis.placement.endpoint == "local-parsl"


def test_overrides_reach_agents_placement_and_settings() -> None:
    deployment = load_deployment(
        CONFIGS / "local.toml",
        [
            "planner.budget=12",
            "analysis.placement.endpoint=local-pool",
            "generation.generator={ class = 'x.Y', seed = 3 }",
            "deployment.name=other",
        ],
    )
    assert deployment.agents["planner"].agent.init["budget"] == 12
    placement = deployment.agents["analysis"].placement
    assert placement is not None
    assert placement.endpoint == "local-pool"
    assert deployment.agents["generation"].agent.init["generator"] == {"class": "x.Y", "seed": 3}
    assert deployment.settings.name == "other"


def test_override_values_are_toml_or_strings() -> None:
    assert parse_overrides(["a.b=1", "a.c=true", "a.d=redis://h:1/0", "e.f=[1, 2]"]) == {
        "a": {"b": 1, "c": True, "d": "redis://h:1/0"},
        "e": {"f": [1, 2]},
    }
    with pytest.raises(ConfigError, match=r"expected NAME\.KEY=VALUE"):
        parse_overrides(["budget=3"])


def write(directory: Path, agent: str, deployment: str = "") -> Path:
    (directory / "a.toml").write_text(agent)
    config = directory / "d.toml"
    config.write_text('[deployment]\nagents = ["a.toml"]\n' + deployment)
    return config


GOOD = '[agent]\nclass = "academy_ml.agents.PlannerAgent"\nname = "a"\n'


@pytest.mark.parametrize(
    ("agent", "deployment", "message"),
    [
        ('[agent]\nname = "a"\n', "", "a.toml: agent.class: required"),
        (GOOD + "colour = 1\n", "", "a.toml: agent.colour: unknown setting"),
        (GOOD + '[agent.handles]\nplanner = "x"\n', "", "agent.handles.planner: no agent 'x'"),
        (GOOD + "[[strategies]]\nname = 's'\nthen = [{ stop = true }]\n", "",
         "a.toml: strategy 's': when: Field required"),
        (GOOD, 'exchange = "redis://h:1/0"\nknowledge = "memory"\n',
         "knowledge = 'memory' cannot be shared"),
        (GOOD, 'knowledge = "sqlite:"\n', "knowledge = 'sqlite:' names no file"),
        (GOOD, 'knowledge = "postgres://h"\n', "knowledge must be 'sqlite', 'sqlite:PATH'"),
        (GOOD, 'exchange = "amqp://h"\n', "deployment: exchange must be 'local' or a redis:// URL"),
        (GOOD, 'stop_with = "planner"\n', "deployment.stop_with: no agent 'planner'"),
        (GOOD + "[placement]\n", "", "a.toml: placement.endpoint: required"),
        ("[agent\n", "", "a.toml: Expected ']'"),
    ],
)  # fmt: skip
def test_malformed_files_name_the_file_key_and_problem(
    tmp_path: Path, agent: str, deployment: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_deployment(write(tmp_path, agent, deployment))
    assert message in str(caught.value)


def test_a_missing_spec_file_and_an_unknown_override_target_are_named(tmp_path: Path) -> None:
    config = tmp_path / "d.toml"
    config.write_text('[deployment]\nagents = ["missing.toml"]\n')
    with pytest.raises(ConfigError, match=r"missing\.toml: .*No such file"):
        load_deployment(config)
    with pytest.raises(ConfigError, match=r"override ghost\.\*: no agent 'ghost'"):
        load_deployment(write(tmp_path, GOOD), ["ghost.budget=1"])


@pytest.mark.parametrize("value", ["5", '"local"', "[1, 2]"])
def test_a_deployment_that_is_no_table_is_refused(tmp_path: Path, value: str) -> None:
    config = tmp_path / "deployment.toml"
    config.write_text(f"deployment = {value}\n")
    with pytest.raises(ConfigError, match=r"deployment\.toml: deployment: expected a table"):
        load_deployment(config)


@pytest.mark.parametrize(
    ("key", "url", "problem"),
    [
        ("exchange", "redis://127.0.0.1:6379/0?colour=blue", "unknown Redis URL parameter"),
        ("exchange", "redis://127.0.0.1:6379/zero", "database number must be an integer"),
        ("knowledge", "redis://127.0.0.1:6379/0?db=x", "database number must be an integer"),
        ("exchange", "rediss://h:6379/0?ssl_ca_certs=/no/such.pem", "TLS files"),
    ],
)
def test_a_bad_redis_url_names_the_file_and_key(
    tmp_path: Path, key: str, url: str, problem: str
) -> None:
    (tmp_path / "a.toml").write_text('[agent]\nclass = "x.Y"\nname = "a"\n')
    config = tmp_path / "deployment.toml"
    other = "knowledge" if key == "exchange" else "exchange"
    fine = "exchange" if key == "exchange" else "redis://127.0.0.1:6379/0"
    config.write_text(f'[deployment]\nagents = ["a.toml"]\n{key} = "{url}"\n{other} = "{fine}"\n')
    with pytest.raises(ConfigError) as error:
        load_deployment(config)
    assert str(error.value).startswith(f"{config}: deployment.{key}: ")
    assert problem in str(error.value)


def test_the_knowledge_base_is_sqlite_in_the_deployments_directory_by_default(
    tmp_path: Path,
) -> None:
    config = write(tmp_path, GOOD, 'name = "run"\n')
    default = load_deployment(config)
    assert default.knowledge_path == tmp_path / "runinfo" / "run" / "knowledge.sqlite"
    assert default.knowledge_url is None
    named = load_deployment(config, ["deployment.knowledge=sqlite:state/kb.sqlite"])
    assert named.knowledge_path == tmp_path / "state" / "kb.sqlite"
    absolute = load_deployment(config, [f"deployment.knowledge=sqlite:{tmp_path / 'x.db'}"])
    assert absolute.knowledge_path == tmp_path / "x.db"
    processes = load_deployment(config, ["deployment.exchange=redis://h:1/0"])
    assert processes.processes  # hosts share the file too
    assert processes.knowledge_path == default.knowledge_path
    assert processes.knowledge_url is None
    redis = load_deployment(
        config, ["deployment.exchange=redis://h:1/0", "deployment.knowledge=exchange"]
    )
    assert redis.knowledge_path is None
    assert load_deployment(config, ["deployment.knowledge=memory"]).knowledge_path is None
