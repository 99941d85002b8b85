"""One compatibility scenario for every huggingface_hub client version (0.21.4, 1.33.0, 2.4.0).

Runs the real, unmodified client against a live SpaceHub server, one step after the other, with asserts. Prints one
JSON line per step (``{"step": ..., "status": "ok", ...}``) and exits 1 at the first failure, after printing a line
with ``"status": "failed"`` and the error. Version differences are handled by feature detection (``hasattr``) and
version checks, never by skipping: a step a version cannot run in the same way runs its older equivalent and says
so in its ``via`` field.

Usage (tokens may also come from the environment, so that they stay out of the process list):

    python scenario.py --endpoint http://127.0.0.1:8000 --workdir /tmp/x --prefix run1 --org acme \
        [--token ALICE_TOKEN] [--bob-token BOB_TOKEN]       # or SCENARIO_TOKEN / SCENARIO_BOB_TOKEN

The server must have: ``alice`` (owner of ``--token``, a write token), ``bob`` (``--bob-token``), and the
organization ``--org`` in which alice is a ``write`` member and bob a ``read`` member.

This file must keep running on Python 3.11 with huggingface_hub 0.21.4: standard library and huggingface_hub only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

STEPS: list[tuple[str, Callable[[], dict[str, Any] | None]]] = []


def step(fn: Callable[[], dict[str, Any] | None]) -> Callable[[], dict[str, Any] | None]:
    STEPS.append((fn.__name__.removeprefix("step_"), fn))
    return fn


class ScenarioError(AssertionError):
    pass


def expect(cond: Any, message: str) -> None:
    if not cond:
        raise ScenarioError(message)


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--endpoint", default=os.environ.get("SCENARIO_ENDPOINT"), required="SCENARIO_ENDPOINT" not in os.environ
    )
    ap.add_argument("--token", default=os.environ.get("SCENARIO_TOKEN"))
    ap.add_argument("--bob-token", default=os.environ.get("SCENARIO_BOB_TOKEN"))
    ap.add_argument("--org", default=os.environ.get("SCENARIO_ORG", "acme"))
    ap.add_argument("--prefix", default=f"s{os.getpid()}-{int(time.time()) % 100000}")
    ap.add_argument("--workdir", default=None, help="cache and scratch files (default: a new temporary folder)")
    ap.add_argument("--many-files", type=int, default=260, help="files in the one-call upload_folder step")
    args = ap.parse_args(argv)
    if not args.token or not args.bob_token:
        ap.error("--token and --bob-token (or SCENARIO_TOKEN and SCENARIO_BOB_TOKEN) are required")
    return args


ARGS = parse_args(sys.argv[1:])
WORK = Path(ARGS.workdir or tempfile.mkdtemp(prefix="hf-scenario-")).resolve()
WORK.mkdir(parents=True, exist_ok=True)
# The client reads its environment at import time: isolate it from the machine's token, cache and telemetry.
for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "HUGGINGFACE_CO_STAGING", "HF_HUB_CACHE"):
    os.environ.pop(var, None)
os.environ.update(
    HF_ENDPOINT=ARGS.endpoint.rstrip("/"),
    HF_HOME=str(WORK / "hf-home"),
    HF_HUB_DISABLE_TELEMETRY="1",
    HF_HUB_DISABLE_UPDATE_CHECK="1",
    HF_HUB_DISABLE_PROGRESS_BARS="1",
    HF_HUB_DISABLE_IMPLICIT_TOKEN="1",
)

import huggingface_hub as hf  # noqa: E402
from huggingface_hub import (  # noqa: E402
    CommitOperationAdd,
    CommitOperationCopy,
    CommitOperationDelete,
    HfApi,
    get_hf_file_metadata,
    hf_hub_download,
    hf_hub_url,
    snapshot_download,
)

try:  # 0.24+
    from huggingface_hub import errors as hf_errors
except ImportError:  # 0.21
    from huggingface_hub import utils as hf_errors  # type: ignore[no-redef]

HfHubHTTPError = hf_errors.HfHubHTTPError
RepositoryNotFoundError = hf_errors.RepositoryNotFoundError
RevisionNotFoundError = hf_errors.RevisionNotFoundError
EntryNotFoundError = hf_errors.EntryNotFoundError

VERSION = tuple(int(x) for x in hf.__version__.split(".")[:2])
E = ARGS.endpoint.rstrip("/")
P = ARGS.prefix
ORG = ARGS.org
CACHE = WORK / "cache"
api = HfApi(endpoint=E, token=ARGS.token)
bob = HfApi(endpoint=E, token=ARGS.bob_token)
anon = HfApi(endpoint=E, token=False)  # type: ignore[arg-type]
S: dict[str, Any] = {}  # what earlier steps made, for later steps


# ---- helpers -------------------------------------------------------------------------------------------------
def status_of(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def raises(exc_type: type[BaseException] | tuple[type[BaseException], ...], fn: Callable[..., Any], *a: Any, **kw: Any):
    """Call ``fn``; it must raise ``exc_type``. Returns the exception."""
    try:
        fn(*a, **kw)
    except exc_type as e:
        return e
    except Exception as e:  # the message says what came instead
        raise ScenarioError(f"{getattr(fn, '__name__', fn)} raised {type(e).__name__}: {e}, not {exc_type}") from e
    raise ScenarioError(f"{getattr(fn, '__name__', fn)} did not raise {exc_type}")


def http(method: str, path: str, token: str | None = None, headers: dict[str, str] | None = None):
    """A raw request (stdlib only, so every version's venv has it): (status, headers, body)."""
    req = urllib.request.Request(E + path, method=method, headers=dict(headers or {}))
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers, r.read()  # headers: case-insensitive
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def is_sha(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 40 and all(c in "0123456789abcdef" for c in value)


def files_of(repo_id: str, repo_type: str | None = None, revision: str | None = None) -> set[str]:
    return set(api.list_repo_files(repo_id, repo_type=repo_type, revision=revision))


def head(repo_id: str, repo_type: str | None = None, revision: str | None = None) -> str:
    sha = api.repo_info(repo_id, repo_type=repo_type, revision=revision).sha
    expect(is_sha(sha), f"repo_info({repo_id}).sha is not a commit sha: {sha!r}")
    return sha


def download(repo_id: str, filename: str, **kw: Any) -> Path:
    kw.setdefault("cache_dir", str(CACHE))
    kw.setdefault("endpoint", E)
    kw.setdefault("token", ARGS.token)
    return Path(hf_hub_download(repo_id, filename, **kw))


def snapshot(repo_id: str, **kw: Any) -> Path:
    kw.setdefault("cache_dir", str(CACHE))
    kw.setdefault("endpoint", E)
    kw.setdefault("token", ARGS.token)
    return Path(snapshot_download(repo_id, **kw))


def is_private(repo_id: str, repo_type: str | None = None) -> bool:
    return bool(api.repo_info(repo_id, repo_type=repo_type).private)


def set_private(repo_id: str, private: bool, repo_type: str | None = None) -> str:
    """``update_repo_settings`` where it exists (≥ 0.25), else 0.21's ``update_repo_visibility`` (reads the JSON)."""
    if hasattr(api, "update_repo_settings"):
        if VERSION >= (1, 8):
            api.update_repo_settings(repo_id, visibility="private" if private else "public", repo_type=repo_type)
            return "update_repo_settings(visibility=...)"
        api.update_repo_settings(repo_id, private=private, repo_type=repo_type)
        return "update_repo_settings(private=...)"
    out = api.update_repo_visibility(repo_id, private=private, repo_type=repo_type)
    expect(isinstance(out, dict) and out.get("private") is private, f"update_repo_visibility returned {out!r}")
    return "update_repo_visibility"


# ---- accounts ------------------------------------------------------------------------------------------------
@step
def step_whoami() -> dict[str, Any]:
    me = api.whoami()
    expect(me["name"] == "alice", f"whoami name: {me.get('name')!r}")
    expect(me["type"] == "user", f"whoami type: {me.get('type')!r}")
    orgs = {o["name"]: o for o in me["orgs"]}
    expect(ORG in orgs, f"whoami orgs {sorted(orgs)} lack {ORG}")
    expect(orgs[ORG].get("roleInOrg") == "write", f"role in {ORG}: {orgs[ORG].get('roleInOrg')!r}")
    expect(me["auth"]["accessToken"]["role"] == "write", f"token role: {me['auth']!r}")
    return {"name": me["name"], "orgs": sorted(orgs)}


@step
def step_whoami_unauthorized() -> dict[str, Any]:
    # 0.21 re-raises a plain requests.HTTPError ("Invalid user token"), newer clients an HfHubHTTPError.
    whoami_error = HfHubHTTPError if VERSION >= (0, 22) else HfHubHTTPError.__mro__[1]
    e = raises(whoami_error, HfApi(endpoint=E, token="hf_not_a_valid_token_000000000000").whoami)
    expect(status_of(e) == 401, f"bad token: status {status_of(e)}")
    status, _, body = http("GET", "/api/whoami-v2")
    expect(status == 401, f"no token: status {status}")
    expect("error" in json.loads(body), f"no token: body {body!r}")
    return {"bad_token": 401, "no_token": status}


# ---- repositories --------------------------------------------------------------------------------------------
@step
def step_create_repos() -> dict[str, Any]:
    S["model"] = f"alice/{P}-model"
    S["dataset"] = f"alice/{P}-data"
    S["space"] = f"alice/{P}-space"
    S["private"] = f"alice/{P}-private"
    url = api.create_repo(S["model"])
    expect(url.repo_id == S["model"], f"model url {url!r} (repo_id {url.repo_id!r})")
    expect(str(url).startswith(E), f"model url {url!r} is not under {E}")
    url = api.create_repo(f"{P}-data", repo_type="dataset")  # no namespace: the token's user
    expect(url.repo_id == S["dataset"] and url.repo_type == "dataset", f"dataset url {url!r}")
    url = api.create_repo(S["space"], repo_type="space", space_sdk="gradio")
    expect(url.repo_id == S["space"] and url.repo_type == "space", f"space url {url!r}")
    api.create_repo(S["private"], private=True)
    expect(is_private(S["private"]), "private=True did not make a private repo")
    expect(not is_private(S["model"]), "a repo created without private=True is private")
    return {"created": [S["model"], S["dataset"], S["space"], S["private"]]}


@step
def step_create_repo_exist_ok() -> dict[str, Any]:
    url = api.create_repo(S["model"], exist_ok=True)  # the 409 body's url is read
    expect(url.repo_id == S["model"], f"exist_ok url {url!r}")
    url = api.create_repo(S["space"], repo_type="space", space_sdk="gradio", exist_ok=True)
    expect(url.repo_id == S["space"], f"exist_ok space url {url!r}")
    e = raises(HfHubHTTPError, api.create_repo, S["model"])
    expect(status_of(e) == 409, f"second create: status {status_of(e)}")
    return {"second_create": 409}


@step
def step_repo_info() -> dict[str, Any]:
    import datetime as dt

    m = api.model_info(S["model"])
    expect(m.id == S["model"] and is_sha(m.sha), f"model_info id/sha: {m.id!r} {m.sha!r}")
    expect(m.private is False and m.likes == 0 and isinstance(m.tags, list), "model_info private/likes/tags")
    expect(isinstance(m.last_modified, dt.datetime), f"last_modified: {m.last_modified!r}")
    expect([s.rfilename for s in m.siblings] == [".gitattributes"], f"siblings {m.siblings!r}")
    d = api.dataset_info(S["dataset"])
    expect(d.id == S["dataset"] and is_sha(d.sha) and d.private is False, f"dataset_info {d!r}")
    expect(isinstance(d.last_modified, dt.datetime) and isinstance(d.tags, list), "dataset_info keys")
    expect(d.likes == 0 and [s.rfilename for s in d.siblings] == [".gitattributes"], f"dataset_info {d!r}")
    sp = api.space_info(S["space"])
    expect(sp.id == S["space"] and is_sha(sp.sha) and sp.sdk == "gradio", f"space_info {sp!r}")
    expect(isinstance(sp.last_modified, dt.datetime), "space_info last_modified")
    expect({"README.md", ".gitattributes"} <= {s.rfilename for s in sp.siblings}, f"space siblings {sp.siblings}")
    expect(getattr(sp, "subdomain", None) == f"alice-{P}-space".lower(), f"subdomain {getattr(sp, 'subdomain', None)}")
    host = getattr(sp, "host", None)
    expect(isinstance(host, str) and host.startswith("http"), f"host {host!r}")
    expect(sp.runtime is not None and isinstance(sp.runtime.stage, str), f"runtime {sp.runtime!r}")
    r = api.repo_info(S["space"], repo_type="space")
    expect(type(r).__name__ == "SpaceInfo" and r.id == S["space"], f"repo_info(space) {type(r).__name__}")
    r = api.repo_info(S["dataset"], repo_type="dataset", revision="main")
    expect(r.sha == d.sha, "repo_info(revision=main)")
    return {"model_sha": m.sha, "space_stage": sp.runtime.stage, "host": host}


@step
def step_visibility() -> dict[str, Any]:
    via = set_private(S["dataset"], True, repo_type="dataset")
    expect(is_private(S["dataset"], "dataset"), f"{via}: still public")
    set_private(S["dataset"], False, repo_type="dataset")
    expect(not is_private(S["dataset"], "dataset"), f"{via}: still private")
    return {"via": via}


@step
def step_list_repos() -> dict[str, Any]:
    models = list(api.list_models(author="alice", search=P, limit=50))
    ids = {m.id for m in models}
    expect({S["model"], S["private"]} <= ids, f"list_models(author, search) = {sorted(ids)}")
    expect(all(m.id.startswith("alice/") and P in m.id for m in models), f"search/author filter leaked: {ids}")
    expect(len(list(api.list_models(author="alice", search=P, limit=1))) == 1, "limit=1")
    datasets = {d.id for d in api.list_datasets(author="alice", search=P, limit=50)}
    expect(S["dataset"] in datasets, f"list_datasets = {datasets}")
    spaces = list(api.list_spaces(author="alice", search=P, limit=50))
    expect(S["space"] in {s.id for s in spaces}, f"list_spaces = {[s.id for s in spaces]}")
    expect(all(s.sdk == "gradio" and s.private is False and s.likes == 0 for s in spaces), "list_spaces items")
    api.create_repo(f"{P}-data2", repo_type="dataset")
    expect(len(list(api.list_datasets(author="alice", search=P, limit=1))) == 1, "list_datasets limit=1")
    expect(len(list(api.list_datasets(author="alice", search=P))) == 2, "list_datasets without limit")
    expect(len(list(api.list_spaces(author="alice", search=P, limit=1))) == 1, "list_spaces limit=1")
    expect(not list(api.list_models(author="alice", search=f"{P}-nothing-matches")), "search for nothing")
    return {"models": len(models), "spaces": len(spaces)}


# ---- commits -------------------------------------------------------------------------------------------------
@step
def step_upload_file() -> dict[str, Any]:
    src = WORK / "hello.txt"
    src.write_bytes(b"hello from a path\n")
    info = api.upload_file(path_or_fileobj=str(src), path_in_repo="hello.txt", repo_id=S["model"])
    expect(is_sha(info.oid) and info.commit_url.endswith(info.oid), f"CommitInfo {info!r}")
    api.upload_file(path_or_fileobj=b"A", path_in_repo="data/a.txt", repo_id=S["model"], commit_message="add a")
    api.upload_file(path_or_fileobj=b"print('hi')\n", path_in_repo="app.py", repo_id=S["space"], repo_type="space")
    expect(files_of(S["model"]) == {".gitattributes", "hello.txt", "data/a.txt"}, f"files {files_of(S['model'])}")
    expect("app.py" in files_of(S["space"], "space"), "space upload")
    return {"commit": info.oid}


@step
def step_readme_upload() -> dict[str, Any]:
    readme = b"---\nlicense: mit\ntags:\n- compat\n- scenario\n---\n# Model\n"
    api.upload_file(path_or_fileobj=readme, path_in_repo="README.md", repo_id=S["model"])  # calls validate-yaml
    m = api.model_info(S["model"])
    expect({"compat", "scenario"} <= set(m.tags), f"tags from the card: {m.tags}")
    bad = b"---\nsdk: not-an-sdk\n---\n"
    e = raises(
        (ValueError, HfHubHTTPError),
        api.upload_file,
        path_or_fileobj=bad,
        path_in_repo="README.md",
        repo_id=S["space"],
        repo_type="space",
    )
    expect("sdk" in str(e), f"invalid Space metadata: {e}")
    return {"tags": sorted(m.tags)}


@step
def step_upload_folder() -> dict[str, Any]:
    api.upload_file(path_or_fileobj=b"old", path_in_repo="old.tmp", repo_id=S["model"])
    api.upload_file(path_or_fileobj=b"old", path_in_repo="sub/older.tmp", repo_id=S["model"])
    folder = WORK / "folder"
    (folder / "sub" / "deep").mkdir(parents=True)
    (folder / "top.txt").write_bytes(b"top")
    (folder / "sub" / "x.txt").write_bytes(b"x")
    (folder / "sub" / "y.txt").write_bytes(b"y")
    (folder / "sub" / "deep" / "z.txt").write_bytes(b"z")
    (folder / "trash").mkdir()
    (folder / "trash" / "t1.txt").write_bytes(b"t1")
    (folder / "trash" / "t2.txt").write_bytes(b"t2")
    (folder / "folderX").mkdir()
    (folder / "folderX" / "f.txt").write_bytes(b"f")
    info = api.upload_folder(folder_path=str(folder), repo_id=S["model"], delete_patterns=["*.tmp"])
    expect(info is not None, "upload_folder returned nothing")
    files = files_of(S["model"])
    expect("old.tmp" not in files and "sub/older.tmp" not in files, f"delete_patterns left {files}")
    want = {"top.txt", "sub/x.txt", "sub/y.txt", "sub/deep/z.txt", "trash/t1.txt", "folderX/f.txt", "hello.txt"}
    expect(want <= files, f"upload_folder files: {files}")
    return {"files": len(files)}


@step
def step_create_commit() -> dict[str, Any]:
    ops = [
        CommitOperationAdd(path_in_repo="ops/new.txt", path_or_fileobj=b"new"),
        CommitOperationDelete(path_in_repo="hello.txt"),
        CommitOperationDelete(path_in_repo="trash/"),
        CommitOperationCopy(src_path_in_repo="data/a.txt", path_in_repo="data/a-copy.txt"),
    ]
    info = api.create_commit(S["model"], ops, commit_message="ops", commit_description="add, delete, copy")
    files = files_of(S["model"])
    expect("ops/new.txt" in files and "data/a-copy.txt" in files, f"add/copy missing: {files}")
    expect("hello.txt" not in files and not any(f.startswith("trash/") for f in files), f"deletes left: {files}")
    got = download(S["model"], "data/a-copy.txt", revision=info.oid).read_bytes()
    expect(got == b"A", f"copied content {got!r}")
    return {"commit": info.oid}


@step
def step_delete_file_and_folder() -> dict[str, Any]:
    api.delete_file("top.txt", repo_id=S["model"])
    api.delete_folder("folderX", repo_id=S["model"])
    files = files_of(S["model"])
    expect("top.txt" not in files and not any(f.startswith("folderX/") for f in files), f"left: {files}")
    e = raises(
        EntryNotFoundError if VERSION >= (0, 22) else HfHubHTTPError, api.delete_file, "nope.txt", repo_id=S["model"]
    )
    expect(status_of(e) == 404, f"deleting a missing file: status {status_of(e)}")
    return {"files": len(files)}


@step
def step_stale_parent_commit() -> dict[str, Any]:
    old = head(S["model"])
    api.upload_file(path_or_fileobj=b"moves the branch", path_in_repo="ops/moved.txt", repo_id=S["model"])
    new = head(S["model"])
    e = raises(
        HfHubHTTPError,
        api.create_commit,
        S["model"],
        [CommitOperationAdd(path_in_repo="ops/stale.txt", path_or_fileobj=b"stale")],
        commit_message="stale",
        parent_commit=old,
    )
    expect(status_of(e) == 412, f"stale parent_commit: status {status_of(e)}")
    expect(head(S["model"]) == new, "the branch moved after a refused commit")
    expect("ops/stale.txt" not in files_of(S["model"]), "a refused commit wrote its file")
    info = api.create_commit(
        S["model"],
        [CommitOperationAdd(path_in_repo="ops/fresh.txt", path_or_fileobj=b"f")],
        commit_message="fresh",
        parent_commit=new,
    )
    expect(is_sha(info.oid), "a commit on the current parent failed")
    return {"refused": 412}


# ---- reading a repo ------------------------------------------------------------------------------------------
@step
def step_list_repo_tree() -> dict[str, Any]:
    entries = list(api.list_repo_tree(S["model"], recursive=True))
    by_path = {e.path: e for e in entries}
    expect(type(by_path["sub"]).__name__ == "RepoFolder", f"sub is {type(by_path.get('sub'))}")
    expect(type(by_path["sub/deep"]).__name__ == "RepoFolder", "sub/deep is not a folder")
    x = by_path["sub/x.txt"]
    expect(type(x).__name__ == "RepoFile" and x.size == 1 and x.blob_id == git_sha1(b"x"), f"sub/x.txt: {x!r}")
    top = {e.path for e in api.list_repo_tree(S["model"])}
    expect("sub" in top and "sub/x.txt" not in top, f"non-recursive root: {top}")
    sub = {e.path: type(e).__name__ for e in api.list_repo_tree(S["model"], path_in_repo="sub")}
    expect(sub == {"sub/x.txt": "RepoFile", "sub/y.txt": "RepoFile", "sub/deep": "RepoFolder"}, f"sub: {sub}")
    deep = [e.path for e in api.list_repo_tree(S["model"], path_in_repo="sub/deep", recursive=True)]
    expect(deep == ["sub/deep/z.txt"], f"sub/deep: {deep}")
    expanded = [e for e in api.list_repo_tree(S["model"], path_in_repo="sub", expand=True) if e.path == "sub/x.txt"]
    expect(expanded and expanded[0].last_commit is not None, f"expand=True: {expanded}")
    expect(is_sha(getattr(expanded[0].last_commit, "oid", None)), f"last_commit {expanded[0].last_commit!r}")
    e = raises(
        EntryNotFoundError if VERSION >= (0, 22) else HfHubHTTPError,
        lambda: list(api.list_repo_tree(S["model"], path_in_repo="no/such/dir")),
    )
    expect(status_of(e) == 404, f"tree of a missing folder: {status_of(e)}")
    return {"entries": len(entries)}


@step
def step_get_paths_info() -> dict[str, Any]:
    infos = api.get_paths_info(S["model"], ["sub", "data/a.txt", "missing.txt"])
    got = {i.path: type(i).__name__ for i in infos}
    expect(got == {"sub": "RepoFolder", "data/a.txt": "RepoFile"}, f"paths-info: {got}")
    a = next(i for i in infos if i.path == "data/a.txt")
    expect(a.size == 1 and a.blob_id == git_sha1(b"A"), f"data/a.txt: {a!r}")
    infos = api.get_paths_info(S["model"], ["data/a.txt"], expand=True)
    expect(infos[0].last_commit is not None, "paths-info expand=True has no last_commit")
    return {"paths": sorted(got)}


@step
def step_branches_and_tags() -> dict[str, Any]:
    api.create_branch(S["model"], branch="dev")
    api.create_branch(S["model"], branch="dev", exist_ok=True)
    e = raises(HfHubHTTPError, api.create_branch, S["model"], branch="dev")
    expect(status_of(e) == 409, f"existing branch: status {status_of(e)}")
    api.upload_file(path_or_fileobj=b"dev only", path_in_repo="dev.txt", repo_id=S["model"], revision="dev")
    S["main_sha"] = head(S["model"])
    S["dev_sha"] = head(S["model"], revision="dev")
    api.create_tag(S["model"], tag="v1", tag_message="first release")
    api.create_tag(S["model"], tag="v1-dev", revision="dev")
    e = raises(HfHubHTTPError, api.create_tag, S["model"], tag="v1")
    expect(status_of(e) == 409, f"existing tag: status {status_of(e)}")
    refs = api.list_repo_refs(S["model"])
    branches = {b.name: b.target_commit for b in refs.branches}
    tags = {t.name: t.target_commit for t in refs.tags}
    expect(branches == {"main": S["main_sha"], "dev": S["dev_sha"]}, f"branches {branches}")
    expect(tags == {"v1": S["main_sha"], "v1-dev": S["dev_sha"]}, f"tags {tags}")
    expect("dev.txt" in files_of(S["model"], revision="dev") and "dev.txt" not in files_of(S["model"]), "branch files")
    return {"branches": sorted(branches), "tags": sorted(tags)}


@step
def step_list_repo_commits() -> dict[str, Any]:
    commits = list(api.list_repo_commits(S["model"]))
    expect(commits[0].commit_id == S["main_sha"], f"newest first: {commits[0].commit_id} != {S['main_sha']}")
    expect(commits[-1].title == "initial commit", f"oldest: {commits[-1].title!r}")
    titles = [c.title for c in commits]
    expect("ops" in titles and "add a" in titles, f"titles {titles}")
    expect(all(c.authors for c in commits) and "alice" in commits[0].authors, f"authors {commits[0].authors}")
    dev = list(api.list_repo_commits(S["model"], revision="dev"))
    expect(dev[0].commit_id == S["dev_sha"] and len(dev) == len(commits) + 1, "dev history")
    e = raises(RevisionNotFoundError, lambda: list(api.list_repo_commits(S["model"], revision="no-such-branch")))
    return {"commits": len(commits), "missing_revision": type(e).__name__}


@step
def step_exists_helpers() -> dict[str, Any]:
    expect(api.repo_exists(S["model"]) and not api.repo_exists(f"alice/{P}-nope"), "repo_exists")
    expect(api.repo_exists(S["space"], repo_type="space"), "repo_exists(space)")
    expect(api.file_exists(S["model"], "data/a.txt") and not api.file_exists(S["model"], "nope.txt"), "file_exists")
    expect(api.file_exists(S["model"], "dev.txt", revision="dev"), "file_exists(revision=dev)")
    expect(api.revision_exists(S["model"], "dev") and api.revision_exists(S["model"], "v1"), "revision_exists")
    expect(not api.revision_exists(S["model"], "nope"), "revision_exists(nope)")
    return {}


# ---- downloads -----------------------------------------------------------------------------------------------
@step
def step_hf_hub_download() -> dict[str, Any]:
    for rev in ("main", "v1", S["main_sha"]):
        path = download(S["model"], "data/a.txt", revision=rev)
        expect(path.read_bytes() == b"A", f"data/a.txt at {rev}: {path.read_bytes()!r}")
    expect(download(S["model"], "dev.txt", revision="dev").read_bytes() == b"dev only", "dev.txt at dev")
    expect(download(S["model"], "dev.txt", revision="v1-dev").read_bytes() == b"dev only", "dev.txt at v1-dev")
    expect(download(S["model"], "sub/deep/z.txt").read_bytes() == b"z", "a nested file")
    expect(download(S["space"], "app.py", repo_type="space").read_bytes() == b"print('hi')\n", "space file")
    return {}


@step
def step_download_uses_cache() -> dict[str, Any]:
    first = download(S["model"], "sub/x.txt", revision="main")
    blob = first.resolve()
    before = blob.stat()
    second = download(S["model"], "sub/x.txt", revision="main")
    after = blob.stat()
    expect(
        second == first and (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns),
        "the second download wrote the file again",
    )
    # A cached file at a commit sha needs no network at all: a dead endpoint must not matter.
    cached = download(S["model"], "sub/x.txt", revision=S["main_sha"], endpoint="http://127.0.0.1:9")
    expect(cached.read_bytes() == b"x", "cached download by sha")
    return {"blob": blob.name}


@step
def step_file_metadata() -> dict[str, Any]:
    url = hf_hub_url(S["model"], "data/a.txt", revision="v1", endpoint=E)
    meta = get_hf_file_metadata(url, token=ARGS.token)
    expect(meta.commit_hash == S["main_sha"], f"commit_hash {meta.commit_hash}")
    expect(meta.etag == git_sha1(b"A"), f"etag {meta.etag}")
    expect(meta.size == 1, f"size {meta.size}")
    return {"etag": meta.etag}


@step
def step_range_request() -> dict[str, Any]:
    status, headers, body = http("GET", f"/{S['model']}/resolve/main/README.md", headers={"Range": "bytes=4-10"})
    total = len(b"---\nlicense: mit\ntags:\n- compat\n- scenario\n---\n# Model\n")
    expect(status == 206, f"Range: status {status}")
    expect(headers.get("Content-Range") == f"bytes 4-10/{total}", f"Content-Range {headers.get('Content-Range')}")
    expect(body == b"license", f"range body {body!r}")
    return {"http_status": status}


@step
def step_download_errors() -> dict[str, Any]:
    e1 = raises(RepositoryNotFoundError, download, f"alice/{P}-nope", "x.txt")
    e2 = raises(RevisionNotFoundError, download, S["model"], "data/a.txt", revision="no-such-rev")
    e3 = raises(EntryNotFoundError, download, S["model"], "no/such/file.txt")
    return {"repo": type(e1).__name__, "revision": type(e2).__name__, "entry": type(e3).__name__}


@step
def step_snapshot_download() -> dict[str, Any]:
    out = {}
    for rev in ("main", "v1", S["main_sha"], "dev"):
        root = snapshot(S["model"], revision=rev)
        files = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
        expect(files == files_of(S["model"], revision=rev), f"snapshot at {rev}: {sorted(files)}")
        expect((root / "sub" / "deep" / "z.txt").read_bytes() == b"z", f"snapshot content at {rev}")
        out[rev[:8]] = len(files)
    root = snapshot(S["space"], repo_type="space")
    expect((root / "app.py").exists() and (root / "README.md").exists(), "space snapshot")
    return out


@step
def step_delete_branch_and_tag() -> dict[str, Any]:
    api.create_branch(S["model"], branch="tmp-branch")
    api.create_tag(S["model"], tag="tmp-tag")
    api.delete_branch(S["model"], branch="tmp-branch")
    api.delete_tag(S["model"], tag="tmp-tag")
    refs = api.list_repo_refs(S["model"])
    expect(
        "tmp-branch" not in {b.name for b in refs.branches} and "tmp-tag" not in {t.name for t in refs.tags},
        "deleted refs are still listed",
    )
    expect(not api.revision_exists(S["model"], "tmp-branch"), "revision_exists after delete_branch")
    raises(
        RevisionNotFoundError if VERSION >= (0, 22) else HfHubHTTPError,
        api.delete_branch,
        S["model"],
        branch="tmp-branch",
    )
    raises(HfHubHTTPError, api.delete_branch, S["model"], branch="main")
    return {}


# ---- private repos -------------------------------------------------------------------------------------------
@step
def step_private_repos() -> dict[str, Any]:
    repo = S["private"]
    api.upload_file(path_or_fileobj=b"secret", path_in_repo="secret.txt", repo_id=repo)
    expect(api.model_info(repo).private is True, "owner cannot see the private repo")
    expect(download(repo, "secret.txt").read_bytes() == b"secret", "owner download")
    expect(repo in {m.id for m in api.list_models(author="alice", search=P)}, "owner listing")
    checked = []
    for who, client, token in (("anonymous", anon, False), ("bob", bob, ARGS.bob_token)):
        raises(RepositoryNotFoundError, client.model_info, repo)
        expect(repo not in {m.id for m in client.list_models(author="alice", search=P)}, f"{who} lists it")
        raises(RepositoryNotFoundError, lambda c=client: list(c.list_repo_tree(repo)))
        raises(RepositoryNotFoundError, client.get_paths_info, repo, ["secret.txt"])
        raises(RepositoryNotFoundError, client.list_repo_refs, repo)
        raises(RepositoryNotFoundError, lambda c=client: list(c.list_repo_commits(repo)))
        raises(RepositoryNotFoundError, download, repo, "secret.txt", token=token, cache_dir=str(WORK / f"c-{who}"))
        expect(not client.repo_exists(repo), f"repo_exists for {who}")
        checked.append(who)
    status, headers, _ = http("GET", f"/{repo}/resolve/main/secret.txt")
    expect(status == 404 and headers.get("X-Error-Code") == "RepoNotFound", f"raw resolve: {status} {dict(headers)}")
    e = raises(HfHubHTTPError, bob.upload_file, path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo)
    expect(status_of(e) == 404, f"bob writing: status {status_of(e)}")
    return {"hidden_from": checked}


# ---- organizations -------------------------------------------------------------------------------------------
@step
def step_orgs() -> dict[str, Any]:
    repo = f"{ORG}/{P}-org"
    url = api.create_repo(repo, private=True)
    expect(url.repo_id == repo, f"org repo url {url!r}")
    api.upload_file(path_or_fileobj=b"team", path_in_repo="team.txt", repo_id=repo)
    expect(bob.model_info(repo).private is True, "a read member cannot see the org's private repo")
    e = raises(HfHubHTTPError, bob.create_repo, f"{ORG}/{P}-by-bob")
    expect(status_of(e) == 403, f"read member create_repo: status {status_of(e)}")
    url = bob.create_repo(repo, exist_ok=True)  # 403, then the client finds the repo with repo_info
    expect(url.repo_id == repo, f"read member create_repo(exist_ok=True) = {url!r}")
    e = raises(HfHubHTTPError, bob.upload_file, path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo)
    expect(status_of(e) == 403, f"read member upload: status {status_of(e)}")
    e = raises(HfHubHTTPError, api.create_repo, f"bob/{P}-by-alice")
    expect(status_of(e) == 403, f"create under another user: status {status_of(e)}")
    raises(RepositoryNotFoundError, anon.model_info, repo)
    return {"org_repo": repo}


# ---- moving and deleting -------------------------------------------------------------------------------------
@step
def step_move_repo() -> dict[str, Any]:
    new = f"alice/{P}-data-moved"
    api.move_repo(from_id=S["dataset"], to_id=new, repo_type="dataset")
    info = api.dataset_info(new)
    expect(info.id == new, f"moved dataset id {info.id}")
    S["dataset"] = new
    expect(S["dataset"] in {d.id for d in api.list_datasets(author="alice", search=P)}, "moved repo not listed")
    return {"to": new}


@step
def step_delete_repo() -> dict[str, Any]:
    api.delete_repo(S["space"], repo_type="space")
    expect(not api.repo_exists(S["space"], repo_type="space"), "deleted space still exists")
    api.delete_repo(S["space"], repo_type="space", missing_ok=True)
    raises(RepositoryNotFoundError, api.delete_repo, S["space"], repo_type="space")
    raises(RepositoryNotFoundError, api.space_info, S["space"])
    return {"deleted": S["space"]}


@step
def step_upload_many_files() -> dict[str, Any]:
    n = ARGS.many_files
    folder = WORK / "many"
    for i in range(n):
        (folder / f"d{i % 7}").mkdir(parents=True, exist_ok=True)
        (folder / f"d{i % 7}" / f"f{i:04d}.txt").write_text(f"file {i}\n")
    before = len(list(api.list_repo_commits(S["dataset"], repo_type="dataset")))
    api.upload_folder(folder_path=str(folder), repo_id=S["dataset"], repo_type="dataset", commit_message="many")
    files = files_of(S["dataset"], "dataset")
    expect(len([f for f in files if f.endswith(".txt")]) == n, f"{len(files)} files arrived, not {n}")
    commits = len(list(api.list_repo_commits(S["dataset"], repo_type="dataset"))) - before
    got = download(S["dataset"], f"d3/f{3:04d}.txt", repo_type="dataset").read_text()
    expect(got == "file 3\n", f"content {got!r}")
    return {"files": n, "commits": commits}


# ---- LFS (0.21 goes through the LFS batch API; newer clients upload inline and the server stores LFS) ------------
LFS_DATA = bytes(range(256)) * 64 + b"\x00spacehub-lfs\x00"


@step
def step_lfs_upload() -> dict[str, Any]:
    info = api.upload_file(path_or_fileobj=LFS_DATA, path_in_repo="weights/model.bin", repo_id=S["model"])
    S["lfs_sha"] = info.oid
    api.create_tag(S["model"], tag="v-lfs")
    files = files_of(S["model"])
    expect("weights/model.bin" in files, f"files {files}")
    info = api.create_commit(
        S["model"],
        [CommitOperationCopy(src_path_in_repo="weights/model.bin", path_in_repo="weights/copy.bin")],
        commit_message="cp",
    )
    # the same content again: for 0.21 the batch API answers "already stored" (no upload action)
    info = api.upload_file(path_or_fileobj=LFS_DATA, path_in_repo="weights/again.bin", repo_id=S["model"])
    S["lfs_sha"] = info.oid
    expect({"weights/copy.bin", "weights/again.bin"} <= files_of(S["model"]), "copy/again missing")
    return {"size": len(LFS_DATA), "via": "lfs batch" if VERSION < (1, 20) else "inline (stored as LFS)"}


@step
def step_lfs_tree() -> dict[str, Any]:
    sha256 = hashlib.sha256(LFS_DATA).hexdigest()
    for path in ("weights/model.bin", "weights/copy.bin"):
        entry = api.get_paths_info(S["model"], [path])[0]
        expect(entry.lfs is not None, f"{path}: no lfs info in paths-info")
        expect(entry.lfs.sha256 == sha256 and entry.lfs.size == len(LFS_DATA), f"{path} lfs {entry.lfs!r}")
        expect(entry.size == len(LFS_DATA), f"{path} size {entry.size}")
    tree = {e.path: e for e in api.list_repo_tree(S["model"], path_in_repo="weights")}
    expect(tree["weights/model.bin"].lfs is not None, "tree entry without lfs")
    siblings = {s.rfilename: s for s in api.model_info(S["model"], files_metadata=True).siblings}
    lfs = siblings["weights/model.bin"].lfs
    expect(lfs is not None and lfs.sha256 == sha256, f"siblings lfs {lfs!r}")
    expect(siblings["data/a.txt"].lfs is None, "a regular file has lfs info")
    return {"sha256": sha256}


@step
def step_lfs_download() -> dict[str, Any]:
    sha256 = hashlib.sha256(LFS_DATA).hexdigest()
    for rev in ("main", "v-lfs", S["lfs_sha"]):
        path = download(S["model"], "weights/model.bin", revision=rev)
        expect(path.read_bytes() == LFS_DATA, f"LFS content at {rev}")
    expect(download(S["model"], "weights/copy.bin").read_bytes() == LFS_DATA, "copied LFS content")
    expect(download(S["model"], "weights/again.bin").read_bytes() == LFS_DATA, "re-uploaded LFS content")
    blob = download(S["model"], "weights/model.bin").resolve()
    before = blob.stat()
    expect(blob.name == sha256, f"LFS blob in the cache is named {blob.name}, not its sha256")
    download(S["model"], "weights/model.bin")
    expect((before.st_ino, before.st_mtime_ns) == (blob.stat().st_ino, blob.stat().st_mtime_ns), "LFS downloaded twice")
    meta = get_hf_file_metadata(hf_hub_url(S["model"], "weights/model.bin", endpoint=E), token=ARGS.token)
    expect(meta.etag == sha256 and meta.size == len(LFS_DATA), f"LFS metadata etag={meta.etag} size={meta.size}")
    expect(meta.commit_hash == S["lfs_sha"], f"LFS metadata commit {meta.commit_hash}")
    for rev in ("main", "v-lfs", S["lfs_sha"]):
        root = snapshot(S["model"], revision=rev)
        expect((root / "weights" / "model.bin").read_bytes() == LFS_DATA, f"LFS file in the snapshot at {rev}")
    return {"etag": meta.etag}


# ---- issue 11: the other calls, listings, LFS per repository ---------------------------------------------------
@step
def step_hub_calls() -> dict[str, Any]:
    """auth_check (0.24+), typed errors for a missing repo in every form, short shas, repo ids in any case."""
    via = "repo_info"
    if hasattr(api, "auth_check"):
        api.auth_check(S["model"])
        api.auth_check(S["model"], write=True)
        e = raises(HfHubHTTPError, bob.auth_check, S["model"], write=True)
        expect(status_of(e) == 403, f"bob's auth_check(write=True): status {status_of(e)}")
        raises(RepositoryNotFoundError, api.auth_check, "gpt2")
        via = "auth_check"
    for repo_id in ("gpt2", f"alice/{P}-missing"):
        for repo_type in (None, "dataset", "space"):
            raises(RepositoryNotFoundError, api.repo_info, repo_id, repo_type=repo_type)
            raises(RepositoryNotFoundError, api.list_repo_files, repo_id, repo_type=repo_type)
        raises(RepositoryNotFoundError, download, repo_id, "config.json")
        if hasattr(api, "repo_exists"):
            expect(not api.repo_exists(repo_id), f"repo_exists({repo_id}) is true")
    sha = head(S["model"])
    expect(api.repo_info(S["model"], revision=sha[:7]).sha == sha, "a 7-digit sha as revision")
    expect(download(S["model"], "weights/model.bin", revision=sha[:10]).read_bytes() == LFS_DATA, "short-sha download")
    expect(api.model_info(S["model"].upper()).id == S["model"], "the repo id in upper case")
    e = raises(RevisionNotFoundError, api.create_tag, S["model"], tag="t-missing", revision="no-such-branch")
    expect(status_of(e) == 404, f"a tag on a missing revision: status {status_of(e)}")
    return {"via": via}


@step
def step_list_filters() -> dict[str, Any]:
    """list_models/list_spaces with filter, sort, expand (0.24+) and full, as each version sends them."""
    repo = f"alice/{P}-tagged"
    api.create_repo(repo)
    card = f"---\ntags: [{P}-tag, compat]\nlibrary_name: transformers\n---\n# tagged\n".encode()
    api.upload_file(path_or_fileobj=card, path_in_repo="README.md", repo_id=repo)
    found = [m.id for m in api.list_models(filter=f"{P}-tag")]
    expect(found == [repo], f"list_models(filter=tag) = {found}")
    found = [m.id for m in api.list_models(filter=[f"{P}-tag", "transformers"], author="alice")]
    expect(found == [repo], f"list_models(filter=[tag, library]) = {found}")
    expect(not list(api.list_models(filter=[f"{P}-tag", "nothing-else"])), "filters are all required")
    newest = [m.id for m in api.list_models(author="alice", search=P, sort="lastModified", limit=2)]
    expect(newest[0] == repo, f"sort=lastModified: {newest}")
    (full,) = list(api.list_models(filter=f"{P}-tag", full=True))
    expect({x.rfilename for x in full.siblings or []} == {".gitattributes", "README.md"}, f"full: {full.siblings}")
    via = "filter, sort, full"
    if VERSION >= (0, 24):
        (item,) = list(api.list_models(filter=f"{P}-tag", expand=["tags", "likes"]))
        expect(item.likes == 0 and f"{P}-tag" in (item.tags or []) and item.downloads is None, f"expand: {item}")
        via += ", expand"
    api.create_repo(f"alice/{P}-static", repo_type="space", space_sdk="static")
    spaces = [x.id for x in api.list_spaces(filter="static", author="alice", search=P)]
    expect(spaces == [f"alice/{P}-static"], f"list_spaces(filter=static) = {spaces}")  # the sdk is a tag
    expect(not list(api.list_spaces(filter="gradio", author="alice", search=P)), "list_spaces(filter=gradio)")
    return {"via": via}


@step
def step_lfs_per_repo() -> dict[str, Any]:
    """The same bytes in another repo upload again (0.21's LFS batch API asks for them: the object is not that
    repo's), and a pointer to an object of alice's does not get into bob's repo."""
    other = f"alice/{P}-lfs2"
    api.create_repo(other)
    api.upload_file(path_or_fileobj=LFS_DATA, path_in_repo="w.bin", repo_id=other)
    expect(download(other, "w.bin").read_bytes() == LFS_DATA, "the same object in a second repo")
    thief = f"bob/{P}-thief"
    bob.create_repo(thief)
    sha256 = hashlib.sha256(LFS_DATA).hexdigest()
    pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {len(LFS_DATA)}\n".encode()
    e = raises(HfHubHTTPError, bob.upload_file, path_or_fileobj=pointer, path_in_repo="stolen.txt", repo_id=thief)
    expect(status_of(e) == 400, f"a pointer to another repo's object: status {status_of(e)}")
    expect(set(bob.list_repo_files(thief)) == {".gitattributes"}, "the pointer got in")
    return {"sha256": sha256}


# ---- pull requests -------------------------------------------------------------------------------------------
@step
def step_pull_request() -> dict[str, Any]:
    """bob (no write access) opens a pull request with a commit; alice reads it, comments and merges it."""
    repo = f"alice/{P}-pr"
    api.create_repo(repo)
    ops = [CommitOperationAdd(path_in_repo="bob.txt", path_or_fileobj=b"from bob")]
    info = bob.create_commit(repo, ops, commit_message="Add bob.txt", create_pr=True)
    expect(str(info.pr_url).endswith(f"/{repo}/discussions/1"), f"pr_url {info.pr_url!r}")
    expect("bob.txt" not in files_of(repo), "the pull request wrote to main")
    expect("bob.txt" in files_of(repo, revision="refs/pr/1"), "bob.txt missing at refs/pr/1")
    listed = [(d.num, d.is_pull_request, d.author, d.status) for d in api.get_repo_discussions(repo)]
    expect(listed == [(1, True, "bob", "open")], f"discussions {listed}")
    details = api.get_discussion_details(repo, 1)
    expect(details.target_branch == "refs/heads/main" and details.conflicting_files == [], f"details {details}")
    api.comment_discussion(repo, 1, "Looks good")
    e = raises(HfHubHTTPError, bob.merge_pull_request, repo, 1)
    expect(status_of(e) == 403, f"bob merging: status {status_of(e)}")
    api.merge_pull_request(repo, 1)
    merged = api.get_discussion_details(repo, 1)
    expect(merged.status == "merged" and merged.merge_commit_oid == head(repo), f"after the merge: {merged.status}")
    expect("bob.txt" in files_of(repo), "bob.txt is not on main after the merge")
    return {"merge": merged.merge_commit_oid}


@step
def step_likes() -> dict[str, Any]:
    """bob likes alice's model (`HfApi.like` where the client has it: ≤ 0.x; 1.x and 2.x dropped it, so a raw POST
    as 0.x sends it), the counts and lists follow, then he unlikes it."""
    repo = S["model"]
    if hasattr(bob, "like"):
        bob.like(repo)
    else:
        status, _, body = http("POST", f"/api/models/{repo}/like", ARGS.bob_token)
        expect(status == 200, f"POST like: {status} {body[:200]!r}")
    expect(api.model_info(repo).likes == 1, f"likes after like: {api.model_info(repo).likes}")
    liked = bob.list_liked_repos()
    expect(liked.user == "bob" and repo in liked.models, f"list_liked_repos {liked}")
    likers = [u.username for u in api.list_repo_likers(repo)]
    expect(likers == ["bob"], f"list_repo_likers {likers}")
    listed = {m.id: m.likes for m in api.list_models(author="alice")}
    expect(listed.get(repo) == 1, f"likes in list_models: {listed.get(repo)}")
    bob.unlike(repo)
    expect(api.model_info(repo).likes == 0 and repo not in bob.list_liked_repos().models, "unlike")
    return {"liked": True}


@step
def step_webhooks() -> dict[str, Any]:
    """create, list, get, update, disable, enable and delete a webhook (clients ≥ 0.22 have them; 1.x sends them to
    HF_ENDPOINT whatever the HfApi's endpoint). Nothing is delivered: the repo it watches changes only after the
    webhook is gone, and this server refuses private addresses, so the URL is a public name."""
    if not hasattr(api, "create_webhook"):
        return {"webhooks": "not in this client"}
    repo = f"alice/{P}-hooked"
    api.create_repo(repo)
    url = "https://hooks.example.com/scenario"
    hook = api.create_webhook(url=url, watched=[{"type": "model", "name": repo}], domains=["repo"], secret="sc-1")
    expect(hook.url == url and hook.domains == ["repo"] and not hook.disabled, f"create_webhook {hook}")
    expect([(w.type, w.name) for w in hook.watched] == [("model", repo)], f"watched {hook.watched}")
    expect(hook.secret is None, "the secret was answered")
    expect(hook.id in [w.id for w in api.list_webhooks()], "list_webhooks")
    expect(api.get_webhook(hook.id).url == url, "get_webhook")
    moved = api.update_webhook(hook.id, url=url + "2", domains=["repo", "discussion"])
    expect(moved.url == url + "2" and [w.name for w in moved.watched] == [repo], f"update_webhook {moved}")
    expect(api.disable_webhook(hook.id).disabled and not api.enable_webhook(hook.id).disabled, "disable/enable")
    e = raises(HfHubHTTPError, bob.get_webhook, hook.id)
    expect(status_of(e) == 404, f"bob reading alice's webhook: {status_of(e)}")
    e = raises(
        HfHubHTTPError, api.create_webhook, url="http://127.0.0.1:9/x", watched=[{"type": "model", "name": repo}]
    )
    expect(status_of(e) == 400, f"a loopback URL: {status_of(e)}")
    api.delete_webhook(hook.id)
    expect(hook.id not in [w.id for w in api.list_webhooks()], "delete_webhook")
    api.delete_repo(repo)
    return {"webhook": hook.id}


def main() -> int:
    print(
        json.dumps({"step": "start", "status": "ok", "version": hf.__version__, "endpoint": E, "prefix": P}), flush=True
    )
    for name, fn in STEPS:
        t0 = time.monotonic()
        try:
            details = fn() or {}
        except Exception as e:  # every failure is reported the same way
            line = {"step": name, "status": "failed", "version": hf.__version__, "error": f"{type(e).__name__}: {e}"}
            print(json.dumps(line), flush=True)
            traceback.print_exc()
            print(
                f"FAILED at step {name!r} with huggingface_hub {hf.__version__}: {type(e).__name__}: {e}",
                file=sys.stderr,
            )
            return 1
        line = {"step": name, "status": "ok", "seconds": round(time.monotonic() - t0, 2), **details}
        print(json.dumps(line, default=str), flush=True)
    print(json.dumps({"step": "done", "status": "ok", "version": hf.__version__, "steps": len(STEPS)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
