"""Developer sessions. Plain ``nox`` runs the tests of every member, integration, lint and typecheck.

Named-only sessions: ``bench``, ``demo``, ``docs``, ``wheels``, ``fidelity``, ``scaffolds``, ``faults``,
``scale``.
Every session uses uv-made virtualenvs; members are installed from their folders so each member's
tests run with only that member, its dependencies and the test tools.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nox
import tomllib

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["tests", "integration", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent
PYTHON = os.environ.get("ETIKET_NOX_PYTHON", "3.11")
# Test-only tools of every member; xarray is the independent reader the fidelity tests compare our
# netCDF files with (no member needs it at run time).
TEST_TOOLS = ["pytest>=8", "pytest-xdist>=3.5", "pytest-timeout>=2.3", "xarray>=2023.1"]
# The core's CLI tests drive the CLI with a real backend: folderbase, the one without extras.
CORE_TEST_BACKEND = "packages/etiket-sync-agent-folderbase"
CORE = "packages/etiket-sync-agent"
LOCAL_SERVER = "tools/etiket-local-server"


def _members() -> dict[str, Path]:
    """Member name → folder, for every packages/*/pyproject.toml."""
    members: dict[str, Path] = {}
    for pyproject in sorted(ROOT.glob("packages/*/pyproject.toml")):
        name = tomllib.loads(pyproject.read_text())["project"]["name"]
        members[name] = pyproject.parent
    return members


def _install_workspace(session: nox.Session, *folders: str | Path, extras: str = "") -> None:
    """Install members from their folders (never the package index, where names clash)."""
    args: list[str] = []
    for folder in folders:
        path = str(folder)
        if path == CORE and extras:
            path = f"{path}[{extras}]"
        args += ["-e", path]
    session.install(*args)


def _install_everything(session: nox.Session, *, extras: str) -> None:
    """The core (with ``extras``), every sibling package and the local server."""
    siblings = (folder for name, folder in _members().items() if name != "etiket-sync-agent")
    _install_workspace(session, CORE, *siblings, LOCAL_SERVER, extras=extras)


@nox.session(python=PYTHON)
@nox.parametrize("member", list(_members()))
def tests(session: nox.Session, member: str) -> None:
    """One member's own tests, in an environment with only that member and its dependencies."""
    folder = _members()[member]
    is_core = folder.as_posix().endswith(CORE)
    needed = [CORE, CORE_TEST_BACKEND] if is_core else [CORE, folder.relative_to(ROOT)]
    _install_workspace(session, *needed, LOCAL_SERVER, extras="postgresql,testing,netcdf")
    session.install(*TEST_TOOLS)
    session.run("pytest", "-n", "2", "-q", str(folder / "tests"), *session.posargs)


