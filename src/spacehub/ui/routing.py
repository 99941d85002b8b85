"""The page router's route class: a HubError raised by a use case becomes an HTML page with its status (the API
renders the same errors as JSON), and a POST must carry a valid CSRF token before its handler runs."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from spacehub.errors import HubError
from spacehub.ui.web import check_csrf, error_page


class PageRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                if request.method == "POST":
                    check_csrf(request, await request.form())  # before the handler reads or changes anything
                return await handler(request)
            except HubError as err:
                return error_page(request, err)

        return page
