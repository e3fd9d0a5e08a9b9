"""Reading the fenced code blocks of the READMEs, and checking them without running them.

Used by ``readme_blocks_test.py`` (which says what is checked how). Shell
lines are checked, never run: an ``academy-ml`` line parses with the CLI's
own parser (a deployment it names loads with its ``--set`` overrides, a kit's
``--set`` values validate), ``make X`` names a Makefile target, ``python -m
X`` an importable module, ``python FILE`` a file of the checkout, ``python -c
CODE`` compiles, and a path under a directory of the checkout exists. TOML
blocks parse, and agent specs, deployments and endpoint registries validate.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import io
import itertools
import re
import shlex
import subprocess
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
#: Checkout directories a block's working directory links to.
LINKED = ("agents", "configs")

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<lang>[\w+-]*)[ \t]*$")
_DIRECTIVE = re.compile(r"^\s*<!--\s*docs-test:\s*(?P<text>.*?)\s*-->\s*$")
_ASSIGNMENT = re.compile(r"^[A-Za-z_]\w*=")
_PYTHON = re.compile(r"^python(\d+(\.\d+)?)?$")
_OPERATORS = {"|", "||", "&", "&&", ";", ";;", "(", ")"}


@dataclass(frozen=True)
class Block:
    """A fenced code block of a README."""

    file: str
    line: int
    lang: str
    text: str
    #: What a ``<!-- docs-test: ... -->`` right before the fence says, if any.
    directive: str | None

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def skip_reason(self) -> str | None:
        if self.directive is None or not self.directive.startswith("skip:"):
            return None
        return self.directive.removeprefix("skip:").strip()


def read_blocks(file: str, text: str) -> list[Block]:
    """Every fenced block of a Markdown text, dedented by its fence's indent."""
    lines = text.splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        fence = opening["fence"]
        closing = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        end = index + 1
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        if end == len(lines):
            raise ValueError(f"{file}:{index + 1}: the fence is never closed")
        indent = len(opening["indent"])
        body = [
            line[indent:] if line[:indent].strip() == "" else line.lstrip()
            for line in lines[index + 1 : end]
        ]
        before = next((line for line in reversed(lines[:index]) if line.strip()), "")
        directive = _DIRECTIVE.match(before)
        blocks.append(
            Block(
                file=file,
                line=index + 1,
                lang=opening["lang"],
                text="\n".join(body) + "\n",
                directive=None if directive is None else directive["text"],
            )
        )
        index = end + 1
    return blocks