@nox.session(python=PYTHON)
def integration(session: nox.Session) -> None:
    """Cross-package tests in tests/ with every member installed."""
    _install_everything(session, extras="postgresql,testing,netcdf")
    session.install(*TEST_TOOLS)
    session.run("pytest", "-n", "2", "-q", "tests", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff lint and format check over the whole tree."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the core package."""
    _install_workspace(session, CORE, LOCAL_SERVER, extras="postgresql,testing,netcdf")
    session.install("mypy>=1.11", "types-PyYAML", "pytest>=8")
    session.run("mypy", f"{CORE}/src/etiket_sync_agent")


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Build the mkdocs site with warnings as errors (CLI reference regenerated first)."""
    _install_workspace(session, CORE)
    session.install("mkdocs>=1.6", "mkdocs-material>=9.5")
    session.run("python", "tools/gen_cli_reference.py")
    session.run("mkdocs", "build", "--strict", "--site-dir", str(Path(tempfile.mkdtemp()) / "site"))


@nox.session(python=PYTHON)
def wheels(session: nox.Session) -> None:
    """Build each wheel without workspace sources; install each alone in a clean venv; import it."""
    dist = Path(tempfile.mkdtemp(prefix="etiket-wheels-"))
    for member, _folder in _members().items():
        session.run(
            "uv",
            "build",
            "--package",
            member,
            "--no-sources",
            "--wheel",
            "--out-dir",
            str(dist),
            external=True,
        )
    core_wheel = next(dist.glob("etiket_sync_agent-*.whl"))
    for member in _members():
        module = member.replace("-", "_")
        wheel = next(dist.glob(f"{module}-*.whl"))
        venv = Path(tempfile.mkdtemp(prefix=f"venv-{module}-"))
        session.run("uv", "venv", "--quiet", "--python", PYTHON, str(venv), external=True)
        py = venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
        # The core wheel is passed explicitly so the resolver never takes a same-named package
        # from the index.
        wheels_to_install = [str(wheel)] if wheel == core_wheel else [str(core_wheel), str(wheel)]
        _pip_install_into(session, py, *wheels_to_install)
        session.run(str(py), "-c", f"import {module}; print('{module}', 'imports')", external=True)
        session.run(str(py), "-m", "etiket_sync_agent", "backends", external=True)
        shutil.rmtree(venv, ignore_errors=True)


def _pip_install_into(session: nox.Session, python: Path, *args: str) -> None:
    """``uv pip install`` into another venv than the session's (given by its interpreter)."""
    session.run("uv", "pip", "install", "--quiet", "--python", str(python), *args, external=True)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks: each prints its numbers and ratios against a baseline measured in the same run.

    tools/bench/bench_qcodes.py needs the real qcodes, which needs Python 3.12: it runs in a side
    venv made with that interpreter (see ``_fidelity_python``), or is skipped, saying why.
    """
    _install_everything(session, extras="postgresql,testing,netcdf")
    session.install("xarray>=2023.1")
    quick = ["--quick"] if "quick" in session.posargs else []
    for script in sorted(glob.glob("tools/bench/bench_*.py")):
        if Path(script).name == "bench_qcodes.py":
            continue  # needs the real qcodes: run below with Python 3.12
        session.run("python", script, *quick)
    _bench_qcodes(session, quick)


def _bench_qcodes(session: nox.Session, args: list[str]) -> None:
    """tools/bench/bench_qcodes.py in a side venv (Python 3.12, qcodes, our core and backend)."""
    python = _fidelity_python()
    found = subprocess.run(
        ["uv", "python", "find", "--no-python-downloads", python],
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode != 0:
        session.log(
            f"skipping tools/bench/bench_qcodes.py: no Python 3.12 found for qcodes ({python!r}; "
            "set ETIKET_FIDELITY_PYTHON to one)"
        )
        return
    venv = Path(session.virtualenv.location).parent / "bench-qcodes"
    py = venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    if not py.exists():
        session.run(
            "uv", "venv", "--quiet", "--python", found.stdout.strip(), str(venv), external=True
        )
    _pip_install_into(
        session, py, "-e", CORE, "-e", "packages/etiket-sync-agent-qcodes", *QCODES_TOOLS
    )
    session.run(str(py), "tools/bench/bench_qcodes.py", *args, external=True)


def _fidelity_python() -> str:
    """A Python 3.12 for qcodes: $ETIKET_FIDELITY_PYTHON, else pyenv's 3.12, else "3.12"."""
    if os.environ.get("ETIKET_FIDELITY_PYTHON"):
        return os.environ["ETIKET_FIDELITY_PYTHON"]
    found = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12*/bin/python3.12")))
    return found[-1] if found else "3.12"


#: The real qcodes and what its xarray export needs (fidelity session, QCoDeS benchmark).
QCODES_TOOLS = ["qcodes>=0.50", "xarray>=2023.1", "h5netcdf>=1.2"]


@nox.session(python=_fidelity_python())
def fidelity(session: nox.Session) -> None:
    """QCoDeS fidelity: real qcodes writes databases, our export must equal its xarray export.

    Installs qcodes (0.62 on Python 3.12), regenerates the qcodes fixtures in a temporary folder
    (packages/etiket-sync-agent-qcodes/tools/make_fixtures.py) and compares our
    measured_data.hdf5 of every run with ``load_by_guid(guid).to_xarray_dataset()`` value for
    value. The QCoDeS benchmark (tools/bench/bench_qcodes.py) is run by ``nox -s bench``.
    """
    qcodes_pkg = "packages/etiket-sync-agent-qcodes"
    _install_workspace(session, CORE, qcodes_pkg)
    session.install(*QCODES_TOOLS)
    out = Path(tempfile.mkdtemp(prefix="etiket-qcodes-fidelity-"))
    session.run("python", f"{qcodes_pkg}/tools/make_fixtures.py", str(out), "--compare")


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """The one-command demo: local server, sample sources, sync until done, summary."""
    _install_everything(session, extras="postgresql,netcdf")
    session.run("etiket-sync", "demo", *session.posargs)


@nox.session(python=PYTHON)
def faults(session: nox.Session) -> None:
    """The long fault suites (kill -9 rounds, server faults) marked slow."""
    _install_everything(session, extras="postgresql,testing,netcdf")
    session.install(*TEST_TOOLS)
    session.run(
        "pytest",
        "-q",
        "-m",
        "slow",
        "tests",
        *session.posargs,
        env={"ETIKET_KILL_ROUNDS": os.environ.get("ETIKET_KILL_ROUNDS", "100")},
    )


@nox.session(python=PYTHON)
def scale(session: nox.Session) -> None:
    """Every backend's full-size end-to-end tests (marked slow), over HTTP to the local server.

    1,000 QCoDeS runs, 200 core-tools measurements, 500 Quantify folders, 200 Labber files,
    1,000 folderbase folders plus 100 native datasets.
    """
    _install_everything(session, extras="postgresql,testing,netcdf")
    session.install(*TEST_TOOLS)
    folders = [str(p / "tests") for p in _members().values() if (p / "tests").is_dir()]
    folders.append("tests/test_scale_folderbase_native.py")
    session.run("pytest", "-n", "2", "-q", "-m", "slow", *folders, *session.posargs)


@nox.session(python=PYTHON)
def scaffolds(session: nox.Session) -> None:
    """Generate one backend of each base and a converter, install them, run their tests."""
    _install_workspace(session, CORE, LOCAL_SERVER, extras="testing")
    session.install(*TEST_TOOLS)
    out = Path(tempfile.mkdtemp(prefix="etiket-scaffolds-"))
    session.run(
        "generate_sync_agent_scaffold",
        "scaffold-db",
        "--base",
        "database",
        "--live-sync",
        "True",
        "--output-dir",
        str(out),
    )
    session.run(
        "generate_sync_agent_scaffold",
        "scaffold-files",
        "--base",
        "file",
        "--default-scope",
        "OPTIONAL",
        "--level",
        "2",
        "--output-dir",
        str(out),
    )
    session.run(
        "generate_converter_scaffold",
        "scaffold-conv",
        "--input-type",
        "txt",
        "--output-type",
        "json",
        "--output-dir",
        str(out),
    )
    packages = sorted(p for p in out.iterdir() if p.is_dir())
    for package in packages:
        # The workspace core is named again so the resolver keeps it and never looks for the
        # core on the package index (a same-named, unrelated project exists there).
        session.install("-e", CORE, "-e", str(package))
    for package in packages:
        session.run("pytest", "-q", "-p", "no:cacheprovider", str(package / "tests"))
    listing = session.run("etiket-sync", "backends", "--json", silent=True)
    for name in ("scaffold-db", "scaffold-files", "scaffold-conv"):
        if f'"name": "{name}"' not in str(listing):
            session.error(f"{name} is not discovered by etiket-sync backends")
    session.log("scaffolds generated, tested and discovered")
