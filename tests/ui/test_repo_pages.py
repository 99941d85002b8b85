"""Model and dataset pages at the Hub's addresses: the README as a card (Markdown, no markup from the author, code
highlighted), files and versions, and the same visibility rules as the API, against a live server."""

from __future__ import annotations

import httpx
from huggingface_hub import HfApi

from spacehub.web.look import SITE_CSS
from tests.conftest import Server
from tests.ui.conftest import Web

README = """---
license: apache-2.0
tags:
- text-classification
- unicorns
---
# Unicorn classifier

| split | rows |
|-------|------|
| train | 1000 |

<script>alert("from the README")</script>
[click me](javascript:alert(1)) and [the docs](https://example.org/docs)

```python
def predict(text):
    return "unicorn"
```
"""

CODE = 'import os\n\n\ndef main() -> None:\n    print("<b>not markup</b>")\n'


def make_repo(server: Server, owner: str, repo_type: str, name: str, private: bool = False) -> str:
    api = HfApi(endpoint=server.url, token=server.tokens[owner])
    repo_id = f"{owner}/{name}"
    api.create_repo(repo_id, repo_type=repo_type, private=private)
    for path, data in (("README.md", README), ("src/train.py", CODE)):
        api.upload_file(path_or_fileobj=data.encode(), path_in_repo=path, repo_id=repo_id, repo_type=repo_type)
    return repo_id


def test_a_model_page_renders_its_card_and_its_files(server: Server, web: Web, carol: str, unique: str) -> None:
    repo_id = make_repo(server, carol, "model", f"{unique}-clf")
    page = web.get(f"/{repo_id}")
    assert page.status_code == 200, page.text[:300]
    card = page.text.split('id="card"', 1)[1].split("</article>", 1)[0]
    assert "<h1>Unicorn classifier</h1>" in card and "<table>" in card and "<td>train</td>" in card
    # the author's markup is text, and a javascript: link is no link
    assert "<script>" not in card and "&lt;script&gt;" in card
    assert 'href="javascript:' not in card and "click me" in card
    assert 'href="https://example.org/docs"' in card
    assert '<span class="k">def</span>' in card  # the python fence, highlighted
    assert "---" not in card and "license:" not in card  # the front matter is metadata, not text
    assert "License: apache-2.0" in page.text and "unicorns" in page.text

    tree = web.get(f"/{repo_id}/tree/main")
    assert tree.status_code == 200 and f'href="/{repo_id}/tree/main/src"' in tree.text
    blob = web.get(f"/{repo_id}/blob/main/src/train.py")
    assert blob.status_code == 200
    shown = blob.text.split('id="blob"', 1)[1].split("</pre>", 1)[0]
    assert '<span class="kn">import</span>' in shown and "&lt;b&gt;not markup&lt;/b&gt;" in shown
    # the download link is the Hub's resolve URL, and it answers the file
    link = next(part.split('"', 1)[0] for part in blob.text.split('href="')[1:] if "/resolve/" in part.split('"')[0])
    assert link == f"/{repo_id}/resolve/main/src/train.py", link
    assert httpx.get(server.url + link, headers={"authorization": f"Bearer {server.tokens[carol]}"}).text == CODE
    history = web.get(f"/{repo_id}/commits/main")
    assert history.status_code == 200 and history.text.count('class="mono"') == 3  # create + two uploads
    assert f'<a href="/{repo_id}">{repo_id}</a>' in web.get(f"/{carol}").text  # the profile links to it


def test_a_dataset_page_lives_under_datasets(server: Server, web: Web, carol: str, unique: str) -> None:
    repo_id = make_repo(server, carol, "dataset", f"{unique}-data")
    page = web.get(f"/datasets/{repo_id}")
    assert page.status_code == 200 and "<h1>Unicorn classifier</h1>" in page.text and ">Dataset<" in page.text
    assert f'href="/datasets/{repo_id}/tree/main"' in page.text
    assert web.get(f"/datasets/{repo_id}/blob/main/src/train.py").status_code == 200
    assert web.get(f"/{repo_id}").status_code == 404  # no model of that name
    assert f'<a href="/datasets/{repo_id}">' in web.get(f"/{carol}").text


