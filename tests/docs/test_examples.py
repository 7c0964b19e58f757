"""Every example in README.md and docs/*.md runs (the rules are in ``markdown_blocks``)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ecrcrypt.ecr.registry import Registry
from tests.docs.markdown_blocks import CONTINUE, ROOT, Block, blocks, chains, pages
from tests.pg_server import PostgresServer

CHAINS = chains()
# Examples about the embedded directory's own files (its registry.sqlite3 and service-key): not a backend choice.
DIRECTORY_FILES_ONLY = {"docs/threat-model.md:46"}


def _keeps_registry_state(chain: list[Block]) -> bool:
    """Whether an example has registry metadata to keep (every command line does; Python that makes a Registry)."""
    return chain[0].language != "python" or any("Registry" in block.code for block in chain)


# Every example on SQLite; on PostgreSQL every one with registry metadata (the others never open any).
CASES = [pytest.param("sqlite", c, id=f"sqlite-{c[0].where}") for c in CHAINS] + [
    pytest.param("postgresql", c, id=f"postgresql-{c[0].where}")
    for c in CHAINS
    if _keeps_registry_state(c) and c[0].where not in DIRECTORY_FILES_ONLY
]


@pytest.fixture
def metadata_urls(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Callable[[], str] | None:
    """Each example runs on both metadata backends. On PostgreSQL every registry directory an example
    creates keeps its metadata in a fresh database of the test server: ``ecrcrypt`` reads it from
    ``ECRCRYPT_METADATA_URL``, and ``Registry.create``/``Registry.open`` are given it for a directory
    whose example names none (a registry built in memory, ``Registry(...)``, is in memory on both)."""
    if request.param == "sqlite":
        return None
    server: PostgresServer = request.getfixturevalue("postgres_server")
    urls: dict[Path, str] = {}
    create, open_ = Registry.create.__func__, Registry.open.__func__  # type: ignore[attr-defined]

    def url_of(directory: object, *, new: bool) -> str | None:
        root = Path(str(directory)).resolve()
        if new and root not in urls:
            urls[root] = server.create_database()
        return urls.get(root)

    def created(cls: type[Registry], directory: Any, /, *args: Any, metadata: Any = None, **kw: Any) -> Registry:
        return create(cls, directory, *args, metadata=metadata or url_of(directory, new=True), **kw)  # type: ignore[no-any-return]

    def opened(cls: type[Registry], directory: Any, /, *args: Any, metadata: Any = None, **kw: Any) -> Registry:
        return open_(cls, directory, *args, metadata=metadata or url_of(directory, new=False), **kw)  # type: ignore[no-any-return]

    monkeypatch.setattr(Registry, "create", classmethod(created))
    monkeypatch.setattr(Registry, "open", classmethod(opened))
    return server.create_database


def _on_aws_kms(script: str) -> bool:
    """Whether a command-line example puts its registry on AWS KMS: it then runs against the moto server."""
    return "--kms aws" in script or "ECRCRYPT_KMS=aws" in script


@pytest.mark.parametrize(("metadata_urls", "chain"), CASES, indirect=["metadata_urls"])
def test_example_runs(
    chain: list[Block],
    metadata_urls: Callable[[], str] | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    monkeypatch.chdir(tmp_path)
    if chain[0].language == "python":
        namespace: dict[str, object] = {"__name__": "__docs__"}
        for block in chain:
            exec(compile(block.code, block.where, "exec"), namespace)
        return
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECRCRYPT_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["ECRCRYPT_DIR"] = str(tmp_path / "registry")
    if metadata_urls is not None:
        env["ECRCRYPT_METADATA_URL"] = metadata_urls()
    script = "\n".join(block.commands() for block in chain)
    if _on_aws_kms(script):  # boto3's own endpoint setting, as the example's page says; dummy credentials
        endpoint = request.getfixturevalue("moto_endpoint")
        env.pop("AWS_PROFILE", None)
        env.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                   AWS_DEFAULT_REGION="us-east-1")  # fmt: skip
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, f"{chain[0].where} failed ({proc.returncode}):\n{proc.stderr}\n{proc.stdout}"


def test_the_runner_finds_the_examples() -> None:
    # A page added to docs/ is covered without registering it; the runner sees python and shell blocks.
    assert {p.name for p in pages()} >= {"README.md", "quickstart.md", "testing.md", "cli.md"}
    languages = {c[0].language for c in CHAINS}
    assert {"python", "shell"} <= languages
    assert len(CHAINS) >= 10


def test_no_python_listing_hides_as_another_language() -> None:
    # Code that is not meant to run is marked ```text; a ```python block always runs, so none may fail to parse.
    for page in pages():
        for block in blocks(page):
            if block.language in {"py", "python3", "pycon"}:
                pytest.fail(f"{block.where}: use ```python (it runs) or ```text (it does not)")


def test_the_continue_marker_is_used_only_before_a_runnable_block() -> None:
    for page in pages():
        text = page.read_text().splitlines()
        for i, line in enumerate(text):
            if line.strip() == CONTINUE:
                assert i + 1 < len(text) and text[i + 1].startswith("```"), f"{page.name}:{i + 1}"


def test_no_link_leaves_the_repository_except_to_public_urls() -> None:
    for page in pages():
        text = page.read_text()
        assert "../shared" not in text, f"{page.relative_to(ROOT)} points outside the repository"
        for target in re.findall(r"\]\(([^)#\s]+)", text):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            assert (page.parent / target).resolve().is_relative_to(ROOT), f"{page.name}: link {target}"
            assert (page.parent / target).exists(), f"{page.name}: broken link {target}"


def test_readme_starts_with_the_two_setup_commands() -> None:
    first = blocks(ROOT / "README.md")[0]
    commands = [line.split("#")[0].strip() for line in first.code.splitlines() if line.strip()]
    assert (first.language, commands) == ("sh", ["make demo", "make test"])


def test_blocks_are_read_with_their_language_line_and_marker(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# t\n\n```python\nx = 1\n```\n\n<!-- docs: continue -->\n```python\nassert x == 1\n```\n\n"
        "```shell\n# a comment\necrcrypt init\n```\n\n```sh\nmake test\n```\n\n```text\nnot run\n```\n"
    )
    found = blocks(page)
    assert [(b.line, b.language, b.continues, b.runs) for b in found] == [
        (3, "python", False, True),
        (8, "python", True, True),
        (12, "shell", False, True),
        (17, "sh", False, False),
        (21, "text", False, False),
    ]
