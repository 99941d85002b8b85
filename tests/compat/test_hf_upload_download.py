"""huggingface_hub 2.4.0 against the live server: commits (upload_file, upload_folder, create_commit, deletes, LFS)
and downloads (hf_hub_download, snapshot_download, file metadata, ranges, typed errors)."""

from __future__ import annotations

import base64
import hashlib
import io
from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationCopy,
    CommitOperationDelete,
    HfApi,
    get_hf_file_metadata,
    hf_hub_download,
    hf_hub_url,
    snapshot_download,
)
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

BIN = bytes(range(256)) * 40 + b"\x00weights\x00"  # binary, *.bin: an LFS file by the default .gitattributes


def git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def download(server: Any, alice: str, cache_dir: Path) -> Any:
    def run(repo_id: str, filename: str, **kw: Any) -> Path:
        kw.setdefault("endpoint", server.url)
        kw.setdefault("token", alice)
        kw.setdefault("cache_dir", cache_dir)
        return Path(hf_hub_download(repo_id, filename, **kw))

    return run


@pytest.fixture
def snapshot(server: Any, alice: str, cache_dir: Path) -> Any:
    def run(repo_id: str, **kw: Any) -> Path:
        kw.setdefault("endpoint", server.url)
        kw.setdefault("token", alice)
        kw.setdefault("cache_dir", cache_dir)
        return Path(snapshot_download(repo_id, **kw))

    return run


def files_in(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# ---- upload_file ---------------------------------------------------------------------------------------------
def test_upload_file_from_a_path(api: HfApi, repo: str, tmp_path: Path, server: Any) -> None:
    src = tmp_path / "notes.txt"
    src.write_bytes(b"from disk\n")
    info = api.upload_file(path_or_fileobj=str(src), path_in_repo="docs/notes.txt", repo_id=repo)
    assert info.oid == api.model_info(repo).sha
    assert info.commit_url == f"{server.url}/{repo}/commit/{info.oid}"
    assert info.commit_message == "Upload docs/notes.txt with huggingface_hub"
    assert api.get_paths_info(repo, "docs/notes.txt")[0].blob_id == git_sha1(b"from disk\n")


def test_upload_file_from_bytes_and_a_file_object(api: HfApi, repo: str, download: Any) -> None:
    api.upload_file(path_or_fileobj=b"raw bytes", path_in_repo="a.txt", repo_id=repo)
    api.upload_file(path_or_fileobj=io.BytesIO(b"file object"), path_in_repo="b.txt", repo_id=repo)
    assert download(repo, "a.txt").read_bytes() == b"raw bytes"
    assert download(repo, "b.txt").read_bytes() == b"file object"


def test_upload_an_empty_file(api: HfApi, repo: str, download: Any) -> None:
    api.upload_file(path_or_fileobj=b"", path_in_repo="empty.txt", repo_id=repo)
    assert api.get_paths_info(repo, "empty.txt")[0].size == 0
    assert download(repo, "empty.txt").read_bytes() == b""


def test_upload_file_to_a_branch(api: HfApi, repo: str) -> None:
    api.create_branch(repo, branch="dev")
    api.upload_file(path_or_fileobj=b"dev", path_in_repo="dev.txt", repo_id=repo, revision="dev")
    assert "dev.txt" in api.list_repo_files(repo, revision="dev")
    assert "dev.txt" not in api.list_repo_files(repo)


def test_upload_file_to_a_branch_named_by_its_full_ref(api: HfApi, repo: str) -> None:
    api.create_branch(repo, branch="dev")
    info = api.upload_file(path_or_fileobj=b"d", path_in_repo="d.txt", repo_id=repo, revision="refs/heads/dev")
    assert api.list_repo_refs(repo).branches and api.model_info(repo, revision="dev").sha == info.oid
    assert {b.name for b in api.list_repo_refs(repo).branches} == {"main", "dev"}
    assert "d.txt" in api.list_repo_files(repo, revision="dev")


def test_upload_file_to_a_missing_branch_or_repo(api: HfApi, repo: str, unique: str) -> None:
    with pytest.raises(RevisionNotFoundError):
        api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo, revision="no-such-branch")
    with pytest.raises(RepositoryNotFoundError):
        api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=f"alice/{unique}-missing")


