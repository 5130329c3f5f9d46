"""The committed stylesheet is what Tailwind builds from the sources, so an edit to a
template or to static/src/app.css without `npm run build:css` fails here, not in production
(the image rebuilds it, `make run` and the tests serve the committed one)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import PROJECT_DIR, service_missing

COMMITTED = PROJECT_DIR / "static" / "css" / "app.css"
TAILWIND = PROJECT_DIR / "node_modules" / ".bin" / "tailwindcss"


@pytest.fixture(scope="module")
def tailwind() -> Path:
    """Tailwind's CLI at the version package-lock.json pins, installed with npm ci if missing."""
    if shutil.which("npm") is None:
        service_missing("npm is not installed; it builds the stylesheet with Tailwind CSS")
    if not TAILWIND.exists():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=PROJECT_DIR,
            check=True,
            capture_output=True,
            timeout=600,
        )
    return TAILWIND


# npm ci may download Tailwind first (up to ten minutes, see the fixture): longer than the default.
@pytest.mark.timeout(900)
def test_the_committed_stylesheet_equals_a_fresh_tailwind_build(tailwind: Path, tmp_path: Path) -> None:
    fresh = tmp_path / "app.css"
    # The same arguments as package.json's build:css, which the image runs.
    subprocess.run(
        [str(tailwind), "--input", "static/src/app.css", "--output", str(fresh), "--minify"],
        cwd=PROJECT_DIR,
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert fresh.read_text() == COMMITTED.read_text(), (
        "static/css/app.css is out of date: run `npm run build:css` and commit the result"
    )


def test_the_build_script_writes_the_committed_stylesheet_minified() -> None:
    scripts = json.loads((PROJECT_DIR / "package.json").read_text())["scripts"]
    assert scripts["build:css"] == (
        "tailwindcss --input static/src/app.css --output static/css/app.css --minify"
    )
    # Minified and compiled: no directives left for the browser, one line.
    stylesheet = COMMITTED.read_text()
    assert "@tailwind" not in stylesheet
    assert "@layer" not in stylesheet
    assert stylesheet.count("\n") <= 1


def test_the_page_rules_survive_the_build_for_every_class_the_templates_use() -> None:
    stylesheet = COMMITTED.read_text()
    for rule in (".site-header{", ".button.primary{", ".message.error{", ".search-layout{", ".chip{"):
        assert rule in stylesheet
    # Element defaults are kept too, and the pages follow the system's light or dark mode.
    assert ":root{color-scheme:light dark;" in stylesheet
