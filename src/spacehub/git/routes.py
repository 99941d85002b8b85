"""git's own HTTP protocols: smart HTTP (clone, fetch, push) and the LFS batch API.

Every route exists twice, for ``/{datasets|spaces}/{ns}/{name}…`` and for models' ``/{ns}/{name}…``, with or without
``.git`` after the name (``access.repo_route``); all end in literal segments, so they cannot shadow ``/resolve/``.
"""

from __future__ import annotations

from fastapi import APIRouter

from spacehub.git import lfs, smart_http

router = APIRouter()
router.include_router(smart_http.router)
router.include_router(lfs.router)
