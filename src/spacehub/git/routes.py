"""git's own HTTP protocols: smart HTTP (clone, fetch, push) and the LFS batch API."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
