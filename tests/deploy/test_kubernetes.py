"""The Kubernetes artefacts hold together without a cluster: every kustomize overlay (deploy/k8s/overlays/*) renders
with plain `kubectl kustomize` and each object it renders validates against the Kubernetes 1.32 API schemas, offline
(kubernetes-validate, strict: an unknown field fails); the probes hit the port the service image's command listens
on; every Containerfile copies only paths that exist and installs from the locks; the Dagster Helm values launch runs
with dagster-k8s from our user-code image, running the same code location as its Containerfile."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from functools import cache
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from time2bet.cli.demo import service_command

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
DOCKER = DEPLOY / "docker"
OVERLAYS = sorted(p.parent for p in (DEPLOY / "k8s" / "overlays").glob("*/kustomization.yaml"))
HELM_VALUES = DEPLOY / "helm" / "dagster-values.yaml"
CONTAINERFILES = sorted(DOCKER.glob("*.Containerfile"))
SERVICE_IMAGE = DOCKER / "forecast-service.Containerfile"
USER_CODE_IMAGE = DOCKER / "dagster-user-code.Containerfile"
MLFLOW_IMAGE = DOCKER / "mlflow-server.Containerfile"
RULE_FILES = sorted((DEPLOY / "prometheus" / "rules").glob("*.yml"))
DASHBOARDS = sorted((DEPLOY / "grafana").glob("**/*.json"))
KUBERNETES_VERSION = "1.32.0"   # the kubectl of these machines; kubernetes-validate ships its schemas
IMAGE_PREFIX = "time2bet/"      # image time2bet/<name> is built from deploy/docker/<name>.Containerfile
MUTABLE_TAGS = {"", "latest", "main", "master", "dev", "edge", "stable"}


def kubectl() -> str:
    """kubectl on PATH (with its built-in kustomize); skipped when missing outside CI, failed in CI."""
    path = shutil.which("kubectl")
    if path:
        return path
    if os.environ.get("CI") == "true":
        pytest.fail("kubectl not found on PATH in CI (the machines ship kubectl 1.32 with kustomize v5)")
    pytest.skip("kubectl not installed (kubectl 1.32 with kustomize v5 renders the overlays)")


@cache
def rendered(overlay: Path) -> tuple[dict, ...]:
    """The objects `kubectl kustomize <overlay>` renders (no flags: the default load restrictions)."""
    result = subprocess.run([kubectl(), "kustomize", str(overlay)], capture_output=True, text=True, timeout=60,
                            cwd=REPO, check=False)
    assert result.returncode == 0, f"kubectl kustomize {overlay.relative_to(REPO)} failed:\n{result.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def find(objects: tuple[dict, ...], kind: str, name: str) -> dict:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def container(deployment: dict) -> dict:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return only


def config_maps(objects: tuple[dict, ...]) -> list[dict]:
    return [o for o in objects if o["kind"] == "ConfigMap"]


# --- Containerfiles, read statically (no image can be built here: base images cannot be pulled) ---------------------

def instructions(containerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Containerfile, continuation lines joined, comments dropped."""
    logical, pending = [], ""
    for line in containerfile.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, f"{containerfile.name} ends in a continuation line"
    parsed = []
    for text in logical:
        keyword, _, rest = text.strip().partition(" ")
        parsed.append((keyword.upper(), rest.strip()))
    return parsed


def exec_form(containerfile: Path, keyword: str) -> list[str]:
    """The last CMD (or ENTRYPOINT) in exec (JSON) form."""
    found = [args for kw, args in instructions(containerfile) if kw == keyword]
    assert found, f"{containerfile.name} has no {keyword}"
    return json.loads(found[-1])


def option(argv: list[str], name: str) -> str:
    assert name in argv, f"{name} not in {argv}"
    return argv[argv.index(name) + 1]


def containerfile(image: str) -> Path:
    """deploy/docker/<name>.Containerfile for image [registry/]time2bet/<name>[:tag][@digest]."""
    owner, _, last = image.split("@")[0].rpartition("/")
    assert owner == IMAGE_PREFIX.rstrip("/") or owner.endswith("/" + IMAGE_PREFIX.rstrip("/")), \
        f"{image} is not a {IMAGE_PREFIX} image"
    path = DOCKER / f"{last.split(':')[0]}.Containerfile"
    assert path.is_file(), f"image {image} has no {path.relative_to(REPO)}"
    return path


def image_tag(image: str) -> str:
    """The tag of an image reference ('' when it has none; a digest counts as pinned: '@sha256:...')."""
    if "@" in image:
        return image[image.index("@"):]
    last = image.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else ""