def test_a_private_model_page_is_its_readers_alone(server: Server, carol: str, dave: str, unique: str) -> None:
    repo_id = make_repo(server, carol, "model", f"{unique}-secret", private=True)
    owner, other, anonymous = Web(server), Web(server), Web(server)
    owner.login(carol)
    other.login(dave)
    assert owner.get(f"/{repo_id}").status_code == 200
    for web in (other, anonymous):
        for path in (f"/{repo_id}", f"/{repo_id}/tree/main", f"/{repo_id}/blob/main/README.md"):
            r = web.get(path)
            assert r.status_code == 404 and "Unicorn" not in r.text, path


def test_the_models_and_datasets_lists_search_sort_and_hide_what_one_may_not_read(
    server: Server, carol: str, dave: str, unique: str
) -> None:
    """`/models` and `/datasets` (the explore lists beside `/spaces`): each repo linked to its card, the API's
    substring search and sorts, and its visibility rules (a private model is listed for its owner only)."""
    public = make_repo(server, carol, "model", f"{unique}-listed")
    hidden = make_repo(server, carol, "model", f"{unique}-unlisted", private=True)
    data = make_repo(server, carol, "dataset", f"{unique}-rows")
    liked = httpx.post(
        f"{server.url}/api/models/{public}/like", headers={"authorization": f"Bearer {server.tokens[carol]}"}
    )
    assert liked.status_code == 200, liked.text  # (the 2.x client has no like call; 0.x clients post this)
    owner, other, anonymous = Web(server), Web(server), Web(server)
    owner.login(carol)
    other.login(dave)
    page = owner.get(f"/models?q={unique}")
    assert page.status_code == 200 and "<h1>Models</h1>" in page.text
    assert f'<a href="/{public}">{public}</a>' in page.text and f'<a href="/{hidden}">{hidden}</a>' in page.text
    assert data not in page.text  # models only
    for web in (other, anonymous):
        page = web.get(f"/models?q={unique}")
        assert public in page.text and hidden not in page.text
    by_likes = owner.get(f"/models?q={unique}&sort=likes").text
    assert by_likes.index(f'data-repo="{public}"') < by_likes.index(f'data-repo="{hidden}"')  # the liked one first
    assert '<option value="likes" selected>' in by_likes
    datasets = anonymous.get(f"/datasets?q={unique}")
    assert f'<a href="/datasets/{data}">{data}</a>' in datasets.text and public not in datasets.text
    assert "No dataset matches" in anonymous.get("/datasets?q=nothing-has-this-name").text
    nav = anonymous.get("/spaces").text  # reached from every page's header
    assert '<a href="/models">Models</a>' in nav and '<a href="/datasets">Datasets</a>' in nav


def test_the_wide_model_route_leaves_the_hub_alone(server: Server, web: Web, carol: str) -> None:
    """`/{owner}/{name}` comes after every other page and the API: two-segment addresses still reach them."""
    assert web.get("/settings/tokens").status_code in (200, 303)
    r = httpx.get(f"{server.url}/api/whoami-v2", headers={"authorization": f"Bearer {server.tokens[carol]}"})
    assert r.status_code == 200 and r.json()["name"] == carol
    assert web.get("/static/highlight.css").status_code == 200
    site = web.get("/static/site.css")  # the look shared with the proxy's pages (spacehub/web/static), linked first
    assert site.status_code == 200 and site.text == SITE_CSS
    assert '<link rel="stylesheet" href="/static/site.css">\n<link rel="stylesheet" href="/static/app.css">' in (
        web.get("/spaces").text
    )
    icon = web.get("/static/favicon.svg")  # the tab's icon: the browser asks no /favicon.ico (a 404 on every page)
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in web.get("/spaces").text
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml" and "<svg" in icon.text
    assert web.get("/nobody-here/nothing").status_code == 404