def test_upload_of_unchanged_content_makes_no_commit(api: HfApi, repo: str) -> None:
    api.upload_file(path_or_fileobj=b"same", path_in_repo="same.txt", repo_id=repo)
    api.upload_file(path_or_fileobj=BIN, path_in_repo="same.bin", repo_id=repo)
    before = api.model_info(repo).sha
    info = api.upload_file(path_or_fileobj=b"same", path_in_repo="same.txt", repo_id=repo)
    assert info.oid == before  # preupload's oid let the client drop the file
    info = api.upload_file(path_or_fileobj=BIN, path_in_repo="same.bin", repo_id=repo)
    assert info.oid == before  # also for a file the server stored as LFS
    assert len(api.list_repo_commits(repo)) == 3


def test_readme_upload_is_validated(api: HfApi, unique: str) -> None:
    api.create_repo(f"alice/{unique}", repo_type="space", space_sdk="gradio")
    card = b"---\ntitle: Demo\nemoji: \xf0\x9f\x9a\x80\nsdk: streamlit\ntags:\n- demo\n---\n# Demo\n"
    api.upload_file(path_or_fileobj=card, path_in_repo="README.md", repo_id=f"alice/{unique}", repo_type="space")
    info = api.space_info(f"alice/{unique}")
    assert info.sdk == "streamlit" and "demo" in info.tags and info.card_data.title == "Demo"
    with pytest.raises(ValueError, match="sdk"):
        api.upload_file(
            path_or_fileobj=b"---\nsdk: flask\n---\n",
            path_in_repo="README.md",
            repo_id=f"alice/{unique}",
            repo_type="space",
        )
    with pytest.raises(ValueError, match="Invalid metadata"):
        api.upload_file(
            path_or_fileobj=b"---\ntags: [unclosed\n---\n",
            path_in_repo="README.md",
            repo_id=f"alice/{unique}",
            repo_type="space",
        )
    assert api.space_info(f"alice/{unique}").sdk == "streamlit"


def test_validate_yaml_answers_json(server: Any) -> None:
    r = httpx.post(f"{server.url}/api/validate-yaml", json={"content": "---\nlicense: mit\n---\n", "repoType": "model"})
    assert r.status_code == 200 and r.json() == {"errors": [], "warnings": []}
    r = httpx.post(f"{server.url}/api/validate-yaml", json={"content": "---\nsdk: nope\n---\n", "repoType": "space"})
    assert r.status_code == 400 and r.json()["errors"][0]["message"]


# ---- upload_folder -------------------------------------------------------------------------------------------
def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    return root


def test_upload_folder_with_delete_patterns(api: HfApi, repo: str, tmp_path: Path) -> None:
    api.create_commit(
        repo,
        [CommitOperationAdd(path_in_repo=p, path_or_fileobj=b"old") for p in ("old.tmp", "keep.txt", "x/stale.tmp")],
        commit_message="old files",
    )
    readme = b"---\nlicense: apache-2.0\n---\n# Folder\n"  # a root README.md: validate-yaml is called first
    folder = write_tree(tmp_path / "f", {"README.md": readme, "new.txt": b"new", "sub/a.txt": b"a", "sub/b.txt": b"b"})
    api.upload_folder(folder_path=folder, repo_id=repo, delete_patterns=["*.tmp"], commit_message="folder")
    assert sorted(api.list_repo_files(repo)) == [
        ".gitattributes",
        "README.md",
        "keep.txt",
        "new.txt",
        "sub/a.txt",
        "sub/b.txt",
    ]
    assert api.model_info(repo).card_data.license == "apache-2.0"


def test_upload_folder_into_a_subfolder_with_patterns(api: HfApi, repo: str, tmp_path: Path) -> None:
    folder = write_tree(tmp_path / "f", {"a.py": b"a", "b.md": b"b", "c/d.py": b"d"})
    api.upload_folder(folder_path=folder, repo_id=repo, path_in_repo="code", allow_patterns=["*.py"])
    assert sorted(api.list_repo_files(repo)) == [".gitattributes", "code/a.py", "code/c/d.py"]
    api.upload_folder(
        folder_path=folder, repo_id=repo, path_in_repo="code", delete_patterns=["*.py"], allow_patterns="*.md"
    )
    assert sorted(api.list_repo_files(repo)) == [".gitattributes", "code/b.md"]


def test_upload_folder_respects_gitignore(api: HfApi, repo: str, tmp_path: Path) -> None:
    folder = write_tree(
        tmp_path / "f", {".gitignore": b"*.log\nbuild/\n", "app.py": b"a", "x.log": b"l", "build/o": b"o"}
    )
    api.upload_folder(folder_path=folder, repo_id=repo)
    assert sorted(api.list_repo_files(repo)) == [".gitattributes", ".gitignore", "app.py"]