def pins(lock: Path) -> dict[str, str]:
    """package -> version of a uv/pip-compile lock."""
    found = {}
    for line in lock.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(\S+)", line)
        if match:
            found[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return found


# --- the overlays ----------------------------------------------------------------------------------------------------

def test_there_are_dev_and_prod_overlays():
    assert {p.name for p in OVERLAYS} >= {"dev", "prod"}


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_every_overlay_renders_the_service_mlflow_and_the_rules(overlay):
    objects = rendered(overlay)
    for kind, name in [("Deployment", "forecast-service"), ("Service", "forecast-service"),
                       ("HorizontalPodAutoscaler", "forecast-service"), ("PodDisruptionBudget", "forecast-service"),
                       ("Deployment", "mlflow"), ("Service", "mlflow"), ("PersistentVolumeClaim", "time2bet-home"),
                       ("ConfigMap", "time2bet-prometheus-rules")]:
        find(objects, kind, name)
    (namespace,) = {o["metadata"].get("namespace") for o in objects}   # the overlay's, on every object
    assert namespace


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_every_rendered_object_validates_against_the_kubernetes_schemas(overlay):
    errors = []
    for obj in rendered(overlay):
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{name} at {'.'.join(map(str, exc.path))}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError:
            errors.append(f"{name}: no schema for {obj['apiVersion']} in Kubernetes {KUBERNETES_VERSION}")
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_the_probes_hit_the_port_the_service_image_listens_on(overlay):
    command = exec_form(SERVICE_IMAGE, "CMD")
    port = int(option(command, "--port"))
    assert option(command, "--host") == "0.0.0.0"   # reachable from the kubelet and the Service, not loopback only
    assert f"EXPOSE {port}" in {f"{kw} {args}" for kw, args in instructions(SERVICE_IMAGE)}
    objects = rendered(overlay)
    served = container(find(objects, "Deployment", "forecast-service"))
    ports = {p["name"]: p["containerPort"] for p in served["ports"]}
    assert set(ports.values()) == {port}
    probes = {kind: served[kind]["httpGet"] for kind in ("startupProbe", "livenessProbe", "readinessProbe")}
    assert {kind: probe["path"] for kind, probe in probes.items()} == {
        "startupProbe": "/livez", "livenessProbe": "/livez", "readinessProbe": "/readyz"}
    for probe in probes.values():
        assert ports.get(probe["port"], probe["port"]) == port
    (service_port,) = find(objects, "Service", "forecast-service")["spec"]["ports"]
    assert ports.get(service_port["targetPort"], service_port["targetPort"]) == port


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_the_mlflow_probes_hit_the_port_its_image_listens_on(overlay):
    command = exec_form(MLFLOW_IMAGE, "CMD")
    assert command[:2] == ["mlflow", "server"] and option(command, "--host") == "0.0.0.0"
    port = int(option(command, "--port"))
    served = container(find(rendered(overlay), "Deployment", "mlflow"))
    ports = {p["name"]: p["containerPort"] for p in served["ports"]}
    assert set(ports.values()) == {port}
    for kind in ("livenessProbe", "readinessProbe"):
        assert served[kind]["httpGet"]["path"] == "/health"
        assert ports.get(served[kind]["httpGet"]["port"]) == port


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_every_image_the_manifests_run_is_built_from_a_containerfile_here(overlay):
    deployments = [o for o in rendered(overlay) if o["kind"] == "Deployment"]
    assert deployments
    for deployment in deployments:
        pod = deployment["spec"]["template"]["spec"]
        for each in pod.get("initContainers", []) + pod["containers"]:
            containerfile(each["image"])


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_the_service_reads_the_warehouse_url_and_tracking_uri_from_a_secret(overlay):
    objects = rendered(overlay)
    env = {e["name"]: e for e in container(find(objects, "Deployment", "forecast-service"))["env"]}
    for name in ("TIME2BET_WAREHOUSE_URL", "MLFLOW_TRACKING_URI"):
        assert "secretKeyRef" in env[name].get("valueFrom", {}), name
    backend = {e["name"]: e for e in container(find(objects, "Deployment", "mlflow"))["env"]}
    assert "secretKeyRef" in backend["MLFLOW_BACKEND_STORE_URI"]["valueFrom"]
    # no credentials in plain configuration: no user:password@ in a URL, no secret-looking key
    for config in config_maps(objects):
        for key, value in config.get("data", {}).items():
            assert not re.search(r"://[^/\s@]+:[^/\s@]+@", value), f"credentials in ConfigMap {key}"
            assert not re.search(r"PASSWORD|SECRET|TOKEN|ACCESS_KEY", key), f"secret-looking key {key} in a ConfigMap"


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_the_rules_configmap_carries_every_rule_file_unchanged(overlay):
    data = find(rendered(overlay), "ConfigMap", "time2bet-prometheus-rules")["data"]
    assert data == {path.name: path.read_text() for path in RULE_FILES}


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_every_grafana_dashboard_is_in_a_configmap(overlay):
    """A dashboard added under deploy/grafana/dashboards/ fails this until the overlays' ConfigMap carries it (it must
    be listed in deploy/grafana/kustomization.yaml)."""
    shipped = {key for config in config_maps(rendered(overlay)) for key in config.get("data", {})}
    assert not {path.name for path in DASHBOARDS} - shipped


def test_dev_runs_one_small_service_pod_and_prod_several_with_a_disruption_budget():
    dev, prod = rendered(DEPLOY / "k8s/overlays/dev"), rendered(DEPLOY / "k8s/overlays/prod")
    # the autoscaler owns the replica count (no spec.replicas to reset it at every apply)
    for objects in (dev, prod):
        assert "replicas" not in find(objects, "Deployment", "forecast-service")["spec"]
    dev_hpa = find(dev, "HorizontalPodAutoscaler", "forecast-service")["spec"]
    prod_hpa = find(prod, "HorizontalPodAutoscaler", "forecast-service")["spec"]
    assert dev_hpa["minReplicas"] == 1 and dev_hpa["maxReplicas"] <= 2
    assert prod_hpa["minReplicas"] >= 2 and prod_hpa["maxReplicas"] > prod_hpa["minReplicas"]
    prod_pdb = find(prod, "PodDisruptionBudget", "forecast-service")["spec"]
    assert prod_pdb.get("minAvailable") == 1 and "maxUnavailable" not in prod_pdb
    assert "minAvailable" not in find(dev, "PodDisruptionBudget", "forecast-service")["spec"]   # one pod: drainable

    def requests(objects):
        return container(find(objects, "Deployment", "forecast-service"))["resources"]["requests"]
    assert _quantity(requests(dev)["cpu"]) < _quantity(requests(prod)["cpu"])
    assert _quantity(requests(dev)["memory"]) < _quantity(requests(prod)["memory"])
    for obj in prod:
        if obj["kind"] == "Deployment":
            for each in obj["spec"]["template"]["spec"]["containers"]:
                assert image_tag(each["image"]) not in MUTABLE_TAGS, f"prod runs {each['image']}: pin its tag"


def _quantity(value: str) -> float:
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9}
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(value))
    assert match, value
    return float(match.group(1)) * units.get(match.group(2), 1)


