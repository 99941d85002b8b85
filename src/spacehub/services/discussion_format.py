"""The JSON shapes of discussions as the Hub answers them (what `huggingface_hub.community` reads), and comments
rendered from Markdown.

Comments are stored as their edit history (newest first) in the event's JSON; ``latest`` is its head. Markdown is
rendered by markdown-it-py's CommonMark preset with raw HTML off, so a comment cannot inject markup, and its link
validation drops ``javascript:`` and similar URLs.
"""

from __future__ import annotations

import json
from typing import Any

from markdown_it import MarkdownIt

from spacehub.services.formats import iso
from spacehub.storage.models import Account, Discussion, DiscussionEvent, Repo

HIDDEN_TEXT = "This comment has been hidden"
_MARKDOWN = MarkdownIt("commonmark", {"html": False})


def render(raw: str) -> str:
    return _MARKDOWN.render(raw)


def user_json(account: Account | None) -> dict[str, Any]:
    """An author as the Hub describes one; a deleted account is ``deleted``, as the client expects."""
    if account is None:
        return {"name": "deleted", "type": "user", "fullname": "deleted", "avatarUrl": ""}
    return {
        "_id": f"{account.id:024x}",
        "name": account.name,
        "fullname": account.fullname,
        "type": account.kind,
        "avatarUrl": "",
        "isPro": False,
        "isHf": False,
        "isHfAdmin": False,
        "isMod": False,
    }


def discussion_url(repo_url: str, num: int) -> str:
    return f"{repo_url}/discussions/{num}"


def item_json(d: Discussion, repo: Repo, num_comments: int) -> dict[str, Any]:
    """A discussion as listed by ``GET …/discussions``."""
    return {
        "num": d.num,
        "title": d.title,
        "status": d.status,
        "createdAt": iso(d.created_at),
        "author": user_json(d.author),
        "repo": {"name": repo.full_name, "type": repo.type},
        "isPullRequest": d.is_pull_request,
        "numComments": num_comments,
        "topReactions": [],
        "numReactionUsers": 0,
        "pinned": False,
    }


def event_json(ev: DiscussionEvent) -> dict[str, Any]:
    """One timeline event: ``comment``, ``status-change``, ``title-change`` or ``commit``."""
    data = json.loads(ev.data)
    if ev.kind == "comment":
        data = comment_data(data)
    return {
        "id": ev.event_id,
        "type": ev.kind,
        "createdAt": iso(ev.created_at),
        "author": user_json(ev.author),
        "data": data,
    }


def comment_data(stored: dict[str, Any]) -> dict[str, Any]:
    """A comment's ``data``: ``latest`` (raw and rendered), the edit count and ``history``, the versions before the
    latest, newest first (the client's ``edit_history``, so its ``number_of_edits`` is ``numEdits``); a hidden
    comment shows neither its text nor its history."""
    hidden = bool(stored.get("hidden"))
    history = stored["history"]
    versions = [
        {
            "raw": HIDDEN_TEXT if hidden else v["raw"],
            "html": render(HIDDEN_TEXT if hidden else v["raw"]),
            "updatedAt": v["updatedAt"],
            "author": {"name": v["author"]},
        }
        for v in history
    ]
    editors = list(dict.fromkeys(v["author"] for v in history))
    out: dict[str, Any] = {
        "edited": len(history) > 1,
        "hidden": hidden,
        "latest": versions[0],
        "numEdits": len(history) - 1,
        "editors": editors,
        "editorAvatarUrls": ["" for _ in editors],
        "reactions": [],
        "isReport": False,
        "history": [] if hidden else versions[1:],
    }
    if hidden:
        out["hiddenBy"] = stored.get("hiddenBy")
    return out
