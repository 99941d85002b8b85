"""``python -m spacehub.git.hook_main pre-receive [DATA_DIR]``: the program behind ``{data_dir}/hooks/pre-receive``.

git runs it in the bare repo with the ref updates on stdin; what it prints on stderr reaches the pusher as
``remote: ...`` lines, and a non-zero exit refuses the whole push (no ref moves).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from spacehub.git.push_checks import CONFIG_ENV, HookConfig, PushChecker, parse_updates


def _config(data_dir: str | None) -> HookConfig:
    value = os.environ.get(CONFIG_ENV)
    if value:
        return HookConfig.from_env(value)
    # Not pushed through the server (a push straight into the bare repo on disk): the settings of this environment
    # for the data dir the hook was installed into.
    from spacehub.config import Settings

    settings = Settings(**({"data_dir": Path(data_dir)} if data_dir else {}))  # type: ignore[arg-type]
    return HookConfig(str(settings.lfs_dir), str(settings.tmp_dir), settings.storage.max_request_bytes)


def pre_receive(data_dir: str | None) -> int:
    errors = PushChecker(Path.cwd(), _config(data_dir)).check(parse_updates(sys.stdin))
    if not errors:
        return 0
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    print(f"SpaceHub refused this push ({len(errors)} problem{'s' if len(errors) > 1 else ''}).", file=sys.stderr)
    return 1


def main(argv: list[str]) -> int:
    if len(argv) in (2, 3) and argv[1] == "pre-receive":
        return pre_receive(argv[2] if len(argv) == 3 else None)
    print("usage: python -m spacehub.git.hook_main pre-receive [DATA_DIR]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
