"""The kits are package data: found through importlib.resources, never through a checkout path.

An installed wheel has no ``endpoints/`` or source tree beside it, and a
package imported from a zip archive has no files on disk at all: rendering
from such a copy of ``academy_ml`` fails for any lookup by filesystem path.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import academy_ml
from academy_ml.deploy.kits import KITS, render_kit

#: The package's own directory in this checkout.
PACKAGE = Path(academy_ml.__file__).parent
#: Values every kit accepts.
VALUES = {"venv": "/opt/academy-ml-env", "account": "m1234", "queue": "debug"}

#: Runs in a child process whose only copy of academy_ml is the zip in argv[1].
RENDER_FROM_ZIP = """
import json, sys
from pathlib import Path

archive, output, values = sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3])
sys.path.insert(0, archive)
import academy_ml
from academy_ml.deploy.kits import KITS, render_kit

assert academy_ml.__file__.startswith(archive), academy_ml.__file__
for kit in KITS:
    render_kit(kit, {k: v for k, v in values.items() if k in KITS[kit].model_fields}, output / kit)
print(sorted(name for name in sys.modules if name.startswith("academy_ml")))
"""


def _kit_values(kit: str) -> dict[str, str]:
    return {key: value for key, value in VALUES.items() if key in KITS[kit].model_fields}


def _zip_package(archive: Path) -> Path:
    """``academy_ml``'s sources and data, without the compiled extension, in a zip."""
    with zipfile.ZipFile(archive, "w") as out:
        for path in sorted(PACKAGE.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".so":
                out.write(path, path.relative_to(PACKAGE.parent).as_posix())
    return archive


def _render_from(archive: Path, output: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Renders every kit into ``output`` in a child process importing ``archive``."""
    return subprocess.run(
        [sys.executable, "-c", RENDER_FROM_ZIP, str(archive), str(output), json.dumps(VALUES)],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_kits_render_from_a_zipped_package_as_from_the_checkout(tmp_path: Path) -> None:
    archive = _zip_package(tmp_path / "academy_ml.zip")
    zipped = tmp_path / "zipped"
    # cwd is an empty directory: nothing resolves relative to the checkout.
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    child = _render_from(archive, zipped, workdir)
    assert child.returncode == 0, child.stderr
    # The runtime extension cannot load from a zip: rendering must not need it.
    assert "academy_ml._runtime" not in child.stdout
    for kit in KITS:
        written = render_kit(kit, _kit_values(kit), tmp_path / "checkout" / kit)
        assert {path.name for path in (zipped / kit).iterdir()} == {p.name for p in written}
        for path in written:
            assert (zipped / kit / path.name).read_text() == path.read_text(), (kit, path.name)


def test_a_missing_kit_file_is_missing_from_the_zip_too(tmp_path: Path) -> None:
    """The zip test can fail: without a template in the archive, rendering from it fails."""
    archive = _zip_package(tmp_path / "full.zip")
    broken = tmp_path / "broken.zip"
    dropped = "academy_ml/deploy/kits/slurm/user_config_template.yaml.j2"
    with zipfile.ZipFile(archive) as source, zipfile.ZipFile(broken, "w") as out:
        for item in source.infolist():
            if item.filename != dropped:
                out.writestr(item, source.read(item))
    child = _render_from(broken, tmp_path / "out", tmp_path)
    assert child.returncode != 0
    assert "user_config_template.yaml.j2" in child.stderr