# --- the Containerfiles ----------------------------------------------------------------------------------------------

def test_there_is_a_containerfile_for_the_user_code_the_service_and_mlflow():
    assert {SERVICE_IMAGE, USER_CODE_IMAGE, MLFLOW_IMAGE} <= set(CONTAINERFILES)


@pytest.mark.parametrize("path", CONTAINERFILES, ids=lambda p: p.name)
def test_every_containerfile_copies_only_paths_that_exist(path):
    copies = [shlex.split(args) for kw, args in instructions(path) if kw in ("COPY", "ADD")]
    assert copies
    for argv in copies:
        assert not any(a.startswith("--from") for a in argv), "no multi-stage copies expected"
        sources = [a for a in argv if not a.startswith("--")][:-1]
        assert sources, argv
        for source in sources:
            assert (REPO / source).exists(), f"{path.name} copies {source}, which is not in the repository"


def test_the_user_code_image_copies_the_whole_dbt_project():
    copied = {Path(source).parts[1] for kw, args in instructions(USER_CODE_IMAGE) if kw == "COPY"
              for source in shlex.split(args)[:-1] if source.startswith("dbt_project/")}
    built_or_ignored = {"target", "logs", "dbt_packages"}   # .gitignore: built by dbt, never copied
    sources = {p.name for p in (REPO / "dbt_project").iterdir() if not p.name.startswith(".")}
    assert copied == sources - built_or_ignored


