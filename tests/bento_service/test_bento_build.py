"""The Bento itself: a real ``bentoml build`` of bento_service/bentofile.yaml (offline, in a BENTOML_HOME of its
own), checked for what it ships, what it requires and that it starts.

- its ``src/`` holds exactly the modules the service's imports reach (followed by AST from bento_service/*.py, so
  the expectation moves with the code): no spider, mirror, CLI or training code, and nothing missing;
- every third-party module the shipped code imports, and every requirement of the registered model, is a
  requirement of the bento (env/python/requirements.txt);
- the built bento serves (``bentoml serve <tag>``) a real prediction with only its own ``src/`` on the import path
  for our code. The repo's packages are installed in the venv in editable mode (a setuptools ``__editable__``
  finder on sys.meta_path, installed by a .pth file at every interpreter start), so a plain ``bentoml serve``
  would import a module the bento lacks from the checkout. BentoML's workers are fresh interpreters, so the
  isolation is a ``sitecustomize`` on PYTHONPATH (imported by every one of them, after the .pth files): it drops
  the editable finder and the repo root, and records where each of our modules is imported from.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import click
import httpx
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from time2bet.background import Background, free_port

REPO = Path(__file__).resolve().parents[2]
BENTOFILE = REPO / "bento_service" / "bentofile.yaml"
BUILD_TIMEOUT_S = 300
READY_TIMEOUT_S = 180
REQUEST_TIMEOUT_S = 60


# --- the import graph -------------------------------------------------------------------------------------------

def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _runtime_nodes(node: ast.AST):
    """Every node below ``node`` except the bodies of ``if TYPE_CHECKING:`` (never run)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield other
                yield from _runtime_nodes(other)
            continue
        yield child
        yield from _runtime_nodes(child)


