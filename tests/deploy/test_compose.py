"""Static checks of the deployment files: no Docker engine or cluster runs where the tests do,
so the compose file, the Kubernetes manifests and the Dockerfile are checked for what can be
known without one: schema validity, and that they agree with the workspace and each other."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema.validators import validator_for
from kubernetes_validate import validate as validate_kubernetes

from common.bus.definitions import USERS, definitions

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
COMPOSE_SCHEMA = ROOT / "deploy" / "schemas" / "compose-spec.json"
COMPOSE_ENV_EXAMPLE = ROOT / "deploy" / "compose.env.example"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
K8S_DIR = ROOT / "deploy" / "k8s"
KEDA_SCHEMAS = ROOT / "deploy" / "schemas" / "keda"
KUBERNETES_VERSION = "1.33"  # the oldest Kubernetes release the manifests promise to work on

SERVICES = frozenset({"gateway", "chat", "imagegen", "credits"})
CONSUMERS = SERVICES - {"gateway"}
SCALED = CONSUMERS - {"credits"}  # the ledger's partitions have one owner each: standbys, not scaling
SCALED_QUEUES = {"chat": ("chat",), "imagegen": ("imagegen", "imagegen-jobs")}  # each queue a pod consumes
PLACEHOLDER_PASSWORDS = ("guest", "changeme", "change-me", "password")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def k8s_documents() -> list[tuple[str, dict[str, Any]]]:
    docs = [
        (path.name, doc)
        for path in sorted(K8S_DIR.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc is not None
    ]
    assert docs, f"no manifests under {K8S_DIR}"
    return docs


def _of_kind(docs: list[tuple[str, dict[str, Any]]], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for _, doc in docs if doc["kind"] == kind}


def test_the_workspace_has_exactly_the_services_deployed() -> None:
    # If a service is added to or removed from services/, every deployment file needs updating.
    assert {p.parent.name for p in (ROOT / "services").glob("*/pyproject.toml")} == SERVICES


# --- docker-compose.yml ----------------------------------------------------------------------


def test_compose_file_is_valid_against_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    validator_cls = validator_for(schema)
    validator_cls.check_schema(schema)
    errors = sorted(validator_cls(schema).iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors)


def test_every_built_service_uses_the_shared_dockerfile(compose: dict[str, Any]) -> None:
    built: dict[str, str] = {}
    for name, service in compose["services"].items():
        build = service.get("build")
        if build is None:
            continue
        assert isinstance(build, dict), f"{name}: build must name deploy/Dockerfile and a SERVICE arg"
        assert (ROOT / build.get("context", ".") / build["dockerfile"]).resolve() == DOCKERFILE, name
        args = build.get("args") or {}
        assert isinstance(args, dict), f"{name}: build.args as a mapping"
        assert args.get("SERVICE") in SERVICES, f"{name}: SERVICE arg {args.get('SERVICE')!r}"
        built[name] = args["SERVICE"]
    assert sorted(built.values()) == sorted(SERVICES), built
    assert all(name == service for name, service in built.items()), built


def test_every_compose_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        check = service.get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), f"{name} has no healthcheck"


def test_depends_on_targets_exist(compose: dict[str, Any]) -> None:
    names = set(compose["services"])
    for name, service in compose["services"].items():
        depends_on = service.get("depends_on") or {}
        targets = depends_on if isinstance(depends_on, list) else list(depends_on)
        assert set(targets) <= names, f"{name} depends on missing {set(targets) - names}"
        assert name not in targets, f"{name} depends on itself"


def test_application_services_run_in_production_mode_on_infrastructure_that_is_healthy(
    compose: dict[str, Any],
) -> None:
    for name in SERVICES:
        service = compose["services"][name]
        assert service["environment"]["ENVIRONMENT"] == "production", name
        assert service["environment"]["SERVICE_NAME"] == name, name
        conditions = {target: dep["condition"] for target, dep in service["depends_on"].items()}
        assert conditions["rabbitmq"] == conditions["redis"] == "service_healthy", name


def _strings(node: Any) -> list[str]:
    """Every string value in a parsed YAML document (comments are already gone)."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for value in node.values() for s in _strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in _strings(value)]
    return []


