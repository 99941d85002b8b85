"""The web UI: server-rendered pages (Jinja2) over the same service use cases as the API (docs/architecture.md,
"Web UI"). `pages.router` holds every page; `pages.STATIC` is the folder served at ``/static``."""
