"""Garbage collection of the environment cache (``ClusterOptions.env_cache``: one Python environment per key, kept
by the build Jobs, mounted read-only by the pods of every release of that key; see manifests.PREPARE_SCRIPT).

What goes: an environment that no pod template of a Deployment, ReplicaSet or Job and no pod mounts (`keys_in_use`:
the ``subPath`` of their ``envs`` mounts, whatever their replicas: a Space asleep at zero replicas wakes with its
template, an old ReplicaSet can be rolled back to) and that was not used for ``keep`` seconds
(``kubernetes.env_cache_keep_days``). When it was last used: the newest of its ``.complete`` marker (written when a
build kept it), its entry in the volume's ``.used`` ledger (touched by a build's prepare container that finds it, and
by each collection for every key in use then) and its folder. Also: a build's scratch folder (``.tmp/<pod>``) older
than a build may run (a build cut off before its publish container), and a ``.trash`` left by a collection that was
itself cut off.

Who removes it: a Job on the cache volume (`gc_job`), as the app user (uid 1000, no capabilities: the environments
are that user's), running `GC_SCRIPT`, which is given the keys in use in a ConfigMap. No code of any Space runs
there. With a hostPath cache, every node has its own folder: one Job per Ready node, pinned to it (``nodeName``,
tolerating every taint); with a claim, one Job. The keys in use are the cluster's, so a key a pod uses on one node
is kept on every node; the ledger is per folder, so an environment a build found on one node counts as used on that
node only.

Never one a pod mounts: a pod mounts the key of its template, which was in use (so kept) when the collection read the
cluster, unless its release started after that read from a build that found the key in the cache; that build's
prepare container touched the key's ledger entry first, which the collection reads again after moving the folder
aside (to ``.trash``): a key used meanwhile goes back in place. A pod whose key is gone (a release started from an
old build record) installs its own, as on a node without the key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from spacehub.runtime.backends.kubernetes.manifests import (
    ENVS_ROOT,
    MANAGED_BY,
    ClusterOptions,
    Manifest,
    held_in,
    pod_security,
)

LABEL_KIND = "spacehub.dev/kind"
KIND = "envs-gc"
IN_USE_PATH = "/gc"  # the ConfigMap of the keys in use (key ``in-use``: one key a line)
_KEY = re.compile(r"^[0-9a-f]{32}$")

GC_SCRIPT = """import json, os, pathlib, re, shutil, sys, time
root = pathlib.Path(os.environ["SPACEHUB_ENVS"])
keep, scratch = float(os.environ["SPACEHUB_KEEP_SECONDS"]), float(os.environ["SPACEHUB_SCRATCH_SECONDS"])
in_use = set(pathlib.Path(os.environ["SPACEHUB_IN_USE"]).read_text().split())
KEY = re.compile(r"[0-9a-f]{32}")
removed, kept, cleared = [], [], []


def done(note):
    print(note, flush=True)
    summary = {"removed": removed[:80], "removed_count": len(removed), "kept": len(kept), "scratch": len(cleared)}
    with open(os.environ.get("SPACEHUB_REPORT", "/dev/termination-log"), "w") as f:
        json.dump(summary, f)
    sys.exit(0)


def mtime(p):
    try:
        return p.stat().st_mtime
    except OSError:
        return None


if not os.access(root, os.W_OK):  # no build ever kept an environment here (a new hostPath folder is root's)
    done("no environment is kept here")
used, trash = root / ".used", root / ".trash"
used.mkdir(exist_ok=True)
trash.mkdir(exist_ok=True)
for left in trash.iterdir():  # a collection cut off before it finished
    shutil.rmtree(left, ignore_errors=True)
now = time.time()
for key in sorted(in_use):
    if KEY.fullmatch(key) and (root / key).is_dir():
        (used / key).touch()  # seen in use now
