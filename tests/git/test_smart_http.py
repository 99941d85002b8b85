"""git clone / push over smart HTTP with the real git binary against the live server."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from spacehub.storage.blobs import LfsPointer


def make_repo(api, repo_type: str, name: str, private: bool = False) -> str:  # type: ignore[no-untyped-def]
    repo_id = f"alice/{name}"
    sdk = {"space_sdk": "static"} if repo_type == "space" else {}
    api.create_repo(repo_id, repo_type=repo_type, private=private, **sdk)
    return repo_id


def head(git, url: str) -> str:  # type: ignore[no-untyped-def]
    out = git.run("ls-remote", url, "refs/heads/main").stdout.split()
    return out[0] if out else ""


@pytest.mark.parametrize("repo_type", ["space", "dataset", "model"])
@pytest.mark.parametrize("suffix", ["", ".git"])
def test_clone_repo_created_by_api(server, api, git, url, unique, repo_type, suffix) -> None:  # type: ignore[no-untyped-def]
    repo_id = make_repo(api, repo_type, unique)
    api.upload_file(path_or_fileobj=b"print('hi')\n", path_in_repo="src/app.py", repo_id=repo_id, repo_type=repo_type)
    clone = git.clone(url(server.url, repo_type, repo_id, suffix=suffix), "c")
    assert (clone / "src" / "app.py").read_text() == "print('hi')\n"
    assert (clone / ".gitattributes").exists()
    if repo_type == "space":
        assert "sdk: static" in (clone / "README.md").read_text()
    sha = api.repo_info(repo_id, repo_type=repo_type).sha
    assert git.run("rev-parse", "HEAD", cwd=clone).stdout.strip() == sha


def test_push_new_commit_is_seen_by_the_api(server, alice, api, git, url, unique, tmp_path) -> None:  # type: ignore[no-untyped-def]
    repo_id = make_repo(api, "space", unique)
    clone = git.clone(url(server.url, "space", repo_id, alice), "c")
    sha = git.commit_file(clone, "docs/hello.txt", "hello from git\n", "Add hello via git push")
    readme = (clone / "README.md").read_text().replace("sdk: static", "sdk: gradio")
    git.commit_file(clone, "README.md", readme, "Switch to gradio")
    git.run("push", "origin", "main", cwd=clone)

    assert "docs/hello.txt" in api.list_repo_files(repo_id, repo_type="space")
    path = api.hf_hub_download(repo_id, "docs/hello.txt", repo_type="space", cache_dir=tmp_path / "cache")
    assert Path(path).read_text() == "hello from git\n"
    titles = [c.title for c in api.list_repo_commits(repo_id, repo_type="space")]
    assert titles[:2] == ["Switch to gradio", "Add hello via git push"]
    assert sha in [c.commit_id for c in api.list_repo_commits(repo_id, repo_type="space")]
    info = api.space_info(repo_id)
    assert info.sdk == "gradio"  # after_commit ran for the pushed branch


def test_push_with_read_only_token_is_refused(server, api, git, url, unique) -> None:  # type: ignore[no-untyped-def]
    repo_id = make_repo(api, "space", unique)
    read_token = server.user("alice", role="read")
    clone = git.clone(url(server.url, "space", repo_id, read_token), "c")  # reading is fine
    before = head(git, url(server.url, "space", repo_id))
    git.commit_file(clone, "x.txt", "x", "x")
    out = git.run("push", "origin", "main", cwd=clone, check=False)
    assert out.returncode != 0
    assert "403" in out.stderr
    assert head(git, url(server.url, "space", repo_id)) == before


def test_bob_cannot_push_to_alice_repo_nor_see_her_private_one(server, bob, api, git, url, unique) -> None:  # type: ignore[no-untyped-def]
    public = make_repo(api, "space", unique)
    clone = git.clone(url(server.url, "space", public, bob), "c")
    git.commit_file(clone, "x.txt", "x", "x")
    out = git.run("push", "origin", "main", cwd=clone, check=False)
    assert out.returncode != 0 and "403" in out.stderr

    private = make_repo(api, "space", unique + "-p", private=True)
    out = git.run("clone", url(server.url, "space", private, bob), str(git.tmp / "p"), check=False)
    assert out.returncode != 0 and "not found" in out.stderr
    r = httpx.get(f"{server.url}/spaces/{private}/info/refs?service=git-upload-pack", auth=("bob", bob))
    assert r.status_code == 404 and r.headers["x-error-code"] == "RepoNotFound"


def test_private_repo_needs_credentials(server, alice, api, git, url, unique) -> None:  # type: ignore[no-untyped-def]
    repo_id = make_repo(api, "dataset", unique, private=True)
    out = git.run("clone", url(server.url, "dataset", repo_id), str(git.tmp / "anon"), check=False)
    assert out.returncode != 0
    assert not (git.tmp / "anon").exists()
    clone = git.clone(url(server.url, "dataset", repo_id, alice, ".git"), "c")
    assert (clone / ".gitattributes").exists()


def test_missing_repo_looks_like_a_private_one(server, alice, api, git, url, unique) -> None:  # type: ignore[no-untyped-def]
    private = make_repo(api, "space", unique, private=True)
    answers = [
        httpx.get(f"{server.url}/spaces/{repo_id}/info/refs?service=git-upload-pack")
        for repo_id in (private, f"alice/{unique}-missing")
    ]
    for r in answers:
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == 'Basic realm="SpaceHub"'
    assert answers[0].json() == answers[1].json()

    out = git.run("clone", url(server.url, "space", f"alice/{unique}-missing", alice), str(git.tmp / "m"), check=False)
    assert out.returncode != 0 and "not found" in out.stderr


def test_anonymous_push_is_challenged(server, api, unique) -> None:  # type: ignore[no-untyped-def]
    repo_id = make_repo(api, "model", unique)
    r = httpx.get(f"{server.url}/{repo_id}/info/refs?service=git-receive-pack")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")
    r = httpx.get(f"{server.url}/{repo_id}/info/refs")  # the dumb protocol is not served
    assert r.status_code == 400


def test_push_rules_refs_and_paths(server, alice, api, git, url, unique) -> None:  # type: ignore[no-untyped-def]
    repo_id = make_repo(api, "space", unique)
    origin = url(server.url, "space", repo_id, alice)
    clone = git.clone(origin, "c")
    before = head(git, origin)

    out = git.run("push", "origin", "main:refs/pr/1", cwd=clone, check=False)
    assert out.returncode != 0 and "only branches (refs/heads/*) and tags (refs/tags/*)" in out.stderr
    out = git.run("push", "origin", ":main", cwd=clone, check=False)
    assert out.returncode != 0 and "main branch cannot be deleted" in out.stderr

    git.run("push", "origin", "main:feature", "refs/heads/main:refs/tags/v1", cwd=clone)
    assert {b.name for b in api.list_repo_refs(repo_id, repo_type="space").branches} == {"main", "feature"}
    git.run("push", "origin", ":feature", cwd=clone)

    git.commit_file(clone, "ok.txt", "fine", "fine")
    git.commit_file(clone, "bad\\name.txt", "x", "backslash")
    out = git.run("push", "origin", "main", cwd=clone, check=False)
    assert out.returncode != 0
    assert "remote: error: Invalid path" in out.stderr and "backslashes are not allowed" in out.stderr
    assert head(git, origin) == before


def test_push_of_lfs_pointer_without_its_object_is_refused(server, alice, api, git, url, unique) -> None:  # type: ignore[no-untyped-def]
    repo_id = make_repo(api, "space", unique)
    origin = url(server.url, "space", repo_id, alice)
    clone = git.clone(origin, "c")
    before = head(git, origin)
    pointer = LfsPointer("ab" * 32, 12345).encode()
    git.commit_file(clone, "weights.dat", pointer, "pointer to nothing")  # *.dat is not LFS-tracked: no git-lfs
    out = git.run("push", "origin", "main", cwd=clone, check=False)
    assert out.returncode != 0
    assert f"weights.dat: the LFS object {'ab' * 32} (12345 bytes) was not uploaded to this repo" in out.stderr
    assert "pre-receive hook declined" in out.stderr
    assert head(git, origin) == before
    assert "weights.dat" not in api.list_repo_files(repo_id, repo_type="space")


def test_push_of_a_pointer_to_another_repos_object_is_refused_until_uploaded(  # type: ignore[no-untyped-def]
    server, alice, bob, api, git, url, unique
) -> None:
    """LFS objects are per repository: bob knows the sha256 of alice's private object, and pushes a pointer to it into
    his own repo: refused, as if it were not on the server. Once he uploads the bytes himself (the LFS batch API gives
    him upload actions), the same push goes through."""
    import hashlib

    from huggingface_hub import HfApi

    data = f"alice's weights {unique}".encode() * 100
    oid = hashlib.sha256(data).hexdigest()
    api.create_repo(f"alice/{unique}-secret", private=True)
    api.upload_file(path_or_fileobj=data, path_in_repo="w.bin", repo_id=f"alice/{unique}-secret")
    repo_id = f"bob/{unique}"
    HfApi(endpoint=server.url, token=bob).create_repo(repo_id)
    origin = url(server.url, "model", repo_id, bob)
    clone = git.clone(origin, "c")
    git.commit_file(clone, "weights.dat", LfsPointer(oid, len(data)).encode(), "pointer to alice's object")
    out = git.run("push", "origin", "main", cwd=clone, check=False)
    assert out.returncode != 0
    assert f"the LFS object {oid} ({len(data)} bytes) was not uploaded to this repo" in out.stderr
    body = {"operation": "upload", "objects": [{"oid": oid, "size": len(data)}]}
    headers = {"authorization": f"Bearer {bob}", "content-type": "application/vnd.git-lfs+json"}
    answer = httpx.post(f"{server.url}/{repo_id}.git/info/lfs/objects/batch", json=body, headers=headers).json()
    assert httpx.put(answer["objects"][0]["actions"]["upload"]["href"], content=data).status_code == 200
    git.run("push", "origin", "main", cwd=clone)
    assert "weights.dat" in HfApi(endpoint=server.url, token=bob).list_repo_files(repo_id)


@pytest.mark.slow  # a second server of its own (small_server)
def test_push_of_file_over_the_limit_is_refused(small_server, git, url, unique) -> None:  # type: ignore[no-untyped-def]
    from huggingface_hub import HfApi

    token = small_server.user("alice")
    repo_id = make_repo(HfApi(endpoint=small_server.url, token=token), "model", unique)
    clone = git.clone(url(small_server.url, "model", repo_id, token), "c")
    git.commit_file(clone, "zeros.raw", b"\0" * 1_500_000, "big file")  # compresses well: the pack is tiny
    out = git.run("push", "origin", "main", cwd=clone, check=False)
    assert out.returncode != 0
    assert "zeros.raw: 1500000 bytes is over the limit of 1000000 bytes" in out.stderr

    git.run("reset", "-q", "--hard", "origin/main", cwd=clone)
    git.commit_file(clone, "noise.raw", os.urandom(1_200_000), "incompressible")  # a chunked body over the limit
    out = git.run("push", "origin", "main", cwd=clone, check=False)
    assert out.returncode != 0 and "413" in out.stderr
    assert (
        head(git, url(small_server.url, "model", repo_id))
        == git.run("rev-parse", "origin/main", cwd=clone).stdout.strip()
    )


def test_fetch_with_gzipped_negotiation_and_a_big_file(server, alice, api, git, url, unique) -> None:  # type: ignore[no-untyped-def]
    """git gzips large upload-pack requests (many ``have`` lines): http-backend inflates them."""
    repo_id = make_repo(api, "model", unique)
    origin = url(server.url, "model", repo_id, alice)
    pusher, fetcher = git.clone(origin, "a"), git.clone(origin, "b")
    for i in range(30):
        git.commit_file(pusher, f"f{i}.txt", str(i), f"commit {i}")
    big = os.urandom(3_000_000)
    tip = git.commit_file(pusher, "big.raw", big, "a big regular file")
    git.run("push", "origin", "main", cwd=pusher)
    for i in range(40):
        git.commit_file(fetcher, f"local{i}.txt", str(i), f"local {i}")
    out = git.run("fetch", "origin", cwd=fetcher, GIT_TRACE_CURL="1")
    assert "Content-Encoding: gzip" in out.stderr
    assert git.run("rev-parse", "origin/main", cwd=fetcher).stdout.strip() == tip
    assert (git.clone(origin, "c") / "big.raw").read_bytes() == big


def test_git_routes_are_documented() -> None:
    """tests/test_docs.py cannot see routes of included routers (FastAPI wraps them); check ours directly."""
    import re

    from spacehub.git import lfs, smart_http

    text = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    paths = [re.sub(r"\{(\w+):\w+\}", r"{\1}", r.path) for r in [*smart_http.router.routes, *lfs.router.routes]]
    assert len(paths) == 16
    assert [p for p in paths if f"`{p}`" not in text] == []


def test_push_to_a_pull_request(server, alice, bob, api, git, url, unique) -> None:  # type: ignore[no-untyped-def]
    """`git push origin HEAD:refs/pr/N`, as the Hub allows: the pull request's author (without write access) or a
    writer, while it is open; recorded in its timeline like an API commit. Anyone else, a closed pull request, a
    deletion or a branch by a non-writer: refused with the reason."""
    from huggingface_hub import HfApi
    from huggingface_hub.community import DiscussionCommit

    repo_id = make_repo(api, "space", unique)
    bob_api = HfApi(endpoint=server.url, token=bob)
    carol = server.user("carol")
    pr = bob_api.create_pull_request(repo_id, "Add notes", repo_type="space")
    ref = f"refs/pr/{pr.num}"

    clone = git.clone(url(server.url, "space", repo_id, bob), "bob")
    git.run("fetch", "origin", f"{ref}:pr", cwd=clone)
    git.run("checkout", "-q", "pr", cwd=clone)
    first = git.commit_file(clone, "notes.md", "one\n", "Add notes")
    second = git.commit_file(clone, "notes.md", "one\ntwo\n", "More notes")
    git.run("push", "origin", f"HEAD:{ref}", cwd=clone)
    assert api.list_repo_commits(repo_id, repo_type="space", revision=ref)[0].commit_id == second
    assert "notes.md" not in api.list_repo_files(repo_id, repo_type="space")  # main is untouched
    details = api.get_discussion_details(repo_id, pr.num, repo_type="space")
    pushed = [(e.summary, e.oid, e.author) for e in details.events if isinstance(e, DiscussionCommit)]
    assert pushed == [("Add notes", first, "bob"), ("More notes", second, "bob")]

    main = head(git, url(server.url, "space", repo_id))
    out = git.run("push", "origin", "HEAD:main", cwd=clone, check=False)  # bob may not write branches
    assert out.returncode != 0 and "only writers of this repo push branches and tags" in out.stderr
    out = git.run("push", "origin", f":{ref}", cwd=clone, check=False)
    assert out.returncode != 0 and "a pull request's ref cannot be deleted" in out.stderr
    assert head(git, url(server.url, "space", repo_id)) == main

    # carol opened a pull request of her own: she may push there, not to bob's
    HfApi(endpoint=server.url, token=carol).create_pull_request(repo_id, "Carol's", repo_type="space")
    theirs = git.clone(url(server.url, "space", repo_id, carol), "carol")
    git.commit_file(theirs, "carol.txt", "c", "carol")
    out = git.run("push", "--force", "origin", f"HEAD:{ref}", cwd=theirs, check=False)
    assert out.returncode != 0 and f"only the author of pull request #{pr.num} or a writer" in out.stderr

    # a writer may push to anyone's pull request
    mine = git.clone(url(server.url, "space", repo_id, alice), "alice")
    git.run("fetch", "origin", f"{ref}:pr", cwd=mine)
    git.run("checkout", "-q", "pr", cwd=mine)
    third = git.commit_file(mine, "notes.md", "one\ntwo\nthree\n", "Reviewed")
    git.run("push", "origin", f"HEAD:{ref}", cwd=mine)
    assert api.list_repo_commits(repo_id, repo_type="space", revision=ref)[0].commit_id == third

    # closed: no more commits, and the author is told why
    api.change_discussion_status(repo_id, pr.num, "closed", repo_type="space")
    git.run("pull", "-q", "--ff-only", "origin", ref, cwd=clone)
    git.commit_file(clone, "late.txt", "late", "Too late")
    out = git.run("push", "origin", f"HEAD:{ref}", cwd=clone, check=False)
    assert out.returncode != 0 and f"pull request #{pr.num} is closed: it takes no more commits" in out.stderr
    assert api.list_repo_commits(repo_id, repo_type="space", revision=ref)[0].commit_id == third