def _module_name(root: Path, path: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_names(root: Path, path: Path) -> set[str]:
    """Absolute names an import statement anywhere in the file (functions included) may load; for
    ``from X import a`` both X and X.a (a module or not: the caller checks)."""
    module = _module_name(root, path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                parts = parts[:len(parts) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return names


def _module_file(root: Path, name: str) -> Path | None:
    base = root.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _local_closure(root: Path, seeds: list[Path]) -> set[Path]:
    """The files of ``root``'s own packages that importing ``seeds`` loads: their imports, followed, and every
    parent package's ``__init__.py`` on the way."""
    own = {p.name for p in root.iterdir() if (p / "__init__.py").is_file()}
    seen: set[Path] = set()
    todo = list(seeds)
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        names = _imported_names(root, path) | {_module_name(root, path)}
        for name in names:
            parts = name.split(".")
            if parts[0] not in own:
                continue
            for i in range(1, len(parts) + 1):   # importing a.b.c runs a/__init__ and a/b/__init__ first
                if (found := _module_file(root, ".".join(parts[:i]))) is not None:
                    todo.append(found)
    return seen


def _service_package() -> str:
    """The service's package, from the bentofile's ``service: "<package>.<module>:<Class>"``."""
    return yaml.safe_load(BENTOFILE.read_text())["service"].partition(":")[0].split(".")[0]


def _requirement_names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.add(canonicalize_name(Requirement(line).name))
    return names


# --- the built bento --------------------------------------------------------------------------------------------

def _build_env(bentoml_home: Path) -> dict[str, str]:
    env = {**os.environ, "BENTOML_HOME": str(bentoml_home), "BENTOML_DO_NOT_TRACK": "True",
           "PIP_NO_INDEX": "1", "UV_OFFLINE": "1"}   # offline: the build must not need the network
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env


@pytest.fixture(scope="module")
def bento(tmp_path_factory) -> dict:
    """A real ``bentoml build -f bento_service/bentofile.yaml .`` from the repo root: its home, tag and path."""
    root = tmp_path_factory.mktemp("bento_build")
    home = root / "bentoml_home"
    try:
        built = subprocess.run([sys.executable, "-m", "bentoml", "build", "-f", str(BENTOFILE.relative_to(REPO)), "."],
                               cwd=REPO, env=_build_env(home), capture_output=True, text=True,
                               timeout=BUILD_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail(f"bentoml build did not finish within {BUILD_TIMEOUT_S}s")
    assert built.returncode == 0, f"bentoml build failed:\n{built.stdout[-3000:]}\n{built.stderr[-3000:]}"
    store = home / "bentos" / "time2bet"
    bentos = [p for p in store.iterdir() if p.is_dir()] if store.is_dir() else []
    assert len(bentos) == 1, f"expected one bento under {store}, found {bentos}"
    path = bentos[0]
    requirements = path / "env" / "python" / "requirements.txt"
    assert requirements.is_file(), f"no requirements.txt under {path / 'env' / 'python'}"
    return {"home": home, "root": root, "tag": f"time2bet:{path.name}", "path": path, "src": path / "src",
            "requirements": requirements}


def test_bento_ships_exactly_the_modules_the_service_imports(bento):
    package = REPO / _service_package()
    needed = {p.relative_to(REPO) for p in _local_closure(REPO, sorted(package.glob("*.py")))}
    shipped = {p.relative_to(bento["src"]) for p in bento["src"].rglob("*.py")}
    assert Path("time2bet/settings.py") in needed, "the import graph lost the service's settings"   # sanity
    extra, missing = sorted(map(str, shipped - needed)), sorted(map(str, needed - shipped))
    assert not extra, f"the bento ships modules the service never imports (narrow bentofile include): {extra}"
    assert not missing, f"the bento lacks modules the service imports (add them to bentofile include): {missing}"


def test_bento_requires_every_third_party_module_its_code_imports(bento):
    src = bento["src"]
    shipped = {p.name for p in src.iterdir() if p.is_dir()} | {p.stem for p in src.glob("*.py")}
    imports: dict[str, set[str]] = {}   # top-level module -> the shipped files importing it
    for path in src.rglob("*.py"):
        for name in _imported_names(src, path):
            top = name.split(".")[0]
            if top and top not in sys.stdlib_module_names and top not in shipped:
                imports.setdefault(top, set()).add(str(path.relative_to(src)))
    assert {"bentoml", "pandas", "mlflow"} <= imports.keys(), f"the import walk looks broken: {sorted(imports)}"
    required = _requirement_names(bento["requirements"])
    distributions = importlib.metadata.packages_distributions()
    unknown, uncovered = [], []
    for top, files in sorted(imports.items()):
        provided_by = {canonicalize_name(d) for d in distributions.get(top, [])}
        if not provided_by:
            unknown.append(f"{top} (imported by {sorted(files)})")
        elif not provided_by & required:
            uncovered.append(f"{top} from {sorted(provided_by)} (imported by {sorted(files)})")
    assert not unknown, f"modules imported by the bento that no installed distribution provides: {unknown}"
    assert not uncovered, (f"third-party modules the bento imports without a requirement in "
                           f"{bento['requirements'].name} (add to bentofile python.packages): {uncovered}")


def test_bento_requires_what_the_registered_model_needs(bento, settings):
    """The champion is an MLflow sklearn-flavour model saved with skops; what it records as its own requirements
    (scikit-learn, xgboost, skops, scipy, ...) the serving image must install to load it."""
    import mlflow

    from time2bet.mlflow_store import registry_client
    from time2bet.serving_contract import CHAMPION

    registry_client(settings.mlflow_tracking_uri)
    model_requirements = _requirement_names(
        Path(mlflow.pyfunc.get_model_dependencies(f"models:/{settings.model_name}@{CHAMPION}")))
    assert "scikit-learn" in model_requirements, model_requirements
    missing = sorted(model_requirements - _requirement_names(bento["requirements"]))
    assert not missing, f"the registered model needs {missing}, which the bento does not require"


# --- the built bento, served --------------------------------------------------------------------------------------

SITECUSTOMIZE = textwrap.dedent('''\
    """Written by tests/bento_service/test_bento_build.py: only the bento's own src/ for our packages."""
    import json
    import os
    import sys

    _REPO = os.path.realpath(os.environ["T2B_TEST_REPO"])
    _LOG = os.environ["T2B_TEST_IMPORT_LOG"]
    _OURS = set(os.environ["T2B_TEST_PACKAGES"].split(","))


    def _editable(obj):
        return (getattr(obj, "__module__", None) or "").startswith("__editable__")


    _REMOVED = [f for f in sys.meta_path if _editable(f)] + [h for h in sys.path_hooks if _editable(h)]
    sys.meta_path[:] = [f for f in sys.meta_path if not _editable(f)]
    sys.path_hooks[:] = [h for h in sys.path_hooks if not _editable(h)]
    sys.path[:] = [p for p in sys.path
                   if not p.startswith("__editable__") and os.path.realpath(p or os.getcwd()) != _REPO]
    sys.path_importer_cache.clear()


    def _record(**entry):
        with open(_LOG, "a") as out:
            out.write(json.dumps(dict(entry, pid=os.getpid())) + "\\n")


    class _ImportProbe:
        """First on sys.meta_path: asks the others for our modules and records where each one found comes from
        (origin None: a namespace package, i.e. an __init__.py missing)."""

        @classmethod
        def find_spec(cls, name, path=None, target=None):
            if name.partition(".")[0] not in _OURS:
                return None
            spec = None
            for finder in sys.meta_path:
                if finder is not cls and hasattr(finder, "find_spec"):
                    spec = finder.find_spec(name, path, target)
                    if spec is not None:
                        break
            if spec is not None:   # not found is no import: bentoml itself tries "<bento name>" as a module
                _record(module=name, origin=spec.origin)
            return spec


    sys.meta_path.insert(0, _ImportProbe)
    _record(module=None, removed=[repr(x) for x in _REMOVED], argv=sys.argv[:3])
''')


def _serve_env(bento: dict, base: dict[str, str], probe_dir: Path, log: Path) -> dict[str, str]:
    env = {k: v for k, v in base.items() if k != "PYTHONPATH"}
    return {**env, "PYTHONPATH": str(probe_dir), "BENTOML_HOME": str(bento["home"]), "BENTOML_DO_NOT_TRACK": "True",
            "T2B_TEST_REPO": str(REPO), "T2B_TEST_IMPORT_LOG": str(log),
            "T2B_TEST_PACKAGES": ",".join(sorted(p.name for p in bento["src"].iterdir() if p.is_dir()))}


def test_built_bento_serves_from_its_own_src(bento, platform_env, service_env_for, tmp_path):
    probe_dir, outside = tmp_path / "probe", tmp_path / "cwd"   # cwd outside the repo: nothing of it on sys.path
    probe_dir.mkdir()
    outside.mkdir()
    (probe_dir / "sitecustomize.py").write_text(SITECUSTOMIZE)
    import_log = tmp_path / "imports.jsonl"
    env = _serve_env(bento, service_env_for(platform_env, tmp_path), probe_dir, import_log)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = Background("bentoml serve (built bento)",
                        [sys.executable, "-m", "bentoml", "serve", bento["tag"], "--host", "127.0.0.1",
                         "--port", str(port)],
                        env, tmp_path / "serve.log", cwd=outside)
    try:
        server.start()
        launcher_pid = server.proc.pid
        try:
            server.wait_ready(f"{url}/readyz", READY_TIMEOUT_S)
        except click.ClickException as exc:
            pytest.fail(exc.message)
        with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_S) as client:
            matches = client.get("/matches")
            assert matches.status_code == 200, matches.text
            assert matches.json()["matches"], "the sample platform has no upcoming fixtures"
            m = matches.json()["matches"][0]
            answer = client.post("/predict", json={"home_team": m["home_team"], "away_team": m["away_team"],
                                                   "division": m["division"], "kickoff_date": m["match_date"]})
        assert answer.status_code == 200, answer.text
        p = answer.json()["probabilities"]
        assert set(p) == {"home", "draw", "away"} and all(0 <= v <= 1 for v in p.values()), p
        assert abs(sum(p.values()) - 1) < 1e-6, p
    finally:
        server.stop()

    entries = [json.loads(line) for line in import_log.read_text().splitlines()]
    starts = [e for e in entries if e["module"] is None]
    assert starts and all(e["removed"] for e in starts), \
        f"the editable finder was not found (and removed) in every process: {starts}"
    src = bento["src"].resolve()
    imported = [e for e in entries if e["module"] is not None]
    outside_src = [e for e in imported if e["origin"] is None or not Path(e["origin"]).resolve().is_relative_to(src)]
    assert not outside_src, f"modules not imported from the bento's src ({src}): {outside_src}"
    loaded_by = {e["pid"] for e in imported if e["module"] == "time2bet.settings"}
    workers = loaded_by - {launcher_pid}
    assert workers, f"no serving worker imported time2bet from the bento's src (processes: {loaded_by})"