def test_upload_folder_with_more_than_250_files_commits_them_all(api: HfApi, unique: str, tmp_path: Path) -> None:
    repo = f"alice/{unique}"
    api.create_repo(repo, repo_type="dataset")
    files = {f"part{i % 5}/row{i:04d}.json": b'{"i": %d}\n' % i for i in range(310)}
    folder = write_tree(tmp_path / "many", files)
    api.upload_folder(folder_path=folder, repo_id=repo, repo_type="dataset", commit_message="many files")
    remote = set(api.list_repo_files(repo, repo_type="dataset"))
    assert remote == set(files) | {".gitattributes"}
    titles = [c.title for c in api.list_repo_commits(repo, repo_type="dataset")]
    assert "many files" in titles and "many files (part 2)" in titles  # the 2.x multi-commit pipeline
    sample = api.get_paths_info(repo, ["part3/row0123.json"], repo_type="dataset")[0]
    assert sample.blob_id == git_sha1(files["part3/row0123.json"])


# ---- create_commit and deletes ---------------------------------------------------------------------------------
def test_create_commit_add_delete_and_copy(api: HfApi, repo: str, download: Any) -> None:
    api.create_commit(
        repo,
        [
            CommitOperationAdd(path_in_repo="a.txt", path_or_fileobj=b"A"),
            CommitOperationAdd(path_in_repo="w/model.bin", path_or_fileobj=BIN),
            CommitOperationAdd(path_in_repo="trash/1.txt", path_or_fileobj=b"1"),
            CommitOperationAdd(path_in_repo="trash/deep/2.txt", path_or_fileobj=b"2"),
            CommitOperationAdd(path_in_repo="gone.txt", path_or_fileobj=b"g"),
        ],
        commit_message="setup",
    )
    info = api.create_commit(
        repo,
        [
            CommitOperationAdd(path_in_repo="new.txt", path_or_fileobj=b"new"),
            CommitOperationDelete(path_in_repo="gone.txt"),
            CommitOperationDelete(path_in_repo="trash/"),
            CommitOperationCopy(src_path_in_repo="a.txt", path_in_repo="copies/a.txt"),
            CommitOperationCopy(src_path_in_repo="w/model.bin", path_in_repo="copies/model.bin"),
        ],
        commit_message="ops",
        commit_description="every kind of operation",
    )
    assert sorted(api.list_repo_files(repo)) == sorted(
        [".gitattributes", "a.txt", "w/model.bin", "new.txt", "copies/a.txt", "copies/model.bin"]
    )
    assert download(repo, "copies/a.txt", revision=info.oid).read_bytes() == b"A"
    copied = api.get_paths_info(repo, ["copies/model.bin"])[0]
    assert copied.lfs is not None and copied.lfs.sha256 == sha256(BIN)
    assert download(repo, "copies/model.bin").read_bytes() == BIN
    commit = api.list_repo_commits(repo)[0]
    assert commit.title == "ops" and commit.message == "every kind of operation"


def test_copy_from_another_revision(api: HfApi, repo: str, download: Any) -> None:
    first = api.upload_file(path_or_fileobj=b"v1", path_in_repo="f.txt", repo_id=repo).oid
    api.upload_file(path_or_fileobj=b"v2", path_in_repo="f.txt", repo_id=repo)
    api.create_commit(
        repo,
        [CommitOperationCopy(src_path_in_repo="f.txt", path_in_repo="f-v1.txt", src_revision=first)],
        commit_message="cp",
    )
    assert download(repo, "f-v1.txt").read_bytes() == b"v1"


def test_delete_file_and_delete_folder(api: HfApi, repo: str) -> None:
    api.create_commit(
        repo,
        [
            CommitOperationAdd(path_in_repo=p, path_or_fileobj=b"x")
            for p in ("a.txt", "d/1.txt", "d/e/2.txt", "k/3.txt")
        ],
        commit_message="setup",
    )
    api.delete_file("a.txt", repo_id=repo)
    api.delete_folder("d", repo_id=repo)
    assert sorted(api.list_repo_files(repo)) == [".gitattributes", "k/3.txt"]
    with pytest.raises(EntryNotFoundError):
        api.delete_file("a.txt", repo_id=repo)
    with pytest.raises(EntryNotFoundError):
        api.delete_folder("d", repo_id=repo)
    assert "d" not in {e.path for e in api.list_repo_tree(repo)}


