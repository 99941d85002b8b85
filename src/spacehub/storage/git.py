"""GitStore: one bare git repository per repo on disk. The only module that touches pygit2.

Reads (refs, trees, blobs, history) and object writes go through libgit2 (pygit2). Ref updates go through
``git update-ref <ref> <new> <old>``: a compare-and-swap under git's own lock file, the same lock that
``git-receive-pack`` takes, so API commits and ``git push`` can race safely. Objects are written before the
ref moves, so a crash mid-commit leaves the branch at its previous commit and only unreachable objects behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import datetime as dt
import hashlib
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pygit2

from spacehub.errors import BadRequest, Conflict, PreconditionFailed, RevisionNotFound

ZERO_SHA = "0" * 40
REF_MOVED = "The branch was updated since you opened this page. Please refresh and try again."
HEX = set("0123456789abcdef")
MIN_SHA_PREFIX = 7  # git's default abbreviation: shorter prefixes are never taken as revisions
FILE_MODE = pygit2.enums.FileMode.BLOB
EXEC_MODE = pygit2.enums.FileMode.BLOB_EXECUTABLE
TREE_MODE = pygit2.enums.FileMode.TREE
LINK_MODE = pygit2.enums.FileMode.LINK

# Written into every new repository. fsync keeps committed objects and refs durable across a power cut.
REPO_CONFIG = {
    "core.fsync": "committed",
    "core.fsyncMethod": "fsync",
    "http.receivepack": "true",
    "receive.denyNonFastForwards": "false",
    "receive.fsckObjects": "true",
    "gc.auto": "0",  # gc runs on our schedule, never inside a request
    "uploadpack.allowAnySHA1InWant": "true",
}


@dataclass(frozen=True)
class TreeEntry:
    path: str
    type: str  # "file" | "directory"
    oid: str
    size: int
    mode: int


@dataclass(frozen=True)
class CommitEntry:
    id: str
    title: str
    message: str
    author: str
    date: dt.datetime
    parents: tuple[str, ...]


@dataclass(frozen=True)
class DiffLine:
    """One line of a hunk: ``origin`` ``+`` (added), ``-`` (removed), `` `` (context) or ``\\`` (no newline at
    the end of the file); line numbers on each side (None where the line is not on that side)."""

    origin: str
    old: int | None
    new: int | None
    text: str


@dataclass(frozen=True)
class FileDiff:
    """One path a commit changed. ``hunks`` is None when its text was not diffed (``skipped`` says why: ``binary``,
    ``large``: a side over the size limit, ``limit``: the commit's line budget was spent on earlier files);
    ``truncated``: the hunks stop at the budget."""

    status: str  # added | removed | modified | type changed
    path: str
    old_path: str | None
    old_oid: str | None
    new_oid: str | None
    old_size: int
    new_size: int
    additions: int
    deletions: int
    hunks: tuple[tuple[str, tuple[DiffLine, ...]], ...] | None
    skipped: str | None = None
    truncated: bool = False


DIFF_STATUS = {"A": "added", "D": "removed", "M": "modified", "T": "type changed", "R": "renamed", "C": "copied"}


@dataclass(frozen=True)
class Change:
    """One path in a commit: a blob to write (oid + mode) or a deletion (oid None)."""

    path: str
    oid: str | None
    mode: int = FILE_MODE


def lookup(tree: pygit2.Tree, path: str) -> pygit2.Object:
    """``tree[path]``, except that a path holding a NUL is missing: libgit2 reads it as a C string, so
    ``README.md\\0x`` would find ``README.md``. Raises: KeyError."""
    if "\0" in path:
        raise KeyError(path)
    return tree[path]


def is_sha(rev: str) -> bool:
    return len(rev) == 40 and set(rev) <= HEX


REPOS_PER_THREAD = 8


class GitStore:
    def __init__(self, root: Path, hooks_dir: Path | None = None) -> None:
        self.root = root
        self.hooks_dir = hooks_dir
        self._local = threading.local()
        self._made_blank: Path | None = None  # `_blank`'s folder once it exists (its settings never change here)
        self._blank_tree: tuple[list[Path], list[tuple[Path, bytes]]] | None = None  # its folders and files (`init`)
        root.mkdir(parents=True, exist_ok=True)

    def path(self, repo_id: str) -> Path:
        return self.root / f"{repo_id}.git"

    def open(self, repo_id: str) -> pygit2.Repository:
        """The repository, opened once per thread and kept (opening costs more than most reads): at most
        ``REPOS_PER_THREAD`` per thread. Each open one holds libgit2's structures (~10 KB): with ~40 request threads
        keeping 64 each, 1,500 creates grew the server's RSS by 65 MB, with 8 by 31 MB (docs/performance.md)."""
        cache: dict[str, pygit2.Repository] = self._local.__dict__.setdefault("repos", {})
        repo = cache.get(repo_id)
        if repo is None:
            if len(cache) >= REPOS_PER_THREAD:
                cache.clear()
            repo = cache[repo_id] = pygit2.Repository(str(self.path(repo_id)))
        return repo

    # ---- lifecycle -------------------------------------------------------------------------------------------
    def init(self, repo_id: str) -> None:
        """A new empty bare repository: a copy of the store's blank one (`_blank`), made from what it holds, read once
        (a `shutil.copytree` took twice as long: it copies each folder's times, modes and extended attributes)."""
        if self._blank_tree is None:
            blank = self._blank()
            folders, files = [], []
            for top, names, leaves in os.walk(blank):
                rel = Path(top).relative_to(blank)
                folders += [rel / n for n in sorted(names)]
                files += [(rel / n, (Path(top) / n).read_bytes()) for n in sorted(leaves)]
            self._blank_tree = (folders, files)
        folders, files = self._blank_tree
        root = self.path(repo_id)
        root.mkdir(parents=True)
        for folder in folders:
            (root / folder).mkdir()
        for name, data in files:
            (root / name).write_bytes(data)

    def _blank(self) -> Path:
        """An empty bare repository with SpaceHub's settings (``main`` as HEAD, `REPO_CONFIG`, the hooks), made once
        per store and settings (its name holds a digest of them; never a repo id) and copied for each new repo.
        libgit2's own init keeps ~13 KB of the process for good at every call (pygit2 1.21, libgit2 1.9.7: 26 MB
        over 2,000 inits, with or without a template; opening a repository keeps nothing), which was most of the
        server's growth over 10,000 creates; a copy also writes the settings once, not once per repo."""
        if self._made_blank is not None:
            return self._made_blank
        settings = dict(REPO_CONFIG)
        if self.hooks_dir is not None:
            settings["core.hooksPath"] = str(self.hooks_dir)
        text = config_text(settings)
        blank = self.root / f".blank-{hashlib.sha256(text.encode()).hexdigest()[:16]}"
        if not blank.is_dir():
            tmp = self.root / f".blank-tmp-{os.getpid()}-{threading.get_ident()}"
            shutil.rmtree(tmp, ignore_errors=True)
            (tmp / "template").mkdir(parents=True)  # no sample hooks, description or exclude file to copy
            flags = pygit2.enums.RepositoryInitFlag.MKPATH | pygit2.enums.RepositoryInitFlag.EXTERNAL_TEMPLATE
            pygit2.init_repository(str(tmp / "repo"), bare=True, initial_head="main", flags=flags,
                                   template_path=str(tmp / "template"))  # fmt: skip
            with (tmp / "repo" / "config").open("a", encoding="utf-8") as f:
                f.write(text)
            with contextlib.suppress(OSError):  # whole or not at all; another thread or process may have made it
                (tmp / "repo").rename(blank)
            shutil.rmtree(tmp, ignore_errors=True)
        self._made_blank = blank
        return blank

    def delete(self, repo_id: str) -> None:
        p = self.path(repo_id)
        self._local.__dict__.get("repos", {}).pop(repo_id, None)
        if p.exists():
            trash = p.with_name(p.name + ".deleting")
            p.rename(trash)  # atomic: the repo is gone at once; removal may take its time
            shutil.rmtree(trash, ignore_errors=True)

    def copy(self, src_id: str, dst_id: str) -> None:
        """Clone every ref and object of ``src_id`` into the new repo ``dst_id`` (used by duplicate)."""
        self.init(dst_id)
        refspecs = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"]
        subprocess.run(
            ["git", "fetch", "--quiet", "--no-tags", str(self.path(src_id)), *refspecs],
            cwd=self.path(dst_id),
            check=True,
            capture_output=True,
        )

    # ---- refs --------------------------------------------------------------------------------------------------
    def resolve(self, repo_id: str, rev: str) -> str:
        """Branch, tag, ``refs/...`` name, or commit sha (whole, or a unique prefix of at least 7 hex digits, as git
        abbreviates them) → the full commit sha.

        Raises:
            RevisionNotFound: no such revision.
            BadRequest: an abbreviated sha that several objects start with.
        """
        if any(ord(c) < 32 or ord(c) == 127 for c in rev):  # libgit2 would read "main\0x" as "main"
            raise RevisionNotFound(f"Invalid rev id: {rev}")
        repo = self.open(repo_id)
        candidates = [rev] if rev.startswith("refs/") else [f"refs/heads/{rev}", f"refs/tags/{rev}"]
        for name in candidates:
            if not pygit2.reference_is_valid_name(name):
                continue
            ref = repo.references.get(name)
            if ref is not None:
                return str(ref.peel(pygit2.Commit).id)
        if MIN_SHA_PREFIX <= len(rev) <= 40 and set(rev.lower()) <= HEX:
            try:
                obj = repo[rev.lower()]
            except pygit2.AmbiguousError:
                raise BadRequest(
                    f"Ambiguous revision {rev}: several objects start with it; give more digits of the commit sha"
                ) from None
            except (KeyError, ValueError):
                obj = None
            if isinstance(obj, pygit2.Commit):
                return str(obj.id)
        raise RevisionNotFound(f"Invalid rev id: {rev}")

    def branch_head(self, repo_id: str, branch: str) -> str | None:
        """The commit branch ``branch`` points at, None if there is none. Read from its loose ref file when it has
        one (written whole by libgit2's lock file and rename), without opening the repository: a listing reads the
        heads of a thousand repos; a packed ref is resolved through libgit2."""
        name = f"refs/heads/{branch}"
        if any(ord(c) < 32 or ord(c) == 127 for c in branch) or not pygit2.reference_is_valid_name(name):
            return None
        try:
            sha = (self.path(repo_id) / name).read_text(errors="replace").strip()
        except OSError:
            sha = ""
        if is_sha(sha):
            return sha
        try:
            return self.resolve(repo_id, name)
        except (RevisionNotFound, pygit2.GitError):  # none, or a damaged ref: no head to show
            return None

    def find_commit(self, repo_id: str, prefix: str) -> str | None:
        """The commit whose sha starts with ``prefix`` (4 to 40 hex digits, unambiguous), or None."""
        if not 4 <= len(prefix) <= 40 or not set(prefix.lower()) <= HEX:
            return None
        try:
            obj = self.open(repo_id)[prefix.lower()]
        except (KeyError, ValueError):
            return None
        return str(obj.id) if isinstance(obj, pygit2.Commit) else None

    def branches(self, repo_id: str) -> dict[str, str]:
        return self._refs(repo_id, "refs/heads/")

    def tags(self, repo_id: str) -> dict[str, str]:
        return self._refs(repo_id, "refs/tags/")

    def _refs(self, repo_id: str, prefix: str) -> dict[str, str]:
        repo = self.open(repo_id)
        out = {}
        for name in repo.references:
            if name.startswith(prefix):
                out[name[len(prefix) :]] = str(repo.references[name].peel(pygit2.Commit).id)
        return out

    def refs(self, repo_id: str) -> dict[str, str]:
        """Every ref (full name) → the commit it points at: branches, tags, pull requests."""
        return {f"refs/{name}": sha for name, sha in self._refs(repo_id, "refs/").items()}

    def pull_requests(self, repo_id: str) -> dict[str, str]:
        """``refs/pr/*`` refs: number (as text) → commit sha."""
        return self._refs(repo_id, "refs/pr/")

    def ref_target(self, repo_id: str, ref: str) -> str | None:
        """The commit ``ref`` (a full name) points at, or None when there is no such ref."""
        if any(ord(c) < 32 or ord(c) == 127 for c in ref) or not pygit2.reference_is_valid_name(ref):
            return None
        found = self.open(repo_id).references.get(ref)
        return str(found.peel(pygit2.Commit).id) if found is not None else None

    def force_ref(self, repo_id: str, ref: str, target: str) -> None:
        """Point ``ref`` at ``target`` whatever it pointed at (still one compare-and-swap with what it read).

        Raises:
            PreconditionFailed: ``ref`` moved between the read and the write.
        """
        found = self.open(repo_id).references.get(ref)
        self.update_ref(repo_id, ref, target, str(found.target) if found is not None else None)

    def update_ref(self, repo_id: str, ref: str, new: str, old: str | None) -> None:
        """Atomically move ``ref`` from ``old`` (None = must not exist) to ``new`` (ZERO_SHA = delete).

        Raises:
            PreconditionFailed: the ref was not at ``old`` any more.
        """
        if old is None and new != ZERO_SHA:
            # a new ref: libgit2 writes it through a lock file and refuses one that exists (loose or packed), which
            # is the whole compare-and-swap, without a git process (~3 ms of every create); then made durable
            try:
                self.open(repo_id).references.create(ref, new, force=False)
            except pygit2.AlreadyExistsError:
                raise PreconditionFailed(REF_MOVED) from None
            flush_to_disk(self.path(repo_id))
            return
        args = ["git", "update-ref", "--no-deref"]
        args += ["-d", ref, old or ""] if new == ZERO_SHA else [ref, new, old or ZERO_SHA]
        r = subprocess.run(args, cwd=self.path(repo_id), capture_output=True, text=True)
        if r.returncode != 0:
            raise PreconditionFailed(REF_MOVED)

    def create_ref(self, repo_id: str, ref: str, target: str) -> None:
        """Raises: Conflict if the ref exists."""
        if not pygit2.reference_is_valid_name(ref):
            from spacehub.errors import BadRequest

            raise BadRequest(f"Invalid reference name: {ref}")
        try:
            self.update_ref(repo_id, ref, target, None)
        except PreconditionFailed as e:
            raise Conflict(f"Reference {ref} already exists") from e

    def create_annotated_tag(self, repo_id: str, tag: str, target: str, message: str, tagger: str) -> None:
        repo = self.open(repo_id)
        sig = pygit2.Signature(tagger, f"{tagger}@users.noreply.spacehub")
        tag_oid = repo.create_tag(tag, pygit2.Oid(hex=target), pygit2.enums.ObjectType.COMMIT, sig, message)
        # create_tag also writes the ref (not CAS); it raised already if the ref existed.
        del tag_oid

    # ---- reading -------------------------------------------------------------------------------------------
    def commit_info(self, repo_id: str, sha: str) -> CommitEntry:
        return _entry(self.open(repo_id)[sha])

    def log(self, repo_id: str, sha: str) -> Iterator[CommitEntry]:
        repo = self.open(repo_id)
        for c in repo.walk(pygit2.Oid(hex=sha), pygit2.enums.SortMode.TOPOLOGICAL | pygit2.enums.SortMode.TIME):
            yield _entry(c)

    def added(self, repo_id: str, new: str, old: str | None, limit: int = 100) -> list[CommitEntry]:
        """The commits ``new`` reaches and ``old`` does not (``git rev-list new --not old``), oldest first; at most
        ``limit`` (the newest)."""
        repo = self.open(repo_id)
        walker = repo.walk(pygit2.Oid(hex=new), pygit2.enums.SortMode.TOPOLOGICAL | pygit2.enums.SortMode.TIME)
        if old is not None and old in repo:
            walker.hide(pygit2.Oid(hex=old))
        out = []
        for c in walker:
            if len(out) == limit:
                break
            out.append(_entry(c))
        return out[::-1]

    def tree_of(self, repo_id: str, sha: str) -> tuple[pygit2.Repository, pygit2.Tree]:
        repo = self.open(repo_id)
        return repo, repo[sha].peel(pygit2.Tree)

    def entry(self, repo_id: str, sha: str, path: str) -> TreeEntry | None:
        repo, tree = self.tree_of(repo_id, sha)
        if path in ("", "/"):
            return TreeEntry("", "directory", str(tree.id), 0, TREE_MODE)
        try:
            obj = lookup(tree, path)
        except KeyError:
            return None
        return _tree_entry(repo, path, obj)

    def list_tree(self, repo_id: str, sha: str, path: str = "", recursive: bool = False) -> Iterator[TreeEntry]:
        """Entries below ``path`` (files and folders), depth-first, folders before their contents.

        Raises:
            KeyError: ``path`` is not a folder at ``sha``.
        """
        repo, tree = self.tree_of(repo_id, sha)
        if path:
            obj = lookup(tree, path)
            if not isinstance(obj, pygit2.Tree):
                raise KeyError(path)
            tree = obj
        yield from _walk(repo, tree, path, recursive)

    def read_blob(self, repo_id: str, oid: str) -> bytes:
        return bytes(self.open(repo_id)[oid].data)

    def files(self, repo_id: str, sha: str) -> dict[str, tuple[str, int]]:
        """Every file at ``sha``: path → (blob oid, mode)."""
        repo, tree = self.tree_of(repo_id, sha)
        return {e.path: (e.oid, e.mode) for e in _walk(repo, tree, "", True) if e.type == "file"}

    # ---- writing -------------------------------------------------------------------------------------------
    def write_blob(self, repo_id: str, data: bytes) -> str:
        return str(self.open(repo_id).create_blob(data))

    def write_blob_from_file(self, repo_id: str, path: Path) -> str:
        return str(self.open(repo_id).create_blob_fromdisk(str(path)))

    def has_object(self, repo_id: str, oid: str) -> bool:
        return oid in self.open(repo_id)

    def commit(
        self,
        repo_id: str,
        ref: str,
        parent: str | None,
        changes: list[Change],
        message: str,
        author: str,
        email: str,
        when: dt.datetime | None = None,
    ) -> str:
        """Write a commit on top of ``parent`` applying ``changes`` and move ``ref`` to it (compare-and-swap).

        Raises:
            PreconditionFailed: ``ref`` moved away from ``parent`` meanwhile.
        """
        repo = self.open(repo_id)
        base = repo[parent].peel(pygit2.Tree) if parent else None
        tree_oid = _apply(repo, base, _nest(changes))
        when = when or dt.datetime.now(dt.UTC)
        sig = pygit2.Signature(author, email, int(when.timestamp()), 0)
        parents = [pygit2.Oid(hex=parent)] if parent else []
        oid = repo.create_commit(None, sig, sig, message, tree_oid, parents)
        flush_to_disk(self.path(repo_id))  # objects durable before the ref points at them
        self.update_ref(repo_id, ref, str(oid), parent)
        return str(oid)

    # ---- merging -------------------------------------------------------------------------------------------
    def is_ancestor(self, repo_id: str, ancestor: str, sha: str) -> bool:
        """Whether ``ancestor`` is ``sha`` or one of its ancestors."""
        return ancestor == sha or bool(self.open(repo_id).descendant_of(sha, ancestor))

    def merge_base(self, repo_id: str, a: str, b: str) -> str | None:
        base = self.open(repo_id).merge_base(a, b)
        return str(base) if base is not None else None

    def merge_trees(self, repo_id: str, ours: str, theirs: str) -> tuple[str | None, list[str]]:
        """The tree of a three-way merge of two commits (written), or None and the paths that conflict."""
        repo = self.open(repo_id)
        index = repo.merge_commits(ours, theirs)
        conflicts = _conflicts(index)
        return (None, conflicts) if conflicts else (str(index.write_tree(repo)), [])

    def merge_conflicts(self, repo_id: str, ours: str, theirs: str) -> list[str]:
        """The paths a three-way merge of two commits would conflict on; writes nothing (reads may ask it)."""
        return _conflicts(self.open(repo_id).merge_commits(ours, theirs))

    def commit_tree(
        self, repo_id: str, ref: str, old: str, tree: str, parents: list[str], message: str, author: str, email: str
    ) -> str:
        """Write a commit of ``tree`` with ``parents`` and move ``ref`` from ``old`` to it (compare-and-swap).

        Raises:
            PreconditionFailed: ``ref`` moved away from ``old`` meanwhile.
        """
        repo = self.open(repo_id)
        sig = pygit2.Signature(author, email, int(dt.datetime.now(dt.UTC).timestamp()), 0)
        oid = repo.create_commit(None, sig, sig, message, pygit2.Oid(hex=tree), [pygit2.Oid(hex=p) for p in parents])
        flush_to_disk(self.path(repo_id))
        self.update_ref(repo_id, ref, str(oid), old)
        return str(oid)

    def commit_diff(
        self, repo_id: str, sha: str, max_blob: int = 1 << 20, max_lines: int = 5000, max_files: int = 300
    ) -> tuple[list[FileDiff], int]:
        """What commit ``sha`` changed against its first parent (against nothing for a root commit), as libgit2's
        diff of the two trees (git's own algorithm, three lines of context), path by path; and how many paths it
        changed in all. At most ``max_files`` paths and ``max_lines`` diff lines in all are returned; a blob over
        ``max_blob`` bytes, or one git finds binary, is named without its text."""
        repo = self.open(repo_id)
        commit = repo[sha].peel(pygit2.Commit)
        if commit.parents:
            diff = commit.parents[0].tree.diff_to_tree(commit.tree, context_lines=3)
        else:
            diff = commit.tree.diff_to_tree(context_lines=3, swap=True)
        out: list[FileDiff] = []
        budget = max_lines
        for i, delta in enumerate(diff.deltas):
            if i >= max_files:
                break
            old = None if delta.old_file.id.raw == bytes(20) else str(delta.old_file.id)
            new = None if delta.new_file.id.raw == bytes(20) else str(delta.new_file.id)
            sizes = [_object_size(repo, oid) for oid in (old, new)]
            base = {
                "status": DIFF_STATUS.get(delta.status_char(), "modified"),
                "path": delta.new_file.path if new else delta.old_file.path,
                "old_path": delta.old_file.path if delta.old_file.path != delta.new_file.path else None,
                "old_oid": old,
                "new_oid": new,
                "old_size": sizes[0],
                "new_size": sizes[1],
            }
            if max(sizes) > max_blob:
                out.append(FileDiff(**base, additions=0, deletions=0, hunks=None, skipped="large"))
                continue
            if budget <= 0:
                out.append(FileDiff(**base, additions=0, deletions=0, hunks=None, skipped="limit"))
                continue
            patch = diff[i]
            _, additions, deletions = patch.line_stats
            if patch.delta.is_binary:
                out.append(FileDiff(**base, additions=0, deletions=0, hunks=None, skipped="binary"))
                continue
            hunks, truncated = [], False
            for hunk in patch.hunks:
                if budget <= 0:
                    truncated = True
                    break
                lines = [_diff_line(line) for line in hunk.lines[:budget]]
                truncated = len(lines) < len(hunk.lines)
                budget -= len(lines)
                hunks.append((hunk.header.rstrip("\n"), tuple(lines)))
            out.append(FileDiff(**base, additions=additions, deletions=deletions, hunks=tuple(hunks),
                                truncated=truncated))  # fmt: skip
        return out, len(diff)

    def diff(self, repo_id: str, a: str, b: str) -> str:
        """The unified diff from commit ``a`` to commit ``b`` (what ``git diff a b`` prints)."""
        repo = self.open(repo_id)
        return repo.diff(repo[a], repo[b]).patch or ""


def _conflicts(index: pygit2.Index) -> list[str]:
    if index.conflicts is None:
        return []
    return sorted({entry.path for entries in index.conflicts for entry in entries if entry is not None})


def config_text(settings: dict[str, str]) -> str:
    """``section.key = value`` settings as git config file text (a section may appear again: git merges them);
    values quoted, so that a path with ``#``, ``;`` or spaces stays whole. Raises: ValueError (a newline)."""
    out = []
    for name, value in settings.items():
        section, _, key = name.rpartition(".")
        if "\n" in value or not section.isalnum() or not key.isalnum():
            raise ValueError(f"not a git config setting: {name}={value!r}")
        quoted = value.replace("\\", "\\\\").replace('"', '\\"')
        out.append(f'[{section}]\n\t{key} = "{quoted}"\n')
    return "".join(out)


def flush_to_disk(path: Path) -> None:
    """Make every write to ``path``'s filesystem durable with one ``syncfs`` (git's "batch" fsync idea) instead of
    an fsync per loose object; falls back to ``sync`` where syncfs is not available."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if _LIBC is not None and _LIBC.syncfs(fd) == 0:
            return
        os.sync()
    finally:
        os.close(fd)


def _load_libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name, use_errno=True) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "syncfs") else None


_LIBC = _load_libc()


def _entry(c: pygit2.Commit) -> CommitEntry:
    msg = c.message
    title, _, rest = msg.partition("\n")
    return CommitEntry(
        id=str(c.id),
        title=title.strip(),
        message=rest.strip(),
        author=c.author.name,
        date=dt.datetime.fromtimestamp(c.commit_time, dt.UTC).replace(tzinfo=None),
        parents=tuple(str(p) for p in c.parent_ids),
    )


def _object_size(repo: pygit2.Repository, oid: str | None) -> int:
    """The size of a blob from its header (0: no such side, or a gitlink, whose commit lives in another repo)."""
    if oid is None:
        return 0
    try:
        return int(repo.odb.read_header(oid)[1])
    except (KeyError, ValueError):
        return 0


def _diff_line(line: pygit2.DiffLine) -> DiffLine:
    origin = line.origin if line.origin in "+- " else "\\"  # =, >, <: the end of file has no newline
    text = line.raw_content.decode("utf-8", "replace").rstrip("\n")
    if origin == "\\":
        return DiffLine(origin, None, None, "No newline at end of file")
    return DiffLine(origin, line.old_lineno if line.old_lineno > 0 else None,
                    line.new_lineno if line.new_lineno > 0 else None, text)  # fmt: skip


def _tree_entry(repo: pygit2.Repository, path: str, obj: pygit2.Object) -> TreeEntry:
    if isinstance(obj, pygit2.Tree):
        return TreeEntry(path, "directory", str(obj.id), 0, TREE_MODE)
    mode = obj.filemode if hasattr(obj, "filemode") else FILE_MODE
    return TreeEntry(path, "file", str(obj.id), obj.size, int(mode))


def _walk(repo: pygit2.Repository, tree: pygit2.Tree, prefix: str, recursive: bool) -> Iterator[TreeEntry]:
    for obj in tree:
        path = f"{prefix}/{obj.name}" if prefix else obj.name
        if obj.type == pygit2.enums.ObjectType.TREE:
            yield TreeEntry(path, "directory", str(obj.id), 0, TREE_MODE)
            if recursive:
                yield from _walk(repo, repo[obj.id], path, True)
        elif obj.type == pygit2.enums.ObjectType.BLOB:
            yield TreeEntry(path, "file", str(obj.id), obj.size, int(obj.filemode))
        # submodules (commits) are not files of the repo: skipped


_Nested = dict[str, "tuple[str | None, int] | _Nested"]


def _nest(changes: list[Change]) -> _Nested:
    root: _Nested = {}
    for ch in changes:
        parts = ch.path.split("/")
        node = root
        for part in parts[:-1]:
            nxt = node.get(part)
            if not isinstance(nxt, dict):
                nxt = {}
                node[part] = nxt
            node = nxt
        node[parts[-1]] = (ch.oid, ch.mode)
    return root


def _apply(repo: pygit2.Repository, base: pygit2.Tree | None, changes: _Nested) -> pygit2.Oid:
    """Write a new tree = ``base`` with ``changes``; only the touched subtrees are rewritten. Empty dirs vanish."""
    tb = repo.TreeBuilder(base) if base is not None else repo.TreeBuilder()
    for name, change in changes.items():
        existing = tb.get(name)
        if isinstance(change, dict):
            sub = repo[existing.id] if existing is not None and existing.type == pygit2.enums.ObjectType.TREE else None
            oid = _apply(repo, sub, change)
            if len(repo[oid]) == 0:
                if existing is not None:
                    tb.remove(name)
            else:
                tb.insert(name, oid, TREE_MODE)
        else:
            blob, mode = change
            if blob is None:
                if existing is not None:
                    tb.remove(name)
            else:
                tb.insert(name, pygit2.Oid(hex=blob), mode)
    return tb.write()
