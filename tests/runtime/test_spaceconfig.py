"""README.md front matter → SpaceConfig, or CONFIG_ERROR / NO_APP_FILE with a message that says what to fix."""

from __future__ import annotations

import pytest

from spacehub.runtime.spaceconfig import ConfigProblem, SpaceConfig, parse_duration, parse_space_config
from spacehub.runtime.types import Stage


def readme(body: str) -> str:
    return f"---\n{body}\n---\n# hello\n"


def test_gradio_defaults() -> None:
    cfg = parse_space_config(readme("title: Demo\nsdk: gradio\nsdk_version: 4.44.1"), {"app.py"})
    assert cfg == SpaceConfig("gradio", "Demo", "app.py", 7860, "4.44.1", None, 1800.0)


def test_streamlit_and_docker_and_static() -> None:
    assert parse_space_config(readme("sdk: streamlit"), {"app.py"}).app_port == 8501
    docker = parse_space_config(readme("sdk: docker\napp_port: 8080"), {"Dockerfile"})
    assert isinstance(docker, SpaceConfig) and docker.app_port == 8080 and docker.app_file is None
    assert parse_space_config(readme("sdk: static"), {"index.html"}).app_file == "index.html"


def test_custom_app_file_and_timeout() -> None:
    cfg = parse_space_config(
        readme("sdk: gradio\napp_file: src/main.py\nstartup_duration_timeout: 1h"), {"src/main.py"}
    )
    assert isinstance(cfg, SpaceConfig) and cfg.app_file == "src/main.py" and cfg.startup_timeout == 3600


@pytest.mark.parametrize(
    ("text", "paths", "stage", "fragment"),
    [
        (None, set(), Stage.CONFIG_ERROR, "missing configuration"),
        ("# no front matter", set(), Stage.CONFIG_ERROR, "missing configuration"),
        ("---\nsdk: gradio\n", set(), Stage.CONFIG_ERROR, "not closed"),
        (readme("sdk: [unclosed"), set(), Stage.CONFIG_ERROR, "invalid yaml"),
        (readme("- a\n- b"), set(), Stage.CONFIG_ERROR, "mapping"),
        (readme("title: x"), set(), Stage.CONFIG_ERROR, "'sdk' is missing"),
        (readme("sdk: flask"), set(), Stage.CONFIG_ERROR, "unknown sdk"),
        (readme("sdk: docker\napp_port: 99999"), {"Dockerfile"}, Stage.CONFIG_ERROR, "app_port"),
        (readme("sdk: docker\napp_port: abc"), {"Dockerfile"}, Stage.CONFIG_ERROR, "app_port"),
        (readme("sdk: gradio\nstartup_duration_timeout: 20000000000000m"), {"app.py"}, Stage.CONFIG_ERROR,
         "startup_duration_timeout"),
        (readme("sdk: gradio\nstartup_duration_timeout: soon"), {"app.py"}, Stage.CONFIG_ERROR,
         "startup_duration_timeout"),
        (readme("sdk: gradio\nsdk_version: latest; rm -rf /"), {"app.py"}, Stage.CONFIG_ERROR, "sdk_version"),
        (readme("sdk: gradio\npython_version: 2.7"), {"app.py"}, Stage.CONFIG_ERROR, "python_version"),
        (readme("sdk: gradio\napp_file: ../../etc/passwd"), {"app.py"}, Stage.CONFIG_ERROR, "app_file"),
        (readme("sdk: gradio"), {"main.py"}, Stage.NO_APP_FILE, "app.py"),
        (readme("sdk: static"), {"README.md"}, Stage.NO_APP_FILE, "index.html"),
        (readme("sdk: docker"), {"app.py"}, Stage.NO_APP_FILE, "dockerfile"),
    ],
)  # fmt: skip
def test_problems_say_what_to_fix(text, paths, stage, fragment) -> None:
    got = parse_space_config(text, paths)
    assert isinstance(got, ConfigProblem)
    assert got.stage is stage
    assert fragment in got.message.lower()


@pytest.mark.parametrize(("value", "seconds"), [("30m", 1800), ("1h", 3600), ("45s", 45), (600, 600), ("2 h", 7200)])
def test_durations(value, seconds) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    "body",
    [
        "sdk: gradio\nx: " + "[" * 3000 + "]" * 3000,  # PyYAML recurses: it overflowed the runtime's read
        "sdk: gradio\nx: " + "[" * 65 + "]" * 65,  # deeper than any answer could carry
        "sdk: gradio\na: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
        "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
        "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]",  # an alias bomb
    ],
    ids=["3000-deep", "65-deep", "aliases"],
)
def test_hostile_yaml_is_a_config_error_never_a_crash(body: str) -> None:
    """The runtime reads READMEs with the same parser as the Hub's cards (spacehub.frontmatter)."""
    cfg = parse_space_config(readme(body), {"app.py"})
    assert isinstance(cfg, ConfigProblem) and cfg.stage is Stage.CONFIG_ERROR
    assert cfg.message.startswith("README.md: invalid YAML: metadata refused:"), cfg.message


def test_an_unclosed_block_says_so() -> None:
    cfg = parse_space_config("---\nsdk: gradio\n# no closing line\n", {"app.py"})
    assert cfg == ConfigProblem(Stage.CONFIG_ERROR, "README.md: the YAML block is not closed by a '---' line")


def test_brackets_in_quoted_text_and_comments_are_not_nesting() -> None:
    """The pre-scan that refuses deep nesting before PyYAML (quadratic in it) reads only flow collections."""
    many = "[" * 100
    body = f"sdk: gradio\ntitle: \"{many}\"\nshort_description: 'it''s {many}'\n# {many}\ntags: [a, [b]]"
    cfg = parse_space_config(readme(body), {"app.py"})
    assert not isinstance(cfg, ConfigProblem), cfg
