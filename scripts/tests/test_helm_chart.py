"""The Helm chart in helm/docuelevate, linted and rendered offline by Helm's own Go SDK.

helm-python-sdk binds Helm's SDK (libhelm_c, shipped in the wheel), so lint and render are
the real Helm code without a helm binary or a cluster; every rendered manifest is then checked
against the Kubernetes API schemas that kubernetes-validate bundles.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate  # type: ignore[import-untyped]  # the package ships no type hints
import pytest
import yaml

import docuelevate
from conftest import PROJECT_DIR

CHART = PROJECT_DIR / "helm" / "docuelevate"
PRODUCTION_VALUES = CHART / "values-production.yaml"
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion allows 1.25+) is not bundled
# with strict schemas everywhere; 1.30 is, and every kind used here is stable there.
KUBERNETES_VERSION = "1.30.0"
RELEASE = "docs"
FULLNAME = f"{RELEASE}-docuelevate"
DOCUELEVATE_ROLES = ("api", "worker", "beat", "migrate")
# Custom resources have no schema in kubernetes-validate; their shape is asserted below instead.
CUSTOM_KINDS = {"ServiceMonitor"}

EVERYTHING_ON: dict[str, Any] = {
    "redis": {"enabled": True},
    "postgresql": {"enabled": True},
    "meilisearch": {"enabled": True},
    "metrics": {"podAnnotations": True, "serviceMonitor": {"enabled": True}},
    "secrets": {"metricsToken": "m" * 40, "extra": {"OPENAI_API_KEY": "sk-test"}},
    "extraEnv": [{"name": "FROM_FIELD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
}


def production_values() -> dict[str, Any]:
    with PRODUCTION_VALUES.open() as handle:
        values: dict[str, Any] = yaml.safe_load(handle)
    return values


def render(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every manifest a first install would apply (hooks included), as parsed documents."""
    with helm.Chart.load(str(CHART)) as chart:
        rendered = chart.render(values or {}, name=RELEASE, namespace="docuelevate", is_install=True)
    documents: list[dict[str, Any]] = []
    for template, text in sorted(rendered.items()):
        if not template.endswith((".yaml", ".yml")):
            continue  # NOTES.txt
        documents.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return documents


