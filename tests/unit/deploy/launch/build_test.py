"""Agent init arguments are checked against the class before anything launches."""

from __future__ import annotations

from pathlib import Path

import pytest

from academy_ml.agents.knowledge import (
    InMemoryKnowledge,
    InMemoryKnowledgeBase,
    RedisKnowledge,
    SqliteKnowledge,
)
from academy_ml.deploy.launch import load_deployment
from academy_ml.deploy.launch.build import check_agents, knowledge_factory
from academy_ml.exceptions import ConfigError


def _deployment(directory: Path, cls: str, init: str, overrides: tuple[str, ...] = ()) -> None:
    (directory / "planner.toml").write_text(
        f'[agent]\nclass = "{cls}"\nname = "planner"\n[agent.init]\n{init}\n'
    )
    config = directory / "deployment.toml"
    config.write_text('[deployment]\nagents = ["planner.toml"]\n')
    check_agents(load_deployment(config, overrides))


def test_a_value_of_the_wrong_type_names_file_key_class_and_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        _deployment(tmp_path, "academy_ml.agents.PlannerAgent", 'budget = "abc"')
    message = str(error.value)
    assert message.startswith(f"{tmp_path / 'planner.toml'}: agent.init.budget: ")
    assert "PlannerAgent expects int, got 'abc'" in message


def test_an_override_is_checked_like_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"agent\.init\.budget: PlannerAgent expects int"):
        _deployment(
            tmp_path, "academy_ml.agents.PlannerAgent", "budget = 5", ("planner.budget=abc",)
        )


def test_an_unknown_argument_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"agent\.init\.budgte: PlannerAgent takes no argument"):
        _deployment(tmp_path, "academy_ml.agents.PlannerAgent", "budgte = 5")


def test_arguments_passed_up_through_kwargs_are_checked_against_the_base(tmp_path: Path) -> None:
    # MofaPlanner(*args, refit_every, **kwargs) passes budget on to PlannerAgent.
    _deployment(tmp_path, "mofa.agents.MofaPlanner", "budget = 5\nrefit_every = 3")
    with pytest.raises(ConfigError, match=r"agent\.init\.budget: MofaPlanner expects int"):
        _deployment(tmp_path, "mofa.agents.MofaPlanner", 'budget = "many"')
    with pytest.raises(ConfigError, match=r"agent\.init\.refit_every: MofaPlanner expects int"):
        _deployment(tmp_path, "mofa.agents.MofaPlanner", "budget = 5\nrefit_every = [1]")


def test_fitting_values_and_object_tables_pass(tmp_path: Path) -> None:
    _deployment(
        tmp_path,
        "academy_ml.agents.PlannerAgent",
        'budget = 5\nhigh_water = 8\nretrain_flag = "stable"\nreview_interval_s = 1',
    )
    # a table with a `class` key is built (and checked) when the agent is built
    _deployment(
        tmp_path,
        "academy_ml.agents.GenerationAgent",
        'batch_size = 4\ngenerator = { class = "mofa.genes.LinkerGenerator", seed = 0 }',
    )


def test_a_class_that_is_no_agent_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"agent\.class: pathlib\.Path is not an Academy Agent"):
        _deployment(tmp_path, "pathlib.Path", "")


@pytest.mark.parametrize(
    ("placement", "key", "missing"),
    [
        ('endpoint = "gpu"', "placement.endpoint", "gpu"),
        ('endpoint = "pool"\nbackups = ["pool", "spare"]', "placement.backups", "spare"),
    ],
)
def test_a_placement_on_an_endpoint_the_registry_lacks(
    tmp_path: Path, placement: str, key: str, missing: str
) -> None:
    (tmp_path / "analysis.toml").write_text(
        '[agent]\nclass = "academy_ml.agents.AnalysisAgent"\nname = "analysis"\n'
        '[agent.init]\nevaluator = { class = "academy_ml.agents.FunctionCalls", '
        'function = "math.sqrt" }\n'
        f"[placement]\n{placement}\n"
    )
    config = tmp_path / "deployment.toml"
    config.write_text(
        '[deployment]\nagents = ["analysis.toml"]\n[endpoints.pool]\nkind = "local"\n'
    )
    with pytest.raises(ConfigError) as error:
        check_agents(load_deployment(config))
    assert str(error.value) == (
        f"{tmp_path / 'analysis.toml'}: {key}: no endpoint {missing!r} in {config} (known: pool)"
    )


def test_the_knowledge_factory_follows_the_deployment(tmp_path: Path) -> None:
    (tmp_path / "planner.toml").write_text(
        '[agent]\nclass = "academy_ml.agents.PlannerAgent"\nname = "planner"\n'
    )
    config = tmp_path / "deployment.toml"
    config.write_text('[deployment]\nname = "mofa"\nagents = ["planner.toml"]\n')
    memory = InMemoryKnowledgeBase()
    embedded = knowledge_factory(load_deployment(config), memory)
    assert isinstance(embedded, InMemoryKnowledge)
    assert embedded.open() is memory  # every agent of the run shares the caller's
    redis = load_deployment(
        config,
        ["deployment.exchange=redis://127.0.0.1:1/0", "deployment.knowledge=exchange"],
    )
    assert knowledge_factory(redis, memory) == RedisKnowledge("redis://127.0.0.1:1/0", "mofa")
    # Without a caller's in-memory one: the deployment's own SQLite file, or memory.
    assert knowledge_factory(load_deployment(config)) == SqliteKnowledge(
        tmp_path / "runinfo" / "mofa" / "knowledge.sqlite"
    )
    memory_only = load_deployment(config, ["deployment.knowledge=memory"])
    assert isinstance(knowledge_factory(memory_only), InMemoryKnowledge)
    with pytest.raises(
        ConfigError, match="shares an InMemoryKnowledgeBase, not a RedisKnowledgeBase"
    ):
        knowledge_factory(load_deployment(config), RedisKnowledge("redis://127.0.0.1:1/0").open())
