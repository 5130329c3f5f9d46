"""The /search page: one box, highlighted results, facets, pages, saved searches."""

from __future__ import annotations

import datetime
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.access import signed_in_user, viewer_for_request
from docuelevate.errors import ApplicationError
from search.backends.base import SearchFilters
from search.models import SavedSearch
from search.pages.forms import SaveSearchForm, SearchForm
from search.selectors import saved_search_list, search
from search.services import saved_search_create

PER_PAGE = 20
CUSTOM_VALUE_OFF: dict[str, Any] = {"cf_value": None, "cf_min": None, "cf_max": None}
FACET_TITLES = {"document_type": "Type", "tags": "Tags", "correspondent": "Correspondent", "year": "Year"}


def _filters(data: dict[str, Any]) -> SearchFilters:
    year = data.get("year")
    if year:  # a year facet is a date range
        data = {**data, "date_from": datetime.date(year, 1, 1), "date_to": datetime.date(year, 12, 31)}
    return SearchFilters.from_values(data)


def _link(params: dict[str, Any], **changes: Any) -> str:
    """The page's URL with some parameters changed (None removes one); back to page 1."""
    merged = {**params, **changes, "page": changes.get("page")}
    return "?" + urlencode({name: value for name, value in merged.items() if value not in (None, "")})


def _saved_link(saved: SavedSearch) -> str:
    filters = {
        name: ",".join(value) if isinstance(value, list) else value for name, value in saved.filters.items()
    }
    return _link({"q": saved.query, **filters})


@login_required
def search_page(request: HttpRequest) -> HttpResponse:
    user = signed_in_user(request)
    form = SearchForm(request.GET)
    context: dict[str, Any] = {
        "form": form,
        "saved_searches": [(saved.name, _saved_link(saved)) for saved in saved_search_list(user=user)],
    }
    if not form.is_valid():
        return render(request, "search/search.html", context, status=400)
    data = form.cleaned_data
    params = {
        name: request.GET.get(name, "")
        for name in (
            "q", "document_type", "tags", "correspondent", "year", "tag_tree", "custom_field", "cf_value",
            "cf_min", "cf_max",
        )
    }  # fmt: skip
    try:
        found = search(
            viewer=viewer_for_request(request),
            query=data["q"],
            filters=_filters(data),
            page=data["page"] or 1,
            per_page=PER_PAGE,
        )
    except ApplicationError as error:
        context["error"] = error.message
        return render(request, "search/search.html", context, status=error.status_code)
    facet_field = {
        "tags": "tags",
        "document_type": "document_type",
        "correspondent": "correspondent",
        "year": "year",
    }
    context.update(
        found=found,
        params=params,
        facets=[
            (
                FACET_TITLES[name],
                [(value, count, _link(params, **{facet_field[name]: value})) for value, count in values],
            )
            for name, values in found.facets.items()
            if values
        ]
        + [
            # A custom field's value narrows to the documents with it (custom_field, cf_value).
            (
                facet.field.name,
                [
                    (
                        value,
                        count,
                        _link(params, custom_field=facet.field.id, cf_value=value, cf_min=None, cf_max=None),
                    )
                    for value, count in facet.values
                ],
            )
            for facet in found.custom_facets
            if facet.values
        ],
        active_filters=[
            # Without its field a custom field's value means nothing: they go together.
            (
                name,
                value,
                _link(params, **{name: None}, **(CUSTOM_VALUE_OFF if name == "custom_field" else {})),
            )
            for name, value in params.items()
            if value and name != "q"
        ],
        previous_link=_link(params, page=found.page - 1) if found.page > 1 else None,
        next_link=_link(params, page=found.page + 1) if found.page < found.pages else None,
    )
    return render(request, "search/search.html", context)


@login_required
@require_POST
def save_search(request: HttpRequest) -> HttpResponse:
    form = SaveSearchForm(request.POST)
    back = reverse("search")
    if not form.is_valid():
        messages.error(request, "Give the search a name of at most 100 characters.")
        return HttpResponseRedirect(back)
    data = form.cleaned_data
    filters = {name: data[name] for name in ("document_type", "correspondent") if data[name]}
    if data["tags"]:
        filters["tags"] = [tag.strip() for tag in data["tags"].split(",") if tag.strip()]
    user = signed_in_user(request)
    try:
        saved = saved_search_create(user=user, name=data["name"], query=data["q"], filters=filters)
    except ApplicationError as error:
        messages.error(request, error.message)
        return HttpResponseRedirect(back)
    messages.success(request, f"Saved as {saved.name!r}.")
    return HttpResponseRedirect(
        back + _link({"q": saved.query, **{k: v for k, v in data.items() if k in filters}})
    )
