"""docs/configuration.md is what the models generate, and every example in it is a valid file."""

from __future__ import annotations

import enum
import re
import shutil
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from tocsin.cli import main
from tocsin.fields import Duration, Model, Size
from tocsin.reference import config_reference

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "configuration.md"
YAML_BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.MULTILINE | re.DOTALL)


def test_the_committed_reference_is_what_the_models_generate():
    assert REFERENCE.read_text(encoding="utf-8") == config_reference.render(), (
        "docs/configuration.md is stale: run `make docs` (tocsin config reference -o docs/configuration.md)")


def test_the_reference_is_deterministic():
    assert config_reference.render() == config_reference.render()


def _examples() -> list[str]:
    return YAML_BLOCK.findall(REFERENCE.read_text(encoding="utf-8"))


def test_there_are_examples():
    assert len(_examples()) >= 3


# What the examples name from the environment and under /etc/tocsin: the test provides them.
_EXAMPLE_ENV = {"SLACK_WEBHOOK_URL": "https://hooks.slack.invalid/services/T0/B0/x", "API_PASSWORD": "pw",
                "API_TOKEN": "token", "ORDERS_TOKEN": "token", "REPORT_PUSH_TOKEN": "token", "SMTP_PASSWORD": "pw",
                "PAGERDUTY_ROUTING_KEY": "0123456789abcdef0123456789abcdef"}
_ETC_FILE = re.compile(r"/etc/tocsin/[\w.-]+")


def _checkable(text: str, tmp_path: Path) -> str:
    """The example with its /etc/tocsin files created under `tmp_path` (placeholder contents)."""
    for name in set(_ETC_FILE.findall(text)):
        (tmp_path / Path(name).name).write_text("placeholder-secret\n", encoding="utf-8")
    return text.replace("/etc/tocsin/", f"{tmp_path}/")


@pytest.mark.parametrize("index", range(len(_examples())))
def test_each_example_passes_check_config(index, tmp_path, monkeypatch, capsys):
    shutil.copytree(ROOT / "etc" / "rules", tmp_path / "rules")
    for name, value in _EXAMPLE_ENV.items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "tocsin.yml"
    path.write_text(_checkable(_examples()[index], tmp_path), encoding="utf-8")
    status = main(["check", "config", str(path)])
    assert status == 0, capsys.readouterr().err


# Keys no example shows, each with the reason.
_NOT_IN_EXAMPLES = {
    "global.web.tls_cert_file": "needs a real certificate and key at check time; docs/install.md shows it",
    "global.web.tls_key_file": "the other half of tls_cert_file",
}


def _paths_written(node: object, path: str = "") -> set[str]:
    """Every key path a YAML document writes, lists as `[]` (the reference's spelling)."""
    found = set()
    if isinstance(node, dict):
        for key, value in node.items():
            child = f"{path}.{key}" if path else str(key)
            found |= {child} | _paths_written(value, child)
    elif isinstance(node, list):
        for item in node:
            found |= _paths_written(item, path + "[]")
    return found


def test_every_key_of_the_reference_is_in_some_example():
    """A new option reaches the reference by itself; this makes sure it also gets an example."""
    import yaml

    written = set().union(*(_paths_written(yaml.safe_load(text)) for text in _examples()))
    missing = []
    for section in config_reference.sections():
        for key in section.keys:
            places = [f"{p}.{key.name}" if p else key.name for p in (section.path, *section.also_at)]
            if not any(place in written or place in _NOT_IN_EXAMPLES for place in places):
                missing.append(places[0])
    assert not missing, f"keys without an example in config_descriptions.EXAMPLES: {missing}"


class _Inner(Model):
    """A nested section."""

    wait: Duration = 90.0
    cap: Size = 2 * 2**20  # the largest it may grow
    deep: list[_Leaf] = Field(default_factory=list)


class _Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class _Leaf(Model):
    flag: bool = False
    color: _Color = _Color.RED


_Inner.model_rebuild()


class _Root(BaseModel):
    inner: _Inner = _Inner()
    again: _Inner | None = None
    name: str = Field(description="What it is called.")


def test_a_new_model_appears_without_being_listed_anywhere():
    """The generator walks the models: a new section, its keys, types, defaults and comments show up."""
    text = config_reference.render(_Root)
    assert "### `inner`" in text and "### `inner.deep[]`" in text
    assert "Also at: `again`." in text  # described once, linked from its other place
    assert "| `wait` | duration | `1m30s` |" in text
    assert "| `cap` | size | `2MiB` | The largest it may grow |" in text
    assert "| `name` | string | required | What it is called. |" in text
    assert "| `flag` | boolean | `false` |" in text
    assert "| `color` | one of `red`, `blue` | `\"red\"` |" in text


def test_every_key_of_the_real_models_is_in_the_reference():
    """Spot checks across parts: probes from the registry, receivers, logging, aliases."""
    text = config_reference.render()
    for key in ("`valid_status_codes`", "`query_response`", "`webhook_url`", "`continue`", "`global`",
                "`backup_count`", "`fail_if_no_answer`", "`breaker_cooldown`", "`from`"):
        assert key in text


def test_the_committed_json_schema_is_what_the_models_generate():
    from tocsin.reference import json_schema

    assert (ROOT / "docs" / "tocsin.schema.json").read_text(encoding="utf-8") == json_schema.render(), (
        "docs/tocsin.schema.json is stale: run `make docs` (tocsin config schema -o docs/tocsin.schema.json)")


def test_the_json_schema_accepts_every_example_and_flags_a_typo():
    """What editors check while typing: the examples and shipped files pass, a mistyped key does not."""
    import json

    import jsonschema
    import yaml

    schema = json.loads((ROOT / "docs" / "tocsin.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    marked = re.compile(r"^<!-- file: (\S+) -->\n```yaml\n(.*?)^```", re.MULTILINE | re.DOTALL)
    guides = [text for doc in (ROOT / "docs").glob("*.md") for name, text in marked.findall(doc.read_text())
              if not name.startswith("rules/") and not name.endswith("_test.yml")]
    shipped = [*(ROOT / "etc").glob("tocsin*.yml"), ROOT / "etc" / "demo.yml"]
    files = [*_examples(), *(p.read_text() for p in shipped), *guides]
    assert len(guides) >= 7
    for text in files:
        errors = [e.message for e in validator.iter_errors(yaml.safe_load(text))]
        assert not errors, (text, errors)
    other_spellings = {"targets": [{"name": "a", "url": "https://x/", "http": {"tls_config": {"server_name": "x"}}},
                                   {"name": "b", "tcp": {"address": "x:443", "tls": {"server_name": "x"}}}]}
    assert not [e.message for e in validator.iter_errors(other_spellings)]
    typo = {"targets": [{"name": "a", "url": "http://x/", "http": {"valid_status_code": [200]}}]}
    assert not validator.is_valid(typo)
    assert not validator.is_valid({"global": {"interval": "30 seconds"}})
