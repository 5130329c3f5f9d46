"""The search page's forms: they check shapes; the rules live in search.services."""

from __future__ import annotations

from django import forms

from docuelevate.bounds import MAX_ID, MAX_PAGE
from search.query import MAX_QUERY_LENGTH


class SearchForm(forms.Form):
    q = forms.CharField(required=False, strip=False, label="Search")
    document_type = forms.CharField(required=False)
    tags = forms.CharField(required=False)
    correspondent = forms.CharField(required=False)
    year = forms.IntegerField(required=False, min_value=1000, max_value=9999)
    date_from = forms.DateField(required=False)
    date_to = forms.DateField(required=False)
    # A tag's id (with the tags nested under it), a custom field's id and its value or range.
    tag_tree = forms.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    custom_field = forms.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    cf_value = forms.CharField(required=False, max_length=2048)
    cf_min = forms.CharField(required=False, max_length=40)
    cf_max = forms.CharField(required=False, max_length=40)
    page = forms.IntegerField(required=False, min_value=1, max_value=MAX_PAGE)


class SaveSearchForm(forms.Form):
    name = forms.CharField(max_length=100, label="Save this search as")
    q = forms.CharField(required=False, strip=False, max_length=MAX_QUERY_LENGTH)
    document_type = forms.CharField(required=False)
    tags = forms.CharField(required=False)
    correspondent = forms.CharField(required=False)
