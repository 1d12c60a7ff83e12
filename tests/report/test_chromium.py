"""End-to-end check of the HTML report in a real headless Chromium: DOM dump and screenshot."""

from __future__ import annotations

import html
import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

from syncd.report.render import render_html

pytestmark = pytest.mark.chromium

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
TIMEOUT = 60


def _sample_module() -> ModuleType:
    """The sample report of test_render.py, loaded by path (independent of the import mode)."""
    path = Path(__file__).with_name("test_render.py")
    spec = importlib.util.spec_from_file_location("_render_sample", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sample = _sample_module()
    page = tmp_path_factory.mktemp("report") / "report.html"
    page.write_text(render_html(sample.sample_report()), encoding="utf-8")
    return page


def test_dom_shows_flagged_departments_and_escaped_title(run_chromium, report_file: Path) -> None:  # type: ignore[no-untyped-def]
    result = run_chromium("--dump-dom", report_file.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    assert "<html" in dom and "Rapport de dérive" in dom

    flagged = re.findall(r'<tr class="flagged" data-code="(\w+)"', dom)
    assert flagged == ["62", "77", "93"]
    assert re.search(r'<tr data-code="26"', dom)
    for code in ("TOO_MANY_PRIORITIES", "NO_REFERENT", "NO_DASHBOARD"):
        assert code in dom

    # the hostile title is text in the DOM, never an element
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    assert "<script" not in dom.lower()
    # no javascript: link survived parsing
    hrefs = [html.unescape(h) for h in re.findall(r'href="([^"]*)"', dom)]
    assert hrefs and all(h.startswith(("https://", "http://")) for h in hrefs)
    # the chart was parsed as SVG with a bar per département and the max marker
    assert dom.count('class="bar"') == 3  # 93 has no open action, so no bar
    assert 'class="max"' in dom


def test_screenshot(run_chromium, report_file: Path) -> None:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    result = run_chromium(f"--screenshot={shot}", "--window-size=1280,2000", report_file.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    assert shot.exists(), result.stderr[-2000:]
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 10_000