def test_compose_holds_no_literal_secrets(compose: dict[str, Any]) -> None:
    for value in _strings(compose["services"]):
        for url in re.findall(r"\b(?:amqp|redis|mongodb)://.*", value):
            userinfo = url.split("://", 1)[1].rpartition("@")[0]
            # The password part must be a required variable, so compose refuses to run without it.
            assert re.search(r":\$\{[A-Z_]+:\?[^}]*\}$", userinfo), f"password not from a required variable: {url}"
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if isinstance(value, str) and any(w in key for w in ("PASS", "SECRET", "TOKEN", "KEY", "AUTH")):
                assert value.startswith("${") and value.lower() not in PLACEHOLDER_PASSWORDS, f"{name}: {key}"


def test_every_compose_variable_is_documented_in_the_env_example(compose: dict[str, Any]) -> None:
    # `$$` is a literal dollar handed to the container's shell, not a compose variable.
    used = {m for value in _strings(compose) for m in re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", value.replace("$$", ""))}
    passed_through = {
        key
        for service in compose["services"].values()
        if isinstance(service.get("environment"), dict)
        for key, value in service["environment"].items()
        if value is None
    }
    documented = set(re.findall(r"^#?\s*([A-Z_][A-Z0-9_]*)=", COMPOSE_ENV_EXAMPLE.read_text(), flags=re.MULTILINE))
    assert used | passed_through <= documented, f"undocumented: {(used | passed_through) - documented}"


def test_otel_collector_config_exists_and_exports_to_jaeger(compose: dict[str, Any]) -> None:
    mounts = compose["services"]["otel-collector"]["volumes"]
    source = next(m.split(":")[0] for m in mounts if "otel-collector.yaml" in m)
    config = yaml.safe_load((ROOT / source).read_text())
    exporters = config["service"]["pipelines"]["traces"]["exporters"]
    assert [config["exporters"][e]["endpoint"] for e in exporters] == ["jaeger:4317"]
    assert set(config["receivers"]["otlp"]["protocols"]) == {"grpc", "http"}


# --- deploy/Dockerfile -----------------------------------------------------------------------


def test_dockerfile_is_parametrised_and_installs_from_the_lockfile() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^ARG SERVICE$", text, flags=re.MULTILINE)
    assert "uv sync --frozen" in text
    assert "--no-dev" in text and '--package "aisaas-${SERVICE}"' in text
    assert "python:3.13-slim" in text
    assert re.search(r"^ENV SERVICE=\$\{SERVICE\}", text, flags=re.MULTILINE)
    user = re.findall(r"^USER (\S+)", text, flags=re.MULTILINE)
    assert user and user[-1].split(":")[0] not in {"root", "0"}, "the runtime stage must drop root"


def test_dockerfile_copies_every_workspace_manifest() -> None:
    # uv cannot read the lockfile in the dependency layer unless every member's manifest is there.
    text = DOCKERFILE.read_text()
    members = {p.relative_to(ROOT).as_posix() for p in ROOT.glob("libs/*/pyproject.toml")}
    members |= {p.relative_to(ROOT).as_posix() for p in ROOT.glob("services/*/pyproject.toml")}
    copied = set(re.findall(r"^COPY (\S+/pyproject\.toml) ", text, flags=re.MULTILINE))
    assert copied == members


def test_dockerfile_ships_the_web_console_built_from_its_lockfile() -> None:
    text = DOCKERFILE.read_text()
    assert "npm ci" in text and "COPY web/package.json web/package-lock.json" in text
    copied = re.search(r"^COPY --from=web /web/dist (\S+)$", text, flags=re.MULTILINE)
    assert copied, "the runtime stage must copy the built console"
    assert f"WEB_DIST_DIR={copied[1]}" in text  # and the gateway must look there
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert "!web" in ignored and "web/node_modules" in ignored  # sources in, local installs out


# --- deploy/k8s ------------------------------------------------------------------------------


def test_every_manifest_is_well_formed(k8s_documents: list[tuple[str, dict[str, Any]]]) -> None:
    for filename, doc in k8s_documents:
        assert doc.get("apiVersion") and doc.get("kind"), filename
        assert (doc.get("metadata") or {}).get("name"), f"{filename}: {doc['kind']} without metadata.name"


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
    manifests = {p.name for p in K8S_DIR.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests
    assert {image["name"] for image in kustomization["images"]} == {f"aisaas-{s}" for s in SERVICES}


def test_one_deployment_per_service_running_that_service(k8s_documents: list[tuple[str, dict[str, Any]]]) -> None:
    deployments = _of_kind(k8s_documents, "Deployment")
    assert set(deployments) == SERVICES
    for name, deployment in deployments.items():
        spec = deployment["spec"]
        labels = spec["template"]["metadata"]["labels"]
        assert spec["selector"]["matchLabels"].items() <= labels.items(), name
        (container,) = spec["template"]["spec"]["containers"]
        image = container["image"].rsplit("/", 1)[-1].split(":")[0]
        assert image == f"aisaas-{name}", f"{name} runs image {container['image']}"
        assert not container.get("args") and not container.get("command"), f"{name}: the image's CMD picks the service"
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        assert env.get("SERVICE_NAME") == name, name
        resources = container["resources"]
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= resources[bound].keys(), f"{name}: resources.{bound}"
        sources = {next(iter(ref.values()))["name"] for ref in container["envFrom"]}
        assert {"aisaas-config", "aisaas-infra"} <= sources, name


def test_env_sources_exist(k8s_documents: list[tuple[str, dict[str, Any]]]) -> None:
    config_maps, secrets = _of_kind(k8s_documents, "ConfigMap"), _of_kind(k8s_documents, "Secret")
    for name, deployment in _of_kind(k8s_documents, "Deployment").items():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            for ref in container.get("envFrom", []):
                if "configMapRef" in ref:
                    assert ref["configMapRef"]["name"] in config_maps, name
                if "secretRef" in ref:
                    assert ref["secretRef"]["name"] in secrets, name
            for var in container.get("env", []):
                secret_ref = (var.get("valueFrom") or {}).get("secretKeyRef")
                if secret_ref:
                    assert secret_ref["name"] in secrets, f"{name}: {var['name']}"


def test_gateway_is_probed_and_exposed(k8s_documents: list[tuple[str, dict[str, Any]]]) -> None:
    (container,) = _of_kind(k8s_documents, "Deployment")["gateway"]["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    service = _of_kind(k8s_documents, "Service")["gateway"]
    pod_labels = _of_kind(k8s_documents, "Deployment")["gateway"]["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    port_names = {p["name"] for p in container["ports"]}
    assert all(p["targetPort"] in port_names for p in service["spec"]["ports"])


def test_each_scaled_consumer_scales_on_its_own_queue(k8s_documents: list[tuple[str, dict[str, Any]]]) -> None:
    scaled = _of_kind(k8s_documents, "ScaledObject")
    deployments = _of_kind(k8s_documents, "Deployment")
    auths = _of_kind(k8s_documents, "TriggerAuthentication")
    assert set(scaled) == SCALED
    for name, obj in scaled.items():
        assert obj["spec"]["scaleTargetRef"]["name"] == name
        assert "replicas" not in deployments[name]["spec"], f"{name}: KEDA owns the replica count"
        triggers = obj["spec"]["triggers"]
        assert {t["metadata"]["queueName"] for t in triggers} == {f"aisaas.{q}" for q in SCALED_QUEUES[name]}
        for trigger in triggers:
            assert trigger["type"] == "rabbitmq"
            assert trigger["metadata"]["mode"] == "QueueLength"
            assert trigger["authenticationRef"]["name"] in auths
    secrets = _of_kind(k8s_documents, "Secret")
    for auth in auths.values():
        for ref in auth["spec"]["secretTargetRef"]:
            assert ref["name"] in secrets and ref["key"] in secrets[ref["name"]]["stringData"], ref


def test_the_ledger_runs_an_owner_and_a_standby_with_a_deep_prefetch(
    k8s_documents: list[tuple[str, dict[str, Any]]],
) -> None:
    credits = _of_kind(k8s_documents, "Deployment")["credits"]
    assert credits["spec"]["replicas"] >= 2  # a standby takes a partition over when its owner goes
    (container,) = credits["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert int(env["BUS_PREFETCH"]) >= 64  # what a batch is made of
    config = _of_kind(k8s_documents, "ConfigMap")["aisaas-config"]["data"]
    assert int(config["CREDITS_PARTITIONS"]) >= 1


def test_every_manifest_is_valid_against_the_kubernetes_and_keda_schemas(
    k8s_documents: list[tuple[str, dict[str, Any]]],
) -> None:
    """Offline: Kubernetes' own schemas (strict: an unknown or misspelt field fails) from
    kubernetes-validate, KEDA's CRD schemas vendored under deploy/schemas/keda."""
    keda = {
        kind: json.loads((KEDA_SCHEMAS / f"{kind.lower()}_v1alpha1.json").read_text())
        for kind in ("ScaledObject", "TriggerAuthentication")
    }
    for path, doc in k8s_documents:
        if doc["apiVersion"].startswith("keda.sh/"):
            schema = keda[doc["kind"]]
            errors = sorted(validator_for(schema)(schema).iter_errors(doc), key=str)
            assert not errors, f"{path} {doc['kind']}/{doc['metadata']['name']}: {errors[0].message}"
        elif doc["apiVersion"].startswith("kustomize.config.k8s.io/"):
            continue  # read by kustomize, never sent to the API server
        else:
            validate_kubernetes(doc, KUBERNETES_VERSION, strict=True)


def test_the_schema_check_refuses_a_misspelt_field(k8s_documents: list[tuple[str, dict[str, Any]]]) -> None:
    """The check above could fail: a field the API server does not know is an error."""
    deployment = copy.deepcopy(_of_kind(k8s_documents, "Deployment")["gateway"])
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePulPolicy"] = "Always"
    with pytest.raises(Exception, match="imagePulPolicy"):
        validate_kubernetes(deployment, KUBERNETES_VERSION, strict=True)
    scaled = copy.deepcopy(_of_kind(k8s_documents, "ScaledObject")["imagegen"])
    scaled["spec"]["triggers"][0]["authRef"] = scaled["spec"]["triggers"][0].pop("authenticationRef")
    schema = json.loads((KEDA_SCHEMAS / "scaledobject_v1alpha1.json").read_text())
    assert list(validator_for(schema)(schema).iter_errors(scaled))


# --- bus trust: one broker user per service ----------------------------------------------------


def test_each_compose_service_logs_in_to_the_broker_as_its_own_user(compose: dict[str, Any]) -> None:
    for name in SERVICES:
        url = compose["services"][name]["environment"]["AMQP_URL"]
        assert url.startswith(f"amqp://{name}:${{RABBITMQ_PASSWORD_{name.upper()}:?"), f"{name}: {url}"
    writer = compose["services"]["rabbitmq-definitions"]
    assert {f"RABBITMQ_PASSWORD_{u.upper()}" for u in USERS} <= writer["environment"].keys()
    assert "--users-from-env" in writer["command"]
    rabbitmq = compose["services"]["rabbitmq"]
    assert rabbitmq["depends_on"]["rabbitmq-definitions"]["condition"] == "service_completed_successfully"
    conf = next(v.split(":")[0] for v in rabbitmq["volumes"] if v.endswith("definitions.conf:ro"))
    assert "definitions.local.path = /definitions/definitions.json" in (ROOT / conf).read_text()


def test_k8s_gives_each_service_its_own_broker_login_and_the_broker_its_permissions(
    k8s_documents: list[tuple[str, dict[str, Any]]],
) -> None:
    secrets = _of_kind(k8s_documents, "Secret")
    for user in USERS:
        assert secrets[f"aisaas-amqp-{user}"]["stringData"]["AMQP_URL"].startswith(f"amqp://{user}:"), user
    assert "AMQP_URL" not in secrets["aisaas-infra"]["stringData"]  # no shared login
    for name, deployment in _of_kind(k8s_documents, "Deployment").items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        sources = [next(iter(ref.values()))["name"] for ref in container["envFrom"]]
        assert f"aisaas-amqp-{name}" in sources, name
    committed = json.loads(_of_kind(k8s_documents, "ConfigMap")["rabbitmq-definitions"]["data"]["definitions.json"])
    namespace = _of_kind(k8s_documents, "ConfigMap")["aisaas-config"]["data"]["BUS_NAMESPACE"]
    assert committed == definitions(namespace=namespace), "stale: regenerate with `make -s broker-definitions`"