def test_stale_parent_commit_is_refused_and_writes_nothing(api: HfApi, repo: str) -> None:
    old = api.model_info(repo).sha
    new = api.upload_file(path_or_fileobj=b"moved", path_in_repo="moved.txt", repo_id=repo).oid
    with pytest.raises(HfHubHTTPError) as e:
        api.create_commit(
            repo,
            [
                CommitOperationAdd(path_in_repo="stale.txt", path_or_fileobj=b"stale"),
                CommitOperationDelete("moved.txt"),
            ],
            commit_message="stale",
            parent_commit=old,
        )
    assert e.value.response.status_code == 412
    assert api.model_info(repo).sha == new
    assert sorted(api.list_repo_files(repo)) == [".gitattributes", "moved.txt"]
    ok = api.create_commit(
        repo,
        [CommitOperationAdd(path_in_repo="ok.txt", path_or_fileobj=b"ok")],
        commit_message="ok",
        parent_commit=new[:10],
    )
    assert api.model_info(repo).sha == ok.oid


def test_create_commit_with_a_bad_path_is_refused(server: Any, alice: str, repo: str) -> None:
    for path in ("../escape.txt", ".git/config", "a//b", "/abs"):
        body = (
            b'{"key":"header","value":{"summary":"bad"}}\n'
            + b'{"key":"file","value":{"path":%s,"content":"eA==","encoding":"base64"}}\n' % f'"{path}"'.encode()
        )
        r = httpx.post(
            f"{server.url}/api/models/{repo}/commit/main",
            content=body,
            headers={"authorization": f"Bearer {alice}", "content-type": "application/x-ndjson"},
        )
        assert r.status_code == 422, (path, r.status_code, r.text)


# ---- LFS -----------------------------------------------------------------------------------------------------
def test_bin_files_are_stored_as_lfs(api: HfApi, repo: str) -> None:
    api.upload_file(path_or_fileobj=BIN, path_in_repo="weights/model.bin", repo_id=repo)
    api.upload_file(path_or_fileobj=b"plain", path_in_repo="weights/config.json", repo_id=repo)
    entry = api.get_paths_info(repo, ["weights/model.bin"])[0]
    assert entry.size == len(BIN)
    assert entry.lfs is not None and entry.lfs.sha256 == sha256(BIN) and entry.lfs.size == len(BIN)
    assert 100 < entry.lfs.pointer_size < 200
    tree = {e.path: e for e in api.list_repo_tree(repo, path_in_repo="weights", expand=True)}
    assert tree["weights/model.bin"].lfs is not None and tree["weights/config.json"].lfs is None
    assert tree["weights/model.bin"].last_commit is not None
    siblings = {s.rfilename: s for s in api.model_info(repo, files_metadata=True).siblings}
    assert siblings["weights/model.bin"].lfs.sha256 == sha256(BIN) and siblings["weights/model.bin"].size == len(BIN)


def test_new_gitattributes_patterns_apply_in_the_same_commit(api: HfApi, repo: str, download: Any) -> None:
    attrs = download(repo, ".gitattributes").read_bytes() + b"*.dat filter=lfs diff=lfs merge=lfs -text\n"
    api.create_commit(
        repo,
        [
            CommitOperationAdd(path_in_repo=".gitattributes", path_or_fileobj=attrs),
            CommitOperationAdd(path_in_repo="x.dat", path_or_fileobj=b"data as lfs"),
        ],
        commit_message="dat as lfs",
    )
    entry = api.get_paths_info(repo, ["x.dat"])[0]
    assert entry.lfs is not None and entry.lfs.sha256 == sha256(b"data as lfs")
    assert download(repo, "x.dat").read_bytes() == b"data as lfs"


