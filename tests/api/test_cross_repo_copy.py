"""`CommitOperationCopy` from another repo (huggingface_hub 2.4.0's ``src_repo_id``/``src_repo_type``), in-process.

The client reads a regular file of the source itself (paths-info, then a download with the caller's token) and
sends it inline, so it needs nothing of the server beyond what any caller may read; for an LFS file it asks for the
source's Xet hash and calls ``/api/{T}/{src}/lfs-files/duplicate``, which SpaceHub (no Xet) does not serve: see
docs/architecture.md, "git and LFS"."""

from __future__ import annotations

import pytest
from huggingface_hub import CommitOperationCopy
from huggingface_hub.errors import RepositoryNotFoundError

from tests.inprocess import InProcessHub


def test_a_regular_file_is_copied_from_another_repo_the_caller_may_read(hub: InProcessHub) -> None:
    alice, bob = hub.api(hub.user("alice")), hub.api(hub.user("bob"))
    alice.create_repo("alice/copy-source", repo_type="dataset")
    alice.upload_file(path_or_fileobj=b"a,b\n1,2\n", path_in_repo="data/train.csv", repo_id="alice/copy-source",
                      repo_type="dataset")  # fmt: skip
    bob.create_repo("bob/copy-target")
    copy = CommitOperationCopy("data/train.csv", "train.csv", src_repo_id="alice/copy-source", src_repo_type="dataset")
    bob.create_commit("bob/copy-target", [copy], commit_message="copy")
    with open(bob.hf_hub_download("bob/copy-target", "train.csv", cache_dir=hub.data_dir / "cache-copy")) as f:
        assert f.read() == "a,b\n1,2\n"

    alice.update_repo_settings("alice/copy-source", private=True, repo_type="dataset")
    again = CommitOperationCopy("data/train.csv", "again.csv", src_repo_id="alice/copy-source", src_repo_type="dataset")
    with pytest.raises(RepositoryNotFoundError):  # a source bob may not read does not exist for him
        bob.create_commit("bob/copy-target", [again], commit_message="copy")


def test_an_lfs_file_from_another_repo_needs_xet_which_spacehub_does_not_serve(hub: InProcessHub) -> None:
    """The known limit, as the client meets it: it refuses before sending anything (no Xet hash in paths-info), so
    nothing half-done is left in the target."""
    alice = hub.api(hub.user("alice"))
    alice.create_repo("alice/lfs-source")
    alice.upload_file(path_or_fileobj=b"\0" * 4096, path_in_repo="weights.bin", repo_id="alice/lfs-source")
    assert alice.get_paths_info("alice/lfs-source", ["weights.bin"])[0].lfs is not None
    alice.create_repo("alice/lfs-target")
    copy = CommitOperationCopy("weights.bin", "weights.bin", src_repo_id="alice/lfs-source", src_repo_type="model")
    with pytest.raises(ValueError, match="no xet hash"):
        alice.create_commit("alice/lfs-target", [copy], commit_message="copy")
    assert "weights.bin" not in alice.list_repo_files("alice/lfs-target")
