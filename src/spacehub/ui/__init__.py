"""The web UI: server-rendered pages (Jinja2) over the same service use cases as the API (docs/architecture.md,
"Web UI"). `pages.router` holds every page; `pages.static_files()` is what ``/static`` serves (its
``static`` folder and the site's style sheet, ``web/static/site.css``)."""
