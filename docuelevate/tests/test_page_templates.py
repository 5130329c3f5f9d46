"""What every page template owes: links by route name, one status badge, the shared tags."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.template import Context, Template
from django.test import RequestFactory

from conftest import PROJECT_DIR

TEMPLATES = sorted((PROJECT_DIR / "templates").rglob("*.html"))
# A path written into an attribute: href="/files", action="/x", data-file-page="/files/".
WRITTEN_PATH = re.compile(r'\b(?:href|action|src|data-[\w-]+)="/')


def test_the_templates_are_found() -> None:
    assert len(TEMPLATES) > 10


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda path: str(path.relative_to(PROJECT_DIR)))
def test_a_page_links_by_route_name_never_by_a_written_path(template: Path) -> None:
    written = [line.strip() for line in template.read_text().splitlines() if WRITTEN_PATH.search(line)]
    assert written == [], "use {% url %} (or {% nav_link %}) instead"


def test_the_status_badge_is_written_in_one_partial_only() -> None:
    writers = [
        str(template.relative_to(PROJECT_DIR))
        for template in TEMPLATES
        if re.search(r'class="[^"]*\bstatus-badge\b', template.read_text())
    ]
    assert writers == ["templates/partials/status_badge.html"]


def render(source: str, path: str = "/", **context: object) -> str:
    request = RequestFactory().get(path)
    return Template("{% load pages %}" + source).render(Context({"request": request, **context}))


def test_the_badge_carries_its_status_for_the_stylesheet_and_scripts_and_a_readable_label() -> None:
    assert render('{% status_badge "in_progress" %}') == (
        '<span class="status-badge" data-status="in_progress">In progress</span>'
    )
    assert render('{% status_badge "failed" "Failed" %}') == (
        '<span class="status-badge" data-status="failed">Failed</span>'
    )
    # Labels come from data (file names, token names): escaped, never markup.
    assert "&lt;b&gt;" in render('{% status_badge "ok" name %}', name="<b>")


@pytest.mark.parametrize(
    ("path", "current"),
    [
        ("/files", True),
        ("/files/12", True),
        ("/files?status=failed", True),
        ("/filesystem", False),
        ("/", False),
    ],
)
def test_a_nav_link_marks_its_page_and_the_pages_under_it_as_current(path: str, current: bool) -> None:
    html = render('{% nav_link "files" "Files" %}', path)
    assert html.startswith('<a class="nav-link" href="/files"')
    assert ('aria-current="page"' in html) is current


def test_the_dashboard_link_is_current_on_the_front_page_only() -> None:
    assert 'aria-current="page"' in render('{% nav_link "dashboard" "Dashboard" %}', "/")
    assert 'aria-current="page"' not in render('{% nav_link "dashboard" "Dashboard" %}', "/files")
