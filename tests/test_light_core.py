"""A light core: the package face, the CLI's start, the geometry, the metrics and the extraction
import without torch (issue 23, part 5), so `isofield --help` starts in well under a second.

Each check runs in a fresh interpreter: this test process has torch loaded already.
"""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from importlib.metadata import version

import pytest

import isofield
from isofield._version import __version__

# The packages whose every module must import without torch; new modules there are checked too.
LIGHT_PACKAGES = ("isofield.geometry", "isofield.metrics", "isofield.extract")
LIGHT_MODULES = ("isofield", "isofield._version", "isofield.cli")

# Imports the modules named in argv one by one and prints the first that loaded torch, or "none".
_FIRST_TORCH_IMPORTER = """
import importlib, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
    if "torch" in sys.modules:
        print(name)
        break
else:
    print("none")
"""

# Runs the CLI with argv in-process and prints, after its output, whether torch was loaded.
_CLI_LOADS_TORCH = """
import sys
from isofield.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
print(f"exit {code}, torch loaded: {'torch' in sys.modules}")
"""


def _python(code: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                          timeout=120, check=False)


def _light_modules() -> list[str]:
    names = list(LIGHT_MODULES)
    for package in LIGHT_PACKAGES:
        names.append(package)
        path = importlib.import_module(package).__path__
        names += sorted(info.name for info in pkgutil.walk_packages(path, prefix=f"{package}."))
    return names


def test_the_light_modules_are_found():
    names = _light_modules()
    for expected in ("isofield.geometry.io", "isofield.geometry.raster", "isofield.geometry.scan",
                     "isofield.metrics.surface", "isofield.metrics.clouds", "isofield.metrics.onet",
                     "isofield.extract.api", "isofield.extract.sparse"):
        assert expected in names


def test_geometry_metrics_and_extract_import_without_torch():
    result = _python(_FIRST_TORCH_IMPORTER, *_light_modules())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "none", f"{result.stdout.strip()} imports torch"


def test_the_check_sees_a_module_that_imports_torch():
    result = _python(_FIRST_TORCH_IMPORTER, "isofield.geometry.io", "isofield.nn.mlp", "isofield.cli")
    assert result.stdout.strip() == "isofield.nn.mlp"


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["fit", "--help"], ["eval", "--help"]])
def test_the_cli_starts_without_torch(argv):
    result = _python(_CLI_LOADS_TORCH, *argv)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "exit 0, torch loaded: False"
    expected = f"isofield {__version__}" if argv == ["--version"] else f"usage: isofield {' '.join(argv[:-1])}"
    assert result.stdout.startswith(expected.rstrip())


def test_the_version_has_one_source():
    assert isofield.__version__ == __version__ == version("isofield")


def test_the_package_face_imports_its_entry_points_on_first_use():
    from isofield.extract.api import extract_mesh

    assert isofield.extract_mesh is extract_mesh
    fit_module = importlib.import_module("isofield.fitting.fit")
    assert isofield.fit is fit_module.fit
    assert isofield.resume is fit_module.resume
    assert {"fit", "fit_points", "resume", "load_field", "as_numpy_field", "extract_mesh"} <= set(dir(isofield))
    with pytest.raises(AttributeError, match="module 'isofield' has no attribute 'fitt'"):
        getattr(isofield, "fitt")