def test_a_file_over_the_lfs_threshold_is_stored_as_lfs(api: HfApi, repo: str, download: Any) -> None:
    big = b"0123456789abcdef" * (11 * 1024 * 1024 // 16)  # 11 MiB of text, no LFS pattern
    api.upload_file(path_or_fileobj=big, path_in_repo="big.txt", repo_id=repo)
    entry = api.get_paths_info(repo, ["big.txt"])[0]
    assert entry.lfs is not None and entry.size == len(big)
    assert download(repo, "big.txt").read_bytes() == big


# ---- downloads -----------------------------------------------------------------------------------------------
@pytest.fixture
def content_repo(api: HfApi, repo: str) -> dict[str, str]:
    """A repo with a regular and an LFS file on main (tagged v1), and changed versions on branch dev."""
    v1 = api.create_commit(
        repo,
        [
            CommitOperationAdd(path_in_repo="config.json", path_or_fileobj=b'{"v": 1}'),
            CommitOperationAdd(path_in_repo="w/model.bin", path_or_fileobj=BIN),
        ],
        commit_message="v1",
    ).oid
    api.create_tag(repo, tag="v1")
    api.create_branch(repo, branch="dev")
    dev = api.create_commit(
        repo,
        [
            CommitOperationAdd(path_in_repo="config.json", path_or_fileobj=b'{"v": 2}'),
            CommitOperationAdd(path_in_repo="w/model.bin", path_or_fileobj=BIN[::-1]),
        ],
        commit_message="v2",
        revision="dev",
    ).oid
    return {"repo": repo, "v1": v1, "dev": dev}


def test_hf_hub_download_by_branch_tag_and_sha(content_repo: dict[str, str], download: Any) -> None:
    repo = content_repo["repo"]
    for rev in ("main", "v1", content_repo["v1"]):
        assert download(repo, "config.json", revision=rev).read_bytes() == b'{"v": 1}'
        assert download(repo, "w/model.bin", revision=rev).read_bytes() == BIN
    for rev in ("dev", content_repo["dev"]):
        assert download(repo, "config.json", revision=rev).read_bytes() == b'{"v": 2}'
        assert download(repo, "w/model.bin", revision=rev).read_bytes() == BIN[::-1]


def test_hf_hub_download_with_subfolder_and_repo_types(api: HfApi, unique: str, download: Any) -> None:
    for repo_type, extra in (("dataset", {}), ("space", {"space_sdk": "static"})):
        api.create_repo(f"alice/{unique}", repo_type=repo_type, **extra)
        api.upload_file(path_or_fileobj=b"t", path_in_repo="sub/t.txt", repo_id=f"alice/{unique}", repo_type=repo_type)
        path = download(f"alice/{unique}", "t.txt", subfolder="sub", repo_type=repo_type)
        assert path.read_bytes() == b"t"


def test_a_second_download_uses_the_cache(content_repo: dict[str, str], download: Any, cache_dir: Path) -> None:
    repo = content_repo["repo"]
    for name in ("config.json", "w/model.bin"):
        first = download(repo, name)
        blob = first.resolve()
        before = blob.stat()
        assert download(repo, name) == first
        after = blob.stat()
        assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)
        assert blob.parent.name == "blobs"
    # the blob names are the etags: the git blob sha1 of a regular file, the sha256 of an LFS file
    assert download(repo, "config.json").resolve().name == git_sha1(b'{"v": 1}')
    assert download(repo, "w/model.bin").resolve().name == sha256(BIN)
    # a file cached at a commit sha needs no network at all, and local_files_only works once cached
    dead = "http://127.0.0.1:9"
    assert download(repo, "config.json", revision=content_repo["v1"], endpoint=dead).read_bytes() == b'{"v": 1}'
    assert download(repo, "w/model.bin", local_files_only=True).read_bytes() == BIN


def test_get_hf_file_metadata(server: Any, alice: str, content_repo: dict[str, str]) -> None:
    repo = content_repo["repo"]
    meta = get_hf_file_metadata(hf_hub_url(repo, "config.json", revision="v1", endpoint=server.url), token=alice)
    assert meta.commit_hash == content_repo["v1"]
    assert meta.etag == git_sha1(b'{"v": 1}') and meta.size == 8
    meta = get_hf_file_metadata(hf_hub_url(repo, "w/model.bin", revision="dev", endpoint=server.url), token=alice)
    assert meta.commit_hash == content_repo["dev"]
    assert meta.etag == sha256(BIN[::-1]) and meta.size == len(BIN)
    assert meta.location.startswith(server.url)


def test_resolve_headers(server: Any, content_repo: dict[str, str]) -> None:
    repo = content_repo["repo"]
    r = httpx.head(f"{server.url}/{repo}/resolve/main/w/model.bin")
    assert r.status_code == 200
    assert r.headers["x-repo-commit"] == content_repo["v1"]
    assert r.headers["etag"] == f'"{sha256(BIN)}"' and r.headers["x-linked-etag"] == f'"{sha256(BIN)}"'
    assert r.headers["x-linked-size"] == r.headers["content-length"] == str(len(BIN))
    assert r.headers["accept-ranges"] == "bytes"
    assert not [h for h in r.headers if h.lower().startswith("x-xet")]
    r = httpx.head(f"{server.url}/{repo}/resolve/main/config.json")
    config_etag = git_sha1(b'{"v": 1}')
    assert r.headers["etag"] == f'"{config_etag}"' and r.headers["content-length"] == "8"
    assert "x-linked-etag" not in r.headers


