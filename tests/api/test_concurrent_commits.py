"""Concurrent writers all land: commits without ``parent_commit`` go on whatever head is current (the server
retries its compare-and-swap when another commit moved the branch), as on the Hub; a stale ``parent_commit`` is
still refused (tests/api/test_bad_input.py)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

from tests.conftest import Server


@pytest.fixture
def alice(server: Server) -> str:
    """alice's token on the live server (tests/api/conftest.py's is the in-process hub's)."""
    return server.user("alice")


THREADS, PER_THREAD = 20, 5
pytestmark = pytest.mark.slow  # 100 commits under contention: tens of seconds on the shared 2 cores


def test_a_hundred_concurrent_commits_without_a_parent_all_land(server: Server, alice: str, unique: str) -> None:
    api = HfApi(endpoint=server.url, token=alice)
    repo_id = api.create_repo(unique, repo_type="dataset").repo_id
    api.upload_file(path_or_fileobj=b"doomed", path_in_repo="old/doomed.txt", repo_id=repo_id, repo_type="dataset")

    def write(t: int) -> list[str]:
        shas = []
        for i in range(PER_THREAD):
            ops = [CommitOperationAdd(f"t{t}/f{i}.txt", f"{t}-{i}".encode())]
            if t == 0 and i == 0:  # a deletion that races with the others: applied once, on the current head
                ops.append(CommitOperationDelete("old/doomed.txt"))
            shas.append(api.create_commit(repo_id, ops, commit_message=f"{t}/{i}", repo_type="dataset").oid)
        return shas

    with ThreadPoolExecutor(THREADS) as pool:
        shas = [sha for batch in pool.map(write, range(THREADS)) for sha in batch]
    assert len(set(shas)) == THREADS * PER_THREAD  # every call answered with a commit of its own
    files = set(api.list_repo_files(repo_id, repo_type="dataset"))
    assert {f"t{t}/f{i}.txt" for t in range(THREADS) for i in range(PER_THREAD)} <= files
    assert "old/doomed.txt" not in files
    history = {c.commit_id for c in api.list_repo_commits(repo_id, repo_type="dataset")}
    assert set(shas) <= history  # none was lost: each is an ancestor of main
