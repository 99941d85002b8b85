"""Server-side git hooks for pushes (installed once into ``{data_dir}/hooks``, shared by every repo).

Every repo's ``core.hooksPath`` points at that folder (``storage.git``). The only hook is ``pre-receive``: a
two-line shell script running ``spacehub.git.hook_main`` with the server's own Python, rewritten at every start so
it follows the install (a new virtual environment, a moved data dir).
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from spacehub.config import Settings


def hook_script(settings: Settings) -> str:
    """The ``pre-receive`` script: the checks of ``spacehub.git.push_checks`` with this Python."""
    cmd = [sys.executable, "-m", "spacehub.git.hook_main", "pre-receive", str(settings.data_dir)]
    return (
        "#!/bin/sh\n"
        "# Installed by SpaceHub (spacehub.git.hooks): a push is checked like an API commit.\n"
        f"exec {shlex.join(cmd)}\n"
    )


def install_hooks(settings: Settings) -> Path:
    """Create the hooks folder every repo's ``core.hooksPath`` points at, with its ``pre-receive``; returns it."""
    d = settings.data_dir / "hooks"
    d.mkdir(parents=True, exist_ok=True)
    target = d / "pre-receive"
    text = hook_script(settings)
    if not target.exists() or target.read_text() != text or not os.access(target, os.X_OK):
        tmp = d / f".pre-receive.{os.getpid()}"
        tmp.write_text(text)
        tmp.chmod(0o755)
        os.replace(tmp, target)  # atomic: a push running now sees the old script or the new one, never half
    return d