def one(documents: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in documents if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def of_kind(documents: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in documents if d["kind"] == kind]


def pod_templates(documents: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(component, pod template) of every workload: Deployments, StatefulSets and Jobs."""
    for doc in documents:
        if doc["kind"] in {"Deployment", "StatefulSet", "Job"}:
            template = doc["spec"]["template"]
            yield template["metadata"]["labels"]["app.kubernetes.io/component"], template


def pod_labels(documents: list[dict[str, Any]], component: str) -> dict[str, str]:
    labels = [t["metadata"]["labels"] for c, t in pod_templates(documents) if c == component]
    assert len(labels) == 1, f"expected one workload for {component}"
    return labels[0]


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Kubernetes label-selector semantics (matchLabels and matchExpressions)."""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {entry["name"]: entry.get("value", entry.get("valueFrom")) for entry in container["env"]}


@pytest.fixture(scope="module")
def default_docs() -> list[dict[str, Any]]:
    return render()


@pytest.fixture(scope="module")
def production_docs() -> list[dict[str, Any]]:
    return render(production_values())


@pytest.fixture(scope="module")
def full_docs() -> list[dict[str, Any]]:
    return render(EVERYTHING_ON)


@pytest.mark.parametrize("values_file", [None, PRODUCTION_VALUES], ids=["default", "production"])
def test_helm_lint_finds_no_warnings_or_errors(values_file: Path | None) -> None:
    values = production_values() if values_file else None
    report = helm.lint(str(CHART), values, strict=True, kube_version=f"v{KUBERNETES_VERSION}")
    assert report["errors"] == []
    # Severity 1 is advice (e.g. "icon is recommended"); 2 and 3 are warnings and errors.
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("values", [{}, "production", EVERYTHING_ON], ids=["default", "production", "all-on"])
def test_every_rendered_manifest_is_valid_for_kubernetes(values: dict[str, Any] | str) -> None:
    documents = render(production_values() if isinstance(values, str) else values)
    assert documents
    for doc in documents:
        if doc["kind"] in CUSTOM_KINDS:
            continue
        # strict: an unknown or misspelt field fails instead of being silently dropped.
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_schema_check_refuses_a_misspelt_field(default_docs: list[dict[str, Any]]) -> None:
    """The validation above is only worth something if it catches a typo in a template."""
    beat = one(default_docs, "Deployment", f"{FULLNAME}-beat")
    broken = {**beat, "spec": {**beat["spec"], "replica": 1}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_the_migrate_job_is_a_hook_that_must_succeed_before_pods_update(
    default_docs: list[dict[str, Any]],
) -> None:
    job = one(default_docs, "Job", f"{FULLNAME}-migrate")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    assert int(annotations["helm.sh/hook-weight"]) == 0
    assert job["spec"]["backoffLimit"] == 3
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    assert container["args"] == ["migrate"]
    api = one(default_docs, "Deployment", f"{FULLNAME}-api")
    assert container["image"] == api["spec"]["template"]["spec"]["containers"][0]["image"]


def test_the_chart_made_secret_exists_before_the_migrate_job_reads_it(
    default_docs: list[dict[str, Any]],
) -> None:
    secret = one(default_docs, "Secret", f"{FULLNAME}-secrets")
    job = one(default_docs, "Job", f"{FULLNAME}-migrate")
    assert "pre-install" in secret["metadata"]["annotations"]["helm.sh/hook"]
    assert int(secret["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        job["metadata"]["annotations"]["helm.sh/hook-weight"]
    )
    assert (
        job["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]["secretRef"]["name"]
        == secret["metadata"]["name"]
    )


def test_with_the_in_chart_database_migrations_run_after_it_exists_on_first_install(
    full_docs: list[dict[str, Any]],
) -> None:
    job = one(full_docs, "Job", f"{FULLNAME}-migrate")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,pre-upgrade"


def test_the_api_probes_use_the_live_and_ready_endpoints(default_docs: list[dict[str, Any]]) -> None:
    api = one(default_docs, "Deployment", f"{FULLNAME}-api")
    (container,) = api["spec"]["template"]["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/api/diagnostic/healthz/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/api/diagnostic/healthz/ready"
    assert container["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert container["args"] == ["api"]


@pytest.mark.parametrize("docs_fixture", ["default_docs", "production_docs", "full_docs"])
def test_beat_runs_exactly_once_and_is_never_autoscaled(
    docs_fixture: str, request: pytest.FixtureRequest
) -> None:
    documents = request.getfixturevalue(docs_fixture)
    beat = one(documents, "Deployment", f"{FULLNAME}-beat")
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    assert beat["spec"]["template"]["spec"]["containers"][0]["args"] == ["beat"]
    targets = [hpa["spec"]["scaleTargetRef"]["name"] for hpa in of_kind(documents, "HorizontalPodAutoscaler")]
    assert f"{FULLNAME}-beat" not in targets


def test_workers_scale_on_cpu_between_two_and_ten(default_docs: list[dict[str, Any]]) -> None:
    hpa = one(default_docs, "HorizontalPodAutoscaler", f"{FULLNAME}-worker")
    spec = hpa["spec"]
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": f"{FULLNAME}-worker",
    }
    assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 10)
    assert spec["metrics"] == [
        {
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 75}},
        }
    ]
    worker = one(default_docs, "Deployment", f"{FULLNAME}-worker")
    # A fixed replica count would fight the autoscaler on every upgrade.
    assert "replicas" not in worker["spec"]
    env = env_of(worker["spec"]["template"]["spec"]["containers"][0])
    assert env["CELERY_QUEUES"] == "document_processor,default,celery"


def test_the_api_disruption_budget_keeps_one_api_pod_and_selects_only_api_pods(
    default_docs: list[dict[str, Any]],
) -> None:
    pdb = one(default_docs, "PodDisruptionBudget", f"{FULLNAME}-api")
    api = one(default_docs, "Deployment", f"{FULLNAME}-api")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"] == api["spec"]["selector"]
    selected = [
        component
        for component, t in pod_templates(default_docs)
        if selects(pdb["spec"]["selector"], t["metadata"]["labels"])
    ]
    assert selected == ["api"]


@pytest.mark.parametrize(("service", "port"), [("redis", 6379), ("postgresql", 5432), ("meilisearch", 7700)])
def test_in_chart_services_accept_connections_only_from_docuelevate_pods(
    full_docs: list[dict[str, Any]], service: str, port: int
) -> None:
    policy = one(full_docs, "NetworkPolicy", f"{FULLNAME}-{service}")
    guarded = [
        c
        for c, t in pod_templates(full_docs)
        if selects(policy["spec"]["podSelector"], t["metadata"]["labels"])
    ]
    assert guarded == [service]
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": port, "protocol": "TCP"}]
    (source,) = rule["from"]
    assert set(source) == {"podSelector"}  # no namespaceSelector or ipBlock widening it
    allowed = {
        c for c, t in pod_templates(full_docs) if selects(source["podSelector"], t["metadata"]["labels"])
    }
    assert allowed == set(DOCUELEVATE_ROLES)
    # A pod of another release in the namespace, labelled like ours otherwise, stays out.
    stranger = dict(pod_labels(full_docs, "api"), **{"app.kubernetes.io/instance": "other"})
    assert not selects(source["podSelector"], stranger)


def test_the_workdir_claim_is_read_write_many_and_shared_by_api_and_worker(
    default_docs: list[dict[str, Any]],
) -> None:
    pvc = one(default_docs, "PersistentVolumeClaim", f"{FULLNAME}-workdir")
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    for role in ("api", "worker"):
        spec = one(default_docs, "Deployment", f"{FULLNAME}-{role}")["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert volumes["workdir"]["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
        mounts = {m["mountPath"]: m["name"] for m in spec["containers"][0]["volumeMounts"]}
        assert mounts["/workdir"] == "workdir"
        # Metrics files are per server and /tmp is scratch: both on local emptyDirs, not the share.
        assert "emptyDir" in volumes[mounts["/metrics"]]
        assert "emptyDir" in volumes[mounts["/tmp"]]


def test_the_storage_class_and_access_mode_come_from_values() -> None:
    documents = render(
        {"workdir": {"persistence": {"accessMode": "ReadWriteOnce", "storageClass": "fast", "size": "7Gi"}}}
    )
    pvc = one(documents, "PersistentVolumeClaim", f"{FULLNAME}-workdir")
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert pvc["spec"]["storageClassName"] == "fast"
    assert pvc["spec"]["resources"]["requests"]["storage"] == "7Gi"


def test_the_image_is_pinned_to_the_app_version_and_pulled_only_if_missing(
    default_docs: list[dict[str, Any]],
) -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == docuelevate.__version__
    for component, template in pod_templates(default_docs):
        for container in template["spec"]["containers"]:
            assert container["image"] == f"ghcr.io/docuelevate/docuelevate:{docuelevate.__version__}", (
                component
            )
            assert container["imagePullPolicy"] == "IfNotPresent"


def test_the_production_resources_are_the_defaults(default_docs: list[dict[str, Any]]) -> None:
    api = one(default_docs, "Deployment", f"{FULLNAME}-api")["spec"]["template"]["spec"]["containers"][0]
    worker = one(default_docs, "Deployment", f"{FULLNAME}-worker")["spec"]["template"]["spec"]["containers"][
        0
    ]
    assert api["resources"] == {
        "requests": {"cpu": "250m", "memory": "512Mi"},
        "limits": {"cpu": "1000m", "memory": "2Gi"},
    }
    assert worker["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"cpu": "2000m", "memory": "4Gi"},
    }


def test_every_pod_runs_as_a_non_root_user_without_capabilities(full_docs: list[dict[str, Any]]) -> None:
    for component, template in pod_templates(full_docs):
        pod = template["spec"]["securityContext"]
        assert pod["runAsNonRoot"] is True, component
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, component
        if component in DOCUELEVATE_ROLES:
            assert (pod["runAsUser"], pod["runAsGroup"], pod["fsGroup"]) == (1000, 1000, 1000)
        for container in template["spec"]["containers"]:
            assert container["securityContext"]["capabilities"]["drop"] == ["ALL"], component
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, component


def test_every_docuelevate_container_gets_the_settings_a_cluster_needs(
    default_docs: list[dict[str, Any]],
) -> None:
    for component, template in pod_templates(default_docs):
        env = env_of(template["spec"]["containers"][0])
        assert env["WORKDIR"] == "/workdir", component
        assert env["SECURE_PROXY"] == "true"
        assert env["LOG_FORMAT"] == "json"
        assert env["METRICS_DIR"] == "/metrics"
        assert env["EXTERNAL_HOSTNAME"] == "docuelevate.example.com"
    api_env = env_of(
        one(default_docs, "Deployment", f"{FULLNAME}-api")["spec"]["template"]["spec"]["containers"][0]
    )
    # Prometheus scrapes with Host: <pod-ip>; the pod's own address must be an allowed host.
    assert api_env["ALLOWED_HOSTS"] == "$(POD_IP)"


def test_env_values_reach_the_containers_and_may_extend_allowed_hosts() -> None:
    documents = render(
        {"env": {"OCR_JOBS": 4, "ALLOWED_HOSTS": "docs.internal"}, "worker": {"env": {"OCR_JOBS": 8}}}
    )
    api = env_of(one(documents, "Deployment", f"{FULLNAME}-api")["spec"]["template"]["spec"]["containers"][0])
    worker = env_of(
        one(documents, "Deployment", f"{FULLNAME}-worker")["spec"]["template"]["spec"]["containers"][0]
    )
    assert api["OCR_JOBS"] == "4"
    assert worker["OCR_JOBS"] == "8"
    assert api["ALLOWED_HOSTS"] == "$(POD_IP),docs.internal"


def test_an_existing_secret_is_used_and_no_secret_is_rendered(production_docs: list[dict[str, Any]]) -> None:
    assert of_kind(production_docs, "Secret") == []
    for component, template in pod_templates(production_docs):
        assert template["spec"]["containers"][0]["envFrom"][0] == {
            "secretRef": {"name": "docuelevate-secrets"}
        }, component
    monitor = one(production_docs, "ServiceMonitor", f"{FULLNAME}-api")
    assert monitor["spec"]["endpoints"][0]["bearerTokenSecret"] == {
        "name": "docuelevate-secrets",
        "key": "METRICS_TOKEN",
    }


def test_without_an_existing_secret_one_is_rendered_with_a_strong_generated_session_secret(
    default_docs: list[dict[str, Any]],
) -> None:
    secret = one(default_docs, "Secret", f"{FULLNAME}-secrets")
    data = secret["stringData"]
    assert len(data["SESSION_SECRET"]) >= 32
    assert len(data["ADMIN_PASSWORD"]) >= 12
    assert data["ADMIN_USERNAME"] == "admin"
    assert "DATABASE_URL" not in data
    assert "REDIS_URL" not in data
    for component, template in pod_templates(default_docs):
        assert template["spec"]["containers"][0]["envFrom"][0] == {
            "secretRef": {"name": secret["metadata"]["name"]}
        }
        if component != "migrate":  # a new Job per release reads the Secret anyway
            assert "checksum/secret" in template["metadata"]["annotations"], component


def test_given_secret_values_are_used_as_they_are() -> None:
    documents = render(
        {
            "secrets": {
                "sessionSecret": "s" * 40,
                "databaseUrl": "postgresql://u:p@db/x",
                "redisUrl": "redis://r:6379/0",
            }
        }
    )
    data = one(documents, "Secret", f"{FULLNAME}-secrets")["stringData"]
    assert data["SESSION_SECRET"] == "s" * 40
    assert data["DATABASE_URL"] == "postgresql://u:p@db/x"
    assert data["REDIS_URL"] == "redis://r:6379/0"


def test_in_chart_redis_postgres_and_meilisearch_appear_only_when_enabled(
    default_docs: list[dict[str, Any]], full_docs: list[dict[str, Any]]
) -> None:
    assert of_kind(default_docs, "StatefulSet") == []
    assert of_kind(default_docs, "NetworkPolicy") == []
    assert sorted(s["metadata"]["name"] for s in of_kind(full_docs, "StatefulSet")) == [
        f"{FULLNAME}-meilisearch",
        f"{FULLNAME}-postgresql",
        f"{FULLNAME}-redis",
    ]
    data = one(full_docs, "Secret", f"{FULLNAME}-secrets")["stringData"]
    assert (
        data["DATABASE_URL"]
        == f"postgresql://docuelevate:{data['POSTGRES_PASSWORD']}@{FULLNAME}-postgresql:5432/docuelevate"
    )
    assert data["REDIS_URL"] == f"redis://:{data['REDIS_PASSWORD']}@{FULLNAME}-redis:6379/0"
    assert data["MEILISEARCH_API_KEY"] == data["MEILI_MASTER_KEY"]
    api = env_of(one(full_docs, "Deployment", f"{FULLNAME}-api")["spec"]["template"]["spec"]["containers"][0])
    assert api["MEILISEARCH_URL"] == f"http://{FULLNAME}-meilisearch:7700"
    redis = one(full_docs, "StatefulSet", f"{FULLNAME}-redis")["spec"]["template"]["spec"]["containers"][0]
    # The password is read from the Secret, never written into the pod spec.
    assert data["REDIS_PASSWORD"] not in yaml.safe_dump(redis)


def test_the_ingress_serves_tls_for_the_host_with_cert_manager_and_a_large_body_limit(
    default_docs: list[dict[str, Any]],
) -> None:
    ingress = one(default_docs, "Ingress", FULLNAME)
    annotations = ingress["metadata"]["annotations"]
    assert annotations["cert-manager.io/cluster-issuer"] == "letsencrypt"
    assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == "1g"
    assert ingress["spec"]["tls"] == [{"hosts": ["docuelevate.example.com"], "secretName": f"{FULLNAME}-tls"}]
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "docuelevate.example.com"
    assert rule["http"]["paths"][0]["backend"]["service"]["name"] == f"{FULLNAME}-api"
    resized = render({"ingress": {"proxyBodySize": "2g"}})
    assert (
        one(resized, "Ingress", FULLNAME)["metadata"]["annotations"][
            "nginx.ingress.kubernetes.io/proxy-body-size"
        ]
        == "2g"
    )


def test_metrics_scraping_is_off_by_default_and_annotations_can_be_turned_on(
    default_docs: list[dict[str, Any]], full_docs: list[dict[str, Any]]
) -> None:
    assert of_kind(default_docs, "ServiceMonitor") == []
    default_api = one(default_docs, "Deployment", f"{FULLNAME}-api")["spec"]["template"]["metadata"][
        "annotations"
    ]
    assert "prometheus.io/scrape" not in default_api
    api = one(full_docs, "Deployment", f"{FULLNAME}-api")["spec"]["template"]["metadata"]["annotations"]
    assert (api["prometheus.io/scrape"], api["prometheus.io/path"], api["prometheus.io/port"]) == (
        "true",
        "/metrics",
        "8000",
    )


def test_every_value_in_values_yaml_is_documented() -> None:
    """Each leaf value's line, or the line above it, carries a comment (a header comment
    above a mapping covers the short flow-style entries directly inside it)."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    undocumented = []
    for number, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "-")) or stripped.endswith(":"):
            continue  # comments, list items and mapping headers
        above = lines[number - 1].strip() if number else ""
        if not above.startswith("#") and "#" not in line:
            undocumented.append(line)
    assert undocumented == []


def test_only_the_worker_container_may_make_the_converters_user_namespace(
    default_docs: list[dict[str, Any]],
) -> None:
    for component, template in pod_templates(default_docs):
        for container in template["spec"]["containers"]:
            context = container["securityContext"]
            if component == "worker":
                assert context["seccompProfile"] == {"type": "Unconfined"}
            else:
                assert "seccompProfile" not in context, component
            assert context["capabilities"]["drop"] == ["ALL"], component
            assert context["allowPrivilegeEscalation"] is False, component