@functools.cache
def tracked(pattern: str) -> list[str]:
    """Files of the checkout matching a git pathspec."""
    listing = subprocess.run(
        ["git", "ls-files", "--", pattern], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return sorted(listing.stdout.split())


def all_blocks() -> list[Block]:
    return [
        block
        for file in tracked("*README.md")
        for block in read_blocks(file, (ROOT / file).read_text(encoding="utf-8"))
    ]


def directive_problems(blocks: list[Block]) -> list[str]:
    """What is wrong with the blocks' directives (unknown, empty reason, nothing before)."""
    problems = []
    for number, block in enumerate(blocks):
        if block.directive is None:
            continue
        if block.directive == "after previous":
            previous = next((b for b in reversed(blocks[:number]) if b.lang == "python"), None)
            if block.lang != "python" or previous is None or previous.file != block.file:
                problems.append(f"{block.where}: 'after previous' needs python blocks in its file")
            elif previous.skip_reason is not None:
                problems.append(f"{block.where}: 'after previous' follows a skipped block")
        elif block.skip_reason is None:
            problems.append(f"{block.where}: unknown directive {block.directive!r}")
        elif not block.skip_reason:
            problems.append(f"{block.where}: a skip must say why")
    return problems


def python_scripts(blocks: list[Block]) -> list[tuple[Block, str]]:
    """Each python block with the blocks run after it, as one script (first block, code)."""
    scripts: list[tuple[Block, list[str]]] = []
    for block in blocks:
        if block.lang != "python":
            continue
        if block.directive == "after previous" and scripts:
            scripts[-1][1].append(block.text)
        else:
            scripts.append((block, [block.text]))
    return [(first, "\n".join(parts)) for first, parts in scripts]


# --- shell lines ---------------------------------------------------------------


@functools.cache
def make_targets() -> frozenset[str]:
    rule = re.compile(r"^([\w.-]+(?:[ \t]+[\w.-]+)*)[ \t]*::?(?!=)")
    targets: set[str] = set()
    for line in (ROOT / "Makefile").read_text(encoding="utf-8").splitlines():
        found = rule.match(line)
        if found:
            targets.update(t for t in found[1].split() if not t.startswith("."))
    return frozenset(targets)


def commands(text: str) -> Iterator[list[str]]:
    """The simple commands of a shell text (continuations joined, comments dropped)."""
    joined = re.sub(r"\\\n", " ", text)
    for line in joined.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        command: list[str] = []
        for token in lexer:
            if token in _OPERATORS:
                if command:
                    yield command
                command = []
            else:
                command.append(token)
        if command:
            yield command


def shell_problems(text: str) -> list[str]:
    """What is wrong with the commands of a shell text (nothing is run)."""
    problems: list[str] = []
    top = {Path(file).parts[0] for file in tracked("*") if len(Path(file).parts) > 1}
    for command in commands(text):
        line = shlex.join(command)
        for token in command:
            value = token.partition("=")[2] if _ASSIGNMENT.match(token) else token
            value = value.partition("=")[2] if value.startswith("--") else value
            if "/" in value and Path(value).parts[0] in top and not (ROOT / value).exists():
                problems.append(f"{line}: no {value} in the checkout")
        words = list(itertools.dropwhile(_ASSIGNMENT.match, command))  # VAR=value before
        if not words:
            continue
        program, args = Path(words[0]).name, words[1:]
        check = _CHECKS.get(program)
        if check is None and _PYTHON.match(program):
            check = _python_command
        if check is not None:
            problems.extend(f"{line}: {problem}" for problem in check(args))
    return problems


def _make(args: list[str]) -> list[str]:
    known = make_targets()
    wanted = [a for a in args if not a.startswith("-") and not _ASSIGNMENT.match(a)]
    return [f"no Makefile target {target!r}" for target in wanted if target not in known]


def _python_command(args: list[str]) -> list[str]:
    words = iter(args)
    for word in words:
        if word == "-m":
            module = next(words, "")
            if importlib.util.find_spec(module) is None:
                return [f"no module {module!r}"]
            return []
        if word == "-c":
            try:
                compile(next(words, ""), "<python -c>", "exec")
            except SyntaxError as error:
                return [f"python -c: {error}"]
            return []
        if word in ("-X", "-W"):
            next(words, None)
        elif not word.startswith("-"):
            return [] if (ROOT / word).is_file() else [f"no script {word} in the checkout"]
    return []


def _shell(args: list[str]) -> list[str]:
    if "-c" in args[:-1]:
        return shell_problems(args[args.index("-c") + 1])
    return []


@contextlib.contextmanager
def _parser_errors(problems: list[str]) -> Iterator[None]:
    """Turns argparse's exit into a problem (its last stderr line); ``--help`` is fine."""
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            yield
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            problems.append(stderr.getvalue().strip().splitlines()[-1])


def _academy_ml(args: list[str]) -> list[str]:
    from academy_ml.deploy import cli, demo
    from academy_ml.deploy.kits.values import parse_values
    from academy_ml.deploy.launch.config import load_deployment
    from academy_ml.exceptions import AcademyMLError

    problems: list[str] = []
    parsed: Any = None
    with _parser_errors(problems):
        parsed, rest = cli.build_parser().parse_known_args(args)
        if parsed.command == "demo":
            demo.build_parser().parse_args(rest)
        elif rest:
            cli.build_parser().parse_args(args)  # argparse's own "unrecognized arguments"
    if problems or parsed is None:
        return problems
    try:
        if hasattr(parsed, "config"):
            load_deployment(ROOT / parsed.config, parsed.set)
        elif parsed.command == "endpoint" and parsed.action == "render":
            parse_values(parsed.kit, dict(v.partition("=")[::2] for v in parsed.values))
    except AcademyMLError as error:
        problems.append(str(error))
    return problems


_CHECKS: dict[str, Callable[[list[str]], list[str]]] = {
    "academy-ml": _academy_ml,
    "make": _make,
    "bash": _shell,
    "sh": _shell,
}


# --- toml ----------------------------------------------------------------------


def toml_problems(text: str, directory: Path) -> list[str]:
    """Parse a TOML block; validate it as what it is (agent spec, deployment, registry)."""
    from academy_ml.compute.placement import load_registry
    from academy_ml.deploy.launch.config import load_agent_spec, load_deployment
    from academy_ml.exceptions import AcademyMLError

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        return [f"not TOML: {error}"]
    file = directory / "configs-of-block" / "block.toml"
    file.parent.mkdir(parents=True)
    for name in LINKED:  # a deployment names ../agents/*.toml
        (directory / name).symlink_to(ROOT / name)
    file.write_text(text, encoding="utf-8")
    try:
        if "agent" in data:
            spec = load_agent_spec(file)
            module, _, name = spec.agent.class_.rpartition(".")
            if not hasattr(importlib.import_module(module), name):
                return [f"agent.class: no {name} in {module}"]
        elif "deployment" in data:
            load_deployment(file)
        elif "endpoints" in data or "placement" in data:
            load_registry(file)
        else:
            return ["neither an agent spec, a deployment nor an endpoint registry"]
    except (AcademyMLError, ImportError) as error:
        return [str(error)]
    return []
