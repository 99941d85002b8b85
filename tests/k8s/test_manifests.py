"""The pure manifest builders: what a Space's release becomes on a cluster (no cluster needed)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from spacehub.flavors import Catalog
from spacehub.runtime.backends.kubernetes import firewall, quantities
from spacehub.runtime.backends.kubernetes import manifests as m
from spacehub.runtime.backends.kubernetes.manifests import ClusterOptions, Peer, SpaceRelease

CATALOG = Catalog()
OPTS = ClusterOptions(
    namespace="spaces",
    hub=Peer(cidrs=("192.0.2.10/32",)),
    hub_ports=(8000,),
    cluster_cidrs=("10.244.0.0/16", "10.96.0.0/12"),
)


def release(**kw: object) -> SpaceRelease:
    base: dict[str, object] = dict(
        space_id="0123456789abcdef01234567",
        repo="alice/demo",
        commit="a" * 40,
        release_id="r" + "b" * 16,
        flavor=CATALOG.get("cpu-basic"),
        image="registry.local/spaces/demo:abc",
        app_port=7860,
        env={"SPACE_ID": "alice/demo"},
        variables=("MODEL",),
        secrets=("HF_TOKEN",),
    )
    base.update(kw)
    return SpaceRelease(**base)  # type: ignore[arg-type]


def code_inits(spec: dict[str, object]) -> list[dict[str, object]]:
    """The init containers that deliver the code: those after the firewall, which comes first."""
    inits = spec["initContainers"]
    assert isinstance(inits, list) and inits[0]["name"] == "firewall"
    return inits[1:]


def test_every_object_is_labelled_and_annotated_with_space_commit_and_release() -> None:
    r = release(storage_bytes=20 * 10**9)
    objs = m.space_objects(r, OPTS, {"HF_TOKEN": "hf_x"}, {"MODEL": "gpt2"})
    assert [o["kind"] for o in objs] == [
        "NetworkPolicy",
        "Secret",
        "ConfigMap",
        "PersistentVolumeClaim",
        "Service",
        "Deployment",
    ]
    for o in objs:
        meta = o["metadata"]
        assert meta["namespace"] == "spaces"
        assert meta["labels"][m.LABEL_SPACE] == r.space_id
        assert meta["labels"][m.LABEL_COMMIT] == r.commit
        assert meta["labels"][m.LABEL_RELEASE] == r.release_id
        assert meta["annotations"][m.ANNOTATION_REPO] == "alice/demo"
        assert len(meta["name"]) <= 63
    template = objs[-1]["spec"]["template"]["metadata"]
    assert template["labels"][m.LABEL_RELEASE] == r.release_id  # a new release rolls the pods
    assert objs[-1]["spec"]["selector"] == {"matchLabels": {m.LABEL_SPACE: r.space_id}}  # selectors are immutable


def test_secret_values_only_in_the_secret_never_in_a_config_map_or_the_deployment() -> None:
    r = release()
    objs = m.space_objects(r, OPTS, {"HF_TOKEN": "hf_very_secret_value"}, {"MODEL": "gpt2"})
    holders = [o["kind"] for o in objs if "hf_very_secret_value" in json.dumps(o)]
    assert holders == ["Secret"]
    env = objs[-1]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {
        "name": "HF_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": m.secret_name(r.space_id), "key": "HF_TOKEN"}},
    } in env
    assert {
        "name": "MODEL",
        "valueFrom": {"configMapKeyRef": {"name": m.variables_name(r.space_id), "key": "MODEL"}},
    } in env
    assert {"name": "SPACE_ID", "value": "alice/demo"} in env


def test_secret_and_config_map_take_exactly_the_named_keys() -> None:
    with pytest.raises(ValueError, match="secret values"):
        m.secret(release(), {"HF_TOKEN": "x", "OTHER": "y"}, OPTS)
    with pytest.raises(ValueError, match="variable values"):
        m.config_map(release(), {}, OPTS)


def test_pods_are_held_in_as_on_the_local_backend() -> None:
    spec = m.deployment(release(), OPTS)["spec"]["template"]["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] == 1000
    sc = spec["containers"][0]["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["runAsUser"] == 1000 and sc["runAsNonRoot"] is True
    assert "nodeSelector" not in spec and "tolerations" not in spec


def test_resources_follow_the_flavor_and_gpus_get_a_limit_and_a_node_selector() -> None:
    cpu = m.deployment(release(), OPTS)["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert cpu == {"requests": {"cpu": "2", "memory": "16Gi"}, "limits": {"cpu": "2", "memory": "16Gi"}}
    gpu = m.deployment(release(flavor=CATALOG.get("a10g-largex2")), OPTS)["spec"]
    pod = gpu["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"] == {"cpu": "24", "memory": "92Gi", "nvidia.com/gpu": "2"}
    assert pod["nodeSelector"] == {m.ACCELERATOR_LABEL: "A10G"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert gpu["strategy"] == {"type": "Recreate"}  # one GPU cannot hold the old and the new pod at once


def test_replicas_follow_the_state_and_say_why() -> None:
    for state, replicas in (("running", 1), ("sleeping", 0), ("paused", 0)):
        d = m.deployment(release(state=state), OPTS)
        assert d["spec"]["replicas"] == replicas
        assert d["metadata"]["annotations"][m.ANNOTATION_STATE] == state
    with pytest.raises(ValueError, match="state"):
        release(state="frozen")


def test_rolling_update_with_a_readiness_probe_on_the_app_port() -> None:
    spec = m.deployment(release(), OPTS)["spec"]
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    c = spec["template"]["spec"]["containers"][0]
    assert c["ports"] == [{"name": "http", "containerPort": 7860, "protocol": "TCP"}]
    assert c["readinessProbe"]["tcpSocket"] == {"port": "http"}
    http = m.container(release(readiness_path="/_stcore/health"), OPTS)["readinessProbe"]
    assert http["httpGet"] == {"path": "/_stcore/health", "port": "http"}


def test_storage_is_a_claim_of_the_tier_mounted_at_data() -> None:
    assert m.claim(release(), OPTS) is None
    r = release(storage_bytes=20 * 10**9)
    pvc = m.claim(r, dataclasses.replace(OPTS, storage_class="fast"))
    assert pvc is not None
    assert pvc["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "20000000000"}},
        "storageClassName": "fast",
    }
    spec = m.deployment(r, OPTS)["spec"]
    assert spec["template"]["spec"]["volumes"] == [
        {"name": "data", "persistentVolumeClaim": {"claimName": m.claim_name(r.space_id)}}
    ]
    assert spec["template"]["spec"]["containers"][0]["volumeMounts"] == [{"name": "data", "mountPath": "/data"}]
    assert spec["strategy"] == {"type": "Recreate"}  # one writer of /data at a time


def test_service_targets_the_app_port_of_the_spaces_pods() -> None:
    svc = m.service(release(), OPTS)
    assert svc["spec"]["selector"] == {m.LABEL_SPACE: "0123456789abcdef01234567"}
    assert svc["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]


def test_network_policy_admits_only_the_hub_and_never_other_spaces() -> None:
    pol = m.network_policy(release(), OPTS)["spec"]
    assert pol["policyTypes"] == ["Ingress", "Egress"]
    assert pol["ingress"] == [
        {"from": [{"ipBlock": {"cidr": "192.0.2.10/32"}}], "ports": [{"protocol": "TCP", "port": 7860}]}
    ]
    assert pol["egress"][0] == {
        "to": [{"ipBlock": {"cidr": "192.0.2.10/32"}}],
        "ports": [{"protocol": "TCP", "port": 8000}],
    }
    assert pol["egress"][1]["ports"] == [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
    assert len(pol["egress"]) == 2  # no internet unless the setting says so
    peers = json.dumps(pol)
    assert m.LABEL_SPACE not in json.dumps(pol["ingress"]) + json.dumps(pol["egress"])  # no Space is a peer
    assert "0.0.0.0/0" not in peers

    open_pol = m.network_policy(release(), dataclasses.replace(OPTS, allow_internet=True))["spec"]
    internet = open_pol["egress"][2]["to"]
    v4 = internet[0]["ipBlock"]
    assert v4["cidr"] == "0.0.0.0/0"
    for private in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "10.244.0.0/16", "10.96.0.0/12"):
        assert private in v4["except"]
    assert internet[1]["ipBlock"]["cidr"] == "::/0" and "fc00::/7" in internet[1]["ipBlock"]["except"]


def test_builds_have_a_network_policy_of_their_own() -> None:
    """A pod selected by two policies gets the union of their rules: the Space's policy leaves its builds out, and
    theirs admits nothing in and lets them out to the Hub, DNS and public addresses (the package index) whatever
    allow_internet says; never a private range, the cluster's or another Space."""
    app = m.network_policy(release(), OPTS)["spec"]["podSelector"]
    assert app == {"matchLabels": {m.LABEL_SPACE: "0123456789abcdef01234567"},
                   "matchExpressions": [{"key": m.LABEL_KIND, "operator": "NotIn", "values": ["build"]}]}  # fmt: skip
    pol = m.build_network_policy(release(), OPTS)
    assert pol["metadata"]["name"] == m.name("0123456789abcdef01234567") + "-build"
    assert pol["metadata"]["labels"][m.LABEL_SPACE] == "0123456789abcdef01234567"  # deleted with the Space
    spec = pol["spec"]
    assert spec["podSelector"] == {"matchLabels": {m.LABEL_SPACE: "0123456789abcdef01234567", m.LABEL_KIND: "build"}}
    assert spec["policyTypes"] == ["Ingress", "Egress"] and spec["ingress"] == []
    assert OPTS.allow_internet is False
    hub, dns, internet = spec["egress"]
    assert hub["to"] == [{"ipBlock": {"cidr": "192.0.2.10/32"}}]
    assert dns["ports"] == [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
    v4 = internet["to"][0]["ipBlock"]
    assert v4["cidr"] == "0.0.0.0/0" and {"10.0.0.0/8", "169.254.0.0/16", "10.244.0.0/16"} <= set(v4["except"])
    assert m.LABEL_SPACE not in json.dumps(spec["egress"])  # no Space is a peer


def test_network_policy_without_a_hub_peer_denies_rather_than_allows_all() -> None:
    # an empty "from" would admit everyone: with no Hub peer configured there must be no rule at all
    pol = m.network_policy(release(), ClusterOptions(namespace="spaces"))["spec"]
    assert pol["ingress"] == []
    assert all(rule.get("to") for rule in pol["egress"])


def test_in_cluster_hub_as_a_pod_selector() -> None:
    opts = ClusterOptions(hub=Peer(pod_labels={"app.kubernetes.io/name": "spacehub"}))
    pol = m.network_policy(release(), opts)["spec"]
    assert pol["ingress"][0]["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "spacehub"}}}]


def test_every_pod_holds_itself_in_with_a_firewall_init_container_first() -> None:
    r = release(code=code())
    spec = m.deployment(r, OPTS)["spec"]["template"]["spec"]
    wall = spec["initContainers"][0]
    assert wall["name"] == "firewall" and wall["image"] == firewall.FIREWALL_IMAGE == OPTS.firewall_image
    assert wall["command"] == ["sh", "-c", firewall.PROGRAM, "firewall"]  # SpaceHub's program, nothing of the Space
    assert wall["imagePullPolicy"] == OPTS.image_pull_policy
    assert wall["terminationMessagePolicy"] == "FallbackToLogsOnError"  # its reason, or its log's tail, is read back
    # root, for NET_ADMIN in the pod's network namespace: that capability alone, nothing mounted, nothing written
    assert wall["securityContext"] == {
        "runAsUser": 0, "runAsGroup": 0, "runAsNonRoot": False, "allowPrivilegeEscalation": False,
        "privileged": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"], "add": ["NET_ADMIN"]},
    }  # fmt: skip
    assert "volumeMounts" not in wall
    env = {e["name"]: e for e in wall["env"]}
    assert env["SPACEHUB_HOST_IP"] == {"name": "SPACEHUB_HOST_IP",
                                       "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}}  # fmt: skip
    policy = m.firewall_policy(r, OPTS)
    assert policy == firewall.Policy(hub_cidrs=("192.0.2.10/32",), hub_ports=(8000,), blocked=OPTS.cluster_cidrs,
                                     app_port=7860)  # fmt: skip
    assert env["SPACEHUB_RULES_V4"]["value"] == firewall.template(policy, 4)
    assert env["SPACEHUB_RULES_V6"]["value"] == firewall.template(policy, 6)
    assert "SPACEHUB_HUB_HOST" not in env  # the Hub is given by its addresses
    # the app and the code's containers keep every capability dropped, as uid 1000
    for c in (*spec["initContainers"][1:], *spec["containers"]):
        assert c["securityContext"] == m.held_in(), c["name"]
    # an init container's resources: the flavor's without its GPU (an init container would hold it too)
    gpu = m.pod_spec(release(flavor=CATALOG.get("a10g-small")), OPTS)
    assert "nvidia.com/gpu" not in gpu["initContainers"][0]["resources"]["limits"]
    # a docker Space (no code to fetch) has the firewall alone; a pod without it when the operator turns it off
    assert [c["name"] for c in m.pod_spec(release(), OPTS)["initContainers"]] == ["firewall"]
    off = dataclasses.replace(OPTS, pod_firewall=False, firewall_image="elsewhere/iptables:1")
    assert "initContainers" not in m.pod_spec(release(), off)
    assert [c["name"] for c in m.pod_spec(r, off)["initContainers"]] == ["fetch", "install"]
    assert m.pod_spec(release(), dataclasses.replace(OPTS, firewall_image="elsewhere/iptables:1"))[
        "initContainers"][0]["image"] == "elsewhere/iptables:1"  # fmt: skip


def test_a_build_reaches_the_internet_a_task_takes_nothing_in_and_the_hub_by_labels_is_resolved_in_the_pod() -> None:
    def policy(manifest: dict[str, object]) -> str:
        env = manifest["spec"]["template"]["spec"]["initContainers"][0]["env"]  # type: ignore[index]
        return next(e["value"] for e in env if e["name"] == "SPACEHUB_FIREWALL_SUMMARY")

    r = release(code=code())
    build = m.job(r, OPTS, "build-b1", role="build")
    assert policy(build) == firewall.summary(m.firewall_policy(r, OPTS, "build"))
    assert m.firewall_policy(r, OPTS, "build").internet and m.firewall_policy(r, OPTS, "build").app_port is None
    assert policy(build).startswith("in: nothing;") and policy(build).endswith("public addresses")
    task = m.job(r, OPTS, "task-r1")
    assert policy(task) == "in: nothing; out: DNS, the Hub, no private address, nothing else"
    assert m.firewall_policy(r, dataclasses.replace(OPTS, allow_internet=True), "task").internet
    # the Hub in the cluster, given by its pods' labels: its addresses are what its URL's host resolves to, in the
    # pod, and the app port is open to all (the Hub's address is not fixed; other Spaces' own rules refuse)
    labels = dataclasses.replace(OPTS, hub=Peer(pod_labels={"app": "spacehub"}), hub_url="http://spacehub.hub.svc:8000")
    wall = m.pod_spec(r, labels)["initContainers"][0]
    assert {"name": "SPACEHUB_HUB_HOST", "value": "spacehub.hub.svc"} in wall["env"]
    assert m.firewall_policy(r, labels) == firewall.Policy(hub_by_name=True, hub_ports=(8000,),
                                                           blocked=OPTS.cluster_cidrs, app_port=7860,
                                                           app_port_open=True)  # fmt: skip
    with pytest.raises(ValueError, match="needs its URL"):
        m.pod_spec(r, dataclasses.replace(labels, hub_url=None))


def test_the_backend_gives_its_hub_url_to_the_firewall_and_builds_are_builds() -> None:
    from spacehub.runtime.backends.kubernetes.backend import KubernetesBackend

    backend = KubernetesBackend(None, OPTS, lambda s, current=None: ("a/b", "t"), "http://hub:8000")  # type: ignore[arg-type]
    assert backend.options.hub_url == "http://hub:8000" and OPTS.hub_url is None
    mine = dataclasses.replace(OPTS, hub_url="http://other:1")
    assert KubernetesBackend(None, mine, lambda s, current=None: ("a/b", "t"), "http://hub:8000").options.hub_url == (  # type: ignore[arg-type]
        "http://other:1"
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("space_id", "Alice/Demo", "cannot name"),
        ("space_id", "x" * 60, "cannot name"),
        ("commit", "not a label!", "commit"),
        ("release_id", "-r", "release"),
        ("app_port", 0, "port"),
        ("variables", ("1BAD",), "environment variable"),
        ("secrets", ("MODEL",), "given twice"),
        ("storage_bytes", 0, "storage"),
    ],
)
def test_invalid_releases_are_refused(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        release(**{field: value})


def test_quantities() -> None:
    assert quantities.cpu(2) == "2" and quantities.cpu(0.5) == "500m" and quantities.cpu(1.25) == "1250m"
    assert quantities.memory(16 * 2**30) == "16Gi" and quantities.memory(512 * 2**20) == "512Mi"
    assert quantities.memory(1000) == "1000"
    assert quantities.parse("500m") == quantities.parse("0.5")
    assert quantities.parse("16Gi") == 16 * 2**30
    assert quantities.human_bytes(15 * 2**30) == "15 GiB"
    with pytest.raises(ValueError, match="quantity"):
        quantities.parse("lots")
    with pytest.raises(ValueError):
        quantities.cpu(0)


def test_every_catalog_flavor_makes_valid_resources() -> None:
    for flavor in CATALOG.flavors.values():
        res = m.resources(flavor)
        assert quantities.parse(res["limits"]["cpu"]) == pytest.approx(flavor.cpu)
        assert quantities.parse(res["limits"]["memory"]) == flavor.memory_bytes
        assert res["requests"]["cpu"] == res["limits"]["cpu"]


def test_the_sdks_packages_are_arguments_of_the_install_container_never_part_of_its_program() -> None:
    code = m.CodeFetch("alice/demo", "a" * 40, "http://hub:8000", "space-x-fetch", "python:3.11-slim", True,
                       ("gradio==5.1.0", "spaces"))  # fmt: skip
    _, install = code_inits(m.pod_spec(release(code=code), OPTS))
    assert install["command"] == ["sh", "-c", m.INSTALL_SCRIPT, "install", "gradio==5.1.0", "spaces"]
    assert "gradio" not in m.INSTALL_SCRIPT
    bare = dataclasses.replace(code, packages=())
    assert code_inits(m.pod_spec(release(code=bare), OPTS))[1]["command"] == ["sh", "-c", m.INSTALL_SCRIPT,
                                                                               "install"]  # fmt: skip
    for bad in ("--index-url=http://evil/", "-rrequirements.txt", "x; rm -rf /", "a b", "$(id)", ""):
        with pytest.raises(ValueError, match="is not a package requirement"):
            dataclasses.replace(code, packages=(bad,))


def test_the_backend_pins_the_sdks_first_package_to_the_readmes_version() -> None:
    from spacehub.runtime.backends.kubernetes.backend import KubernetesBackend

    backend = KubernetesBackend(None, OPTS, lambda s, current=None: ("a/b", "t"), "http://hub:8000")  # type: ignore[arg-type]
    assert backend._packages("gradio", "5.1.0") == ["gradio==5.1.0", "spaces"]
    assert backend._packages("gradio", None) == ["gradio", "spaces"]
    assert backend._packages("streamlit", "1.40.0") == ["streamlit==1.40.0"]
    assert backend._packages("static", None) == [] and backend._packages("docker", "1") == []
    none = KubernetesBackend(None, OPTS, lambda s, current=None: ("a/b", "t"), "http://hub:8000",  # type: ignore[arg-type]
                             sdk_packages={"gradio": ()})  # fmt: skip
    assert none._packages("gradio", "5.1.0") == []


# ---- the environment cache -------------------------------------------------------------------------------------
CACHE = dataclasses.replace(
    OPTS, env_cache={"hostPath": {"path": "/var/lib/spacehub/envs", "type": "DirectoryOrCreate"}}
)
KEY = "0123456789abcdef0123456789abcdef"


def code(**kw: object) -> m.CodeFetch:
    base: dict[str, object] = dict(repo="alice/demo", revision="a" * 40, hub_url="http://hub:8000",
                                   token_secret="space-x-fetch", image="python:3.11-slim",
                                   packages=("gradio",))  # fmt: skip
    base.update(kw)
    return m.CodeFetch(**base)  # type: ignore[arg-type]


def test_a_build_keeps_the_environment_and_only_its_install_runs_code_of_the_space_without_the_volumes_root() -> None:
    spec = m.pod_spec(release(code=code(env_build=True, env_salt="")), CACHE)
    _, own, prepare, install, publish = code_inits(spec)
    assert [c["name"] for c in spec["initContainers"]] == ["firewall", "fetch", "own", "prepare", "install", "publish"]
    assert {"name": "envs", "hostPath": {"path": "/var/lib/spacehub/envs", "type": "DirectoryOrCreate"}} in spec[
        "volumes"
    ]
    # own: root with CAP_CHOWN only, and only the volume; prepare: the key digests the packages (arguments, never
    # the program), as the app user
    assert own["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["CHOWN"]}
    assert [v["name"] for v in own["volumeMounts"]] == ["envs"] and own["command"][:2] == ["python3", "-c"]
    assert prepare["securityContext"] == m.held_in()
    assert prepare["command"] == ["python3", "-c", m.PREPARE_SCRIPT, "gradio"]
    # install (pip: the Space's code) mounts only its scratch folder, held in as the app
    assert install["securityContext"] == m.held_in()
    envs = [v for v in install["volumeMounts"] if v["name"] == "envs"]
    assert envs == [{"name": "envs", "mountPath": m.NEW_ENV_PATH, "subPathExpr": ".tmp/$(POD_NAME)"}]
    assert publish["securityContext"] == m.held_in() and publish["command"] == ["sh", "-c", m.PUBLISH_SCRIPT]
    # the app container of a build mounts no environment; neither does anything without the cache
    assert all(v["name"] != "envs" for v in spec["containers"][0].get("volumeMounts", []))
    plain = m.pod_spec(release(code=code(env_build=True)), OPTS)
    assert [c["name"] for c in plain["initContainers"]] == ["firewall", "fetch", "install"]
    assert all(v["name"] != "envs" for v in plain["volumes"])


def test_a_pod_mounts_its_own_environment_read_only_and_installs_only_when_it_is_missing() -> None:
    spec = m.pod_spec(release(code=code(env_key=KEY)), CACHE)
    fetch, install = code_inits(spec)
    (app,) = spec["containers"]
    mount = {"name": "envs", "mountPath": m.ENV_CACHE_PATH, "subPath": KEY, "readOnly": True}
    assert mount in install["volumeMounts"] and mount in app["volumeMounts"]
    assert all(v["name"] != "envs" for v in fetch["volumeMounts"])
    assert install["command"] == ["sh", "-c", m.POD_INSTALL_SCRIPT, "install", "gradio"]
    assert {"name": "PYTHONPATH", "value": f"{m.ENV_CACHE_PATH}/site-packages:{m.ENV_PATH}"} in app["env"]
    # a build that kept no environment (or no cache): the pod installs its own, as before
    for spec in (m.pod_spec(release(code=code()), CACHE), m.pod_spec(release(code=code(env_key=KEY)), OPTS)):
        assert code_inits(spec)[1]["command"][2] == m.INSTALL_SCRIPT
        assert all(v["name"] != "envs" for v in spec["volumes"])
    for bad in ("../other", "ABC", "0" * 31, KEY + "/x"):
        with pytest.raises(ValueError, match="is not a key"):
            code(env_key=bad)


def _prepare(tmp: Path, files: dict[str, str], *packages: str, salt: str = "") -> str:
    """Run the prepare program here on ``files`` as the fetched code: its key."""
    src, envs = tmp / f"code-{len(list(tmp.iterdir()))}", tmp / "envs"
    src.mkdir()
    envs.mkdir(exist_ok=True)
    for name, text in files.items():
        (src / name).write_text(text)
    pod = f"pod-{src.name}"
    env = {**os.environ, "SPACEHUB_CODE": str(src), "SPACEHUB_ENVS": str(envs), "POD_NAME": pod,
           "SPACEHUB_IMAGE": "python:3.11-slim", "SPACEHUB_ENV_SALT": salt}  # fmt: skip
    subprocess.run([sys.executable, "-c", m.PREPARE_SCRIPT, *packages], env=env, check=True, capture_output=True)
    assert (envs / ".tmp" / pod).is_dir()
    return (envs / ".tmp" / f"{pod}.key").read_text()


def test_the_key_digests_the_requirements_packages_and_salt_and_local_files_only_when_they_are_installed(
    tmp_path: Path,
) -> None:
    reqs = {"requirements.txt": "six\n", "app.py": "print(1)\n"}
    key = _prepare(tmp_path, reqs, "gradio")
    assert len(key) == 32 and _prepare(tmp_path, {**reqs, "app.py": "print(2)\n"}, "gradio") == key
    others = {
        _prepare(tmp_path, {**reqs, "requirements.txt": "six==1.16\n"}, "gradio"),
        _prepare(tmp_path, {**reqs, "pre-requirements.txt": "pip<25\n"}, "gradio"),
        _prepare(tmp_path, reqs, "gradio==5.1"),
        _prepare(tmp_path, reqs, "gradio", salt="b1"),
    }
    assert key not in others and len(others) == 4
    # a requirement that installs the Space's own files: their content is part of the key
    local = {"requirements.txt": "./pkg\n", "app.py": "print(1)\n"}
    assert _prepare(tmp_path, local) != _prepare(tmp_path, {**local, "app.py": "print(2)\n"})