def test_range_requests(server: Any, content_repo: dict[str, str]) -> None:
    repo = content_repo["repo"]
    url = f"{server.url}/{repo}/resolve/main/w/model.bin"
    r = httpx.get(url, headers={"Range": "bytes=10-19"})
    assert r.status_code == 206
    assert r.headers["content-range"] == f"bytes 10-19/{len(BIN)}"
    assert r.content == BIN[10:20]
    r = httpx.get(url, headers={"Range": "bytes=-8"})
    assert r.status_code == 206 and r.content == BIN[-8:]
    r = httpx.get(url, headers={"Range": f"bytes={len(BIN) - 3}-"})
    assert r.status_code == 206 and r.content == BIN[-3:]
    r = httpx.get(url, headers={"Range": f"bytes={len(BIN)}-"})
    assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{len(BIN)}"
    r = httpx.get(f"{server.url}/{repo}/resolve/main/config.json", headers={"Range": "bytes=1-2"})
    assert r.status_code == 206 and r.content == b'"v' and r.headers["content-range"] == "bytes 1-2/8"


def test_download_errors_are_typed(content_repo: dict[str, str], download: Any, unique: str, cache_dir: Path) -> None:
    repo = content_repo["repo"]
    with pytest.raises(RepositoryNotFoundError):
        download(f"alice/{unique}-missing", "config.json")
    with pytest.raises(RevisionNotFoundError):
        download(repo, "config.json", revision="no-such-revision")
    with pytest.raises(RemoteEntryNotFoundError) as e:
        download(repo, "no/such/file.json")
    assert isinstance(e.value, EntryNotFoundError)
    # the 404 carried X-Repo-Commit: the client caches the miss
    folder = next(cache_dir.glob("models--alice--*"))
    assert (folder / ".no_exist" / content_repo["v1"] / "no" / "such" / "file.json").exists()
    with pytest.raises(RemoteEntryNotFoundError):
        download(repo, "w")  # a folder is not a file


def test_snapshot_download_by_branch_tag_and_sha(content_repo: dict[str, str], snapshot: Any) -> None:
    repo = content_repo["repo"]
    v1 = {".gitattributes": None, "config.json": b'{"v": 1}', "w/model.bin": BIN}
    for rev in ("main", "v1", content_repo["v1"]):
        root = snapshot(repo, revision=rev)
        got = files_in(root)
        assert set(got) == set(v1) and got["config.json"] == v1["config.json"] and got["w/model.bin"] == BIN
        assert root.name == content_repo["v1"]
    root = snapshot(repo, revision="dev")
    assert files_in(root)["w/model.bin"] == BIN[::-1] and root.name == content_repo["dev"]


def test_snapshot_download_with_patterns_and_local_dir(
    content_repo: dict[str, str], snapshot: Any, tmp_path: Path
) -> None:
    root = snapshot(content_repo["repo"], allow_patterns=["*.json"])
    assert set(files_in(root)) == {"config.json"}
    out = snapshot(content_repo["repo"], local_dir=tmp_path / "local", revision="dev")
    assert (out / "w" / "model.bin").read_bytes() == BIN[::-1]


def test_snapshot_download_of_a_space(api: HfApi, unique: str, snapshot: Any) -> None:
    api.create_repo(f"alice/{unique}", repo_type="space", space_sdk="static")
    root = snapshot(f"alice/{unique}", repo_type="space")
    assert set(files_in(root)) == {".gitattributes", "README.md", "index.html", "style.css"}
    assert b"sdk: static" in (root / "README.md").read_bytes()


def test_raw_commit_endpoint_answers_commit_url(server: Any, alice: str, repo: str) -> None:
    body = b'{"key":"header","value":{"summary":"raw"}}\n{"key":"file","value":{"path":"r.txt","content":"%s"}}\n' % (
        base64.b64encode(b"raw")
    )
    r = httpx.post(
        f"{server.url}/api/models/{repo}/commit/main",
        content=body,
        headers={"authorization": f"Bearer {alice}", "content-type": "application/x-ndjson"},
    )
    assert r.status_code == 200
    out = r.json()
    assert out["success"] is True and out["commitUrl"] == f"{server.url}/{repo}/commit/{out['commitOid']}"