for d in sorted(root.iterdir()):
    key = d.name
    if not KEY.fullmatch(key) or key in in_use or not d.is_dir():
        continue
    times = [t for t in (mtime(used / key), mtime(d / ".complete"), mtime(d)) if t is not None]
    last = max(times) if times else now
    if now - last <= keep:
        kept.append(key)
        continue
    aside = trash / f"{key}.{os.getpid()}"
    try:
        d.rename(aside)
    except OSError:  # an empty folder the kubelet made for a pod's subPath (root's): removed as it is
        try:
            d.rmdir()
        except OSError:
            kept.append(key)
            continue
        removed.append(key)
        continue
    again = mtime(used / key)
    if again is not None and again > last:  # a build found it meanwhile: it stays
        try:
            d.rmdir()  # an empty one the kubelet made meanwhile
        except OSError:
            pass
        try:
            aside.rename(d)
            kept.append(key)
            continue
        except OSError:
            pass
    shutil.rmtree(aside, ignore_errors=True)
    (used / key).unlink(missing_ok=True)
    removed.append(key)
    print(f"removed environment {key}: unused for {(now - last) / 86400:.1f} days", flush=True)
for entry in list(used.iterdir()):  # the ledger of environments that are gone
    if not (root / entry.name).exists() and now - (mtime(entry) or now) > keep:
        entry.unlink(missing_ok=True)
tmp = root / ".tmp"
for p in sorted(tmp.iterdir()) if tmp.is_dir() else []:
    if now - (mtime(p) or now) > scratch:  # a build's scratch, older than a build may run: cut off
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        cleared.append(p.name)
done(f"{len(removed)} environments removed, {len(kept)} unused ones kept (used within {keep / 86400:g} days), "
     f"{len(in_use)} in use, {len(cleared)} scratch entries cleared")
"""


def keys_in_use(objects: Iterable[Mapping[str, Any]]) -> set[str]:
    """The environments the pod specs of ``objects`` mount (Deployments, ReplicaSets and Jobs: their templates;
    pods: their own spec), by the ``subPath`` of their mounts of the ``envs`` volume (a build's scratch mount,
    ``subPathExpr``, is no key)."""
    keys: set[str] = set()
    for obj in objects:
        spec = obj.get("spec") or {}
        pod = (spec.get("template") or {}).get("spec") if "template" in spec else spec
        for c in [*((pod or {}).get("initContainers") or []), *((pod or {}).get("containers") or [])]:
            for mount in c.get("volumeMounts") or []:
                sub = mount.get("subPath") or ""
                if mount.get("name") == "envs" and _KEY.match(sub):
                    keys.add(sub)
    return keys


def _labels() -> dict[str, str]:
    return {"app.kubernetes.io/managed-by": MANAGED_BY, LABEL_KIND: KIND}


def gc_config_map(name: str, keys: Iterable[str], opts: ClusterOptions) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": opts.namespace, "labels": _labels()},
        "data": {"in-use": "".join(f"{k}\n" for k in sorted(keys))},
    }


def gc_job(name: str, config_map: str, node: str | None, image: str, opts: ClusterOptions, keep_seconds: float,
           scratch_seconds: float) -> Manifest:  # fmt: skip
    """One collection on the cache volume: on ``node`` (a hostPath cache: each node's own folder), or wherever the
    claim is (``node`` None)."""
    assert opts.env_cache is not None
    amounts = {"cpu": "100m", "memory": "128Mi"}
    spec: Manifest = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "restartPolicy": "Never",
        "securityContext": pod_security(),
        "containers": [
            {
                "name": "collect",
                "image": image,
                "imagePullPolicy": opts.image_pull_policy,
                "command": ["python3", "-c", GC_SCRIPT],
                "env": [
                    {"name": "SPACEHUB_ENVS", "value": ENVS_ROOT},
                    {"name": "SPACEHUB_IN_USE", "value": f"{IN_USE_PATH}/in-use"},
                    {"name": "SPACEHUB_KEEP_SECONDS", "value": f"{keep_seconds:g}"},
                    {"name": "SPACEHUB_SCRATCH_SECONDS", "value": f"{scratch_seconds:g}"},
                ],
                "resources": {"requests": amounts, "limits": amounts},
                "securityContext": held_in(),
                "volumeMounts": [
                    {"name": "envs", "mountPath": ENVS_ROOT},
                    {"name": "in-use", "mountPath": IN_USE_PATH, "readOnly": True},
                ],
            }
        ],
        "volumes": [
            {"name": "envs", **dict(opts.env_cache)},
            {"name": "in-use", "configMap": {"name": config_map}},
        ],
    }
    if node is not None:
        spec["nodeName"] = node
        spec["tolerations"] = [{"operator": "Exists"}]  # every node's folder, GPU nodes' too
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": opts.namespace, "labels": _labels()},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": 600,
            "template": {"metadata": {"labels": _labels()}, "spec": spec},
        },
    }