@pytest.mark.parametrize("path", CONTAINERFILES, ids=lambda p: p.name)
def test_every_image_runs_as_a_non_root_user_from_a_pinned_base_and_bakes_in_no_secret(path):
    steps = instructions(path)
    args = dict(re.match(r"([A-Za-z_][A-Za-z0-9_]*)=(\S+)", a).groups() for kw, a in steps if kw == "ARG" and "=" in a)
    (base,) = [re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), a) for kw, a in steps
               if kw == "FROM"]
    assert "$" not in base and image_tag(base) not in MUTABLE_TAGS, f"base image {base} is not pinned"
    users = [a for kw, a in steps if kw == "USER"]
    assert users and re.fullmatch(r"[1-9][0-9]*(:[0-9]+)?", users[-1]), f"{path.name}: end as a numeric non-root USER"
    keys = [a.split("=")[0] for kw, a in steps if kw == "ARG"] + \
           [k for kw, a in steps if kw == "ENV" for k in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", a)]
    secret_like = [k for k in keys if re.search(r"PASSWORD|SECRET|TOKEN|ACCESS_KEY|CREDENTIAL", k)]
    assert not secret_like, f"{path.name} sets {secret_like}: secrets come from the environment at run time"


def test_the_service_image_runs_what_time2bet_serve_runs():
    command = exec_form(SERVICE_IMAGE, "CMD")
    port = int(option(command, "--port"))
    assert command == ["bentoml", *service_command("0.0.0.0", port)[1:]]


def test_the_images_install_from_the_repository_lock():
    for path in (SERVICE_IMAGE, USER_CODE_IMAGE):
        runs = " ".join(a for kw, a in instructions(path) if kw == "RUN")
        assert re.search(r"uv pip install [^&]*-r requirements\.lock", runs), path.name
        assert re.search(r"uv pip install [^&]*--no-deps -e \.", runs), path.name
    assert "-r deploy/docker/dagster-k8s.lock" in " ".join(a for kw, a in instructions(USER_CODE_IMAGE) if kw == "RUN")
    assert "-r /tmp/mlflow-server.lock" in " ".join(a for kw, a in instructions(MLFLOW_IMAGE) if kw == "RUN")


def test_the_derived_locks_move_no_pin_of_the_repository_lock():
    project = pins(REPO / "requirements.lock")
    for lock in (DOCKER / "dagster-k8s.lock", DOCKER / "mlflow-server.lock"):
        moved = {name: (version, project[name]) for name, version in pins(lock).items()
                 if name in project and project[name] != version}
        assert not moved, f"{lock.name} moved pins of requirements.lock (re-resolve: deploy/docker/README.md): {moved}"
    assert not set(pins(DOCKER / "mlflow-server.lock")) - set(project)
    assert "dagster-k8s" in pins(DOCKER / "dagster-k8s.lock")


# --- the Dagster Helm values (no helm here: checked statically) ------------------------------------------------------

def test_the_helm_values_launch_runs_with_dagster_k8s_from_our_user_code_image():
    values = yaml.safe_load(HELM_VALUES.read_text())
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert "k8sRunLauncher" in values["runLauncher"]["config"]
    user_code = values["dagster-user-deployments"]
    assert user_code["enabled"] is True
    (deployment,) = user_code["deployments"]
    image = f"{deployment['image']['repository']}:{deployment['image']['tag']}"
    assert containerfile(image) == USER_CODE_IMAGE
    assert image_tag(image) not in MUTABLE_TAGS
    # the chart runs `dagster api grpc -h 0.0.0.0 -p <port> <dagsterApiGrpcArgs>`: the image's own command
    assert exec_form(USER_CODE_IMAGE, "CMD") == ["dagster", "api", "grpc", "-h", "0.0.0.0", "-p",
                                                str(deployment["port"]), *deployment["dagsterApiGrpcArgs"]]
    # the code location workspace.yaml loads for `dagster dev`, under the same name
    (location,) = yaml.safe_load((REPO / "workspace.yaml").read_text())["load_from"]
    assert option(deployment["dagsterApiGrpcArgs"], "-m") == location["python_module"]["module_name"]
    assert deployment["name"] == location["python_module"]["location_name"]
    # Dagster's own images are the dagster the lock pins (the chart is versioned with it)
    dagster = pins(REPO / "requirements.lock")["dagster"]
    assert values["dagsterWebserver"]["image"]["tag"] == values["dagsterDaemon"]["image"]["tag"] == dagster
    # storage on an external PostgreSQL whose password is a secret, not a value
    assert values["postgresql"]["enabled"] is False and values["generatePostgresqlPasswordSecret"] is False
    assert values["global"]["postgresqlSecretName"]


def test_the_helm_values_mount_the_volume_the_overlays_create():
    (deployment,) = yaml.safe_load(HELM_VALUES.read_text())["dagster-user-deployments"]["deployments"]
    claims = {v["persistentVolumeClaim"]["claimName"] for v in deployment["volumes"] if "persistentVolumeClaim" in v}
    for overlay in OVERLAYS:
        for claim in claims:
            find(rendered(overlay), "PersistentVolumeClaim", claim)
