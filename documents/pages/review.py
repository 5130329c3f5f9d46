"""/review, the review inbox: one document at a time, confirm or correct, then the next.

Thin: the queue is ``documents.organise.review.review_queue`` (through ``visible_to``), a
confirmation is ``document_review`` (the one edit service underneath). The keyboard
(static/js/review.js) only clicks what the page offers without it.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.access import viewer_for_request
from docuelevate.errors import ApplicationError
from documents.models import ChangeOrigin, Correspondent, Document, DocumentType, Tag
from documents.organise.review import document_review, review_queue

# The page counts and steps through this many waiting documents; beyond, the count alone.
QUEUE_WINDOW = 1000


class ReviewForm(forms.Form):
    """The fields a person confirms, as the document has them; choices are the owner's and the
    global entries (the edit service checks them again)."""

    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    document_title = forms.CharField(max_length=255, label="Title")
    document_type = forms.ModelChoiceField(queryset=DocumentType.objects.none(), required=False, label="Type")
    correspondent = forms.ModelChoiceField(
        queryset=Correspondent.objects.none(), required=False, label="Correspondent"
    )
    document_date = forms.DateField(
        required=False, label="Date", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    tags = forms.ModelMultipleChoiceField(
        queryset=Tag.objects.none(), required=False, widget=forms.CheckboxSelectMultiple, label="Tags"
    )

    def __init__(self, *args: Any, document: Document, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        usable = Q(owner__isnull=True) | Q(owner_id=document.owner_id)
        fields: dict[str, Any] = self.fields
        fields["document_type"].queryset = DocumentType.objects.filter(usable).order_by("name")
        fields["correspondent"].queryset = Correspondent.objects.filter(usable).order_by("name")
        fields["tags"].queryset = Tag.objects.filter(usable).order_by("name")

    @classmethod
    def for_document(cls, document: Document) -> ReviewForm:
        return cls(
            document=document,
            initial={
                "version": document.version,
                "document_title": document.document_title or document.original_filename,
                "document_type": document.document_type_id,
                "correspondent": document.correspondent_id,
                "document_date": document.document_date,
                # Confirming takes the inbox tags off: they are not offered as ticked.
                "tags": [tag.pk for tag in document.tags.all() if not tag.is_inbox],
            },
        )

    def corrections(self) -> dict[str, Any]:
        """The fields as the edit service takes them (unchanged ones are no change)."""
        data = self.cleaned_data
        return {
            "document_title": data["document_title"],
            "document_type": data["document_type"].pk if data["document_type"] else None,
            "correspondent": data["correspondent"].pk if data["correspondent"] else None,
            "document_date": data["document_date"],
            "tags": [tag.pk for tag in data["tags"]],
        }


def _position(ids: list[int], document_id: int | None) -> int:
    return ids.index(document_id) if document_id in ids else 0


@login_required
def review_page(request: HttpRequest) -> HttpResponse:
    """The document ``?id=`` names (when it waits), else the first waiting one."""
    viewer = viewer_for_request(request)
    queue = review_queue(viewer=viewer)
    # Ids only: a queue of thousands costs one narrow query, and the page shows one document.
    ids = list(queue.values_list("pk", flat=True)[:QUEUE_WINDOW])
    total = queue.count() if len(ids) == QUEUE_WINDOW else len(ids)
    raw = request.GET.get("id", "")
    index = _position(ids, int(raw) if raw.isdigit() else None)
    shown = queue.select_related("document_type", "correspondent").prefetch_related("tags")
    document = shown.filter(pk=ids[index]).first() if ids else None
    return _render(request, document=document, ids=ids, index=index, total=total)


def _render(
    request: HttpRequest,
    *,
    document: Document | None,
    ids: list[int],
    index: int,
    total: int,
    form: ReviewForm | None = None,
    status: int = 200,
) -> HttpResponse:
    context: dict[str, Any] = {"document": document, "total": total, "position": index + 1}
    if document is not None:
        suggestions = document.metadata.get("suggestions", {}) if isinstance(document.metadata, dict) else {}
        context.update(
            form=form or ReviewForm.for_document(document),
            suggestions=suggestions,
            tag_suggestions=suggestions.get("tags", []),
            inbox_tags=[tag for tag in document.tags.all() if tag.is_inbox],
            previous_id=ids[index - 1] if index > 0 else None,
            next_id=ids[index + 1] if index + 1 < len(ids) else None,
        )
    return render(request, "documents/review.html", context, status=status)


@login_required
@require_POST
def review_confirm(request: HttpRequest, document_id: int) -> HttpResponse:
    """Confirm the document with the form's fields, then show the next one waiting."""
    viewer = viewer_for_request(request)
    queue = review_queue(viewer=viewer)
    document = queue.prefetch_related("tags").filter(pk=document_id).first()
    if document is None:
        # Reviewed meanwhile (another tab), or never there: the queue goes on.
        messages.info(request, "That document no longer waits for review.")
        return redirect("review")
    form = ReviewForm(request.POST, document=document)
    if form.is_valid():
        try:
            document_review(
                viewer=viewer,
                document_id=document_id,
                corrections=form.corrections(),
                expected_version=form.cleaned_data["version"],
                origin=ChangeOrigin.PAGE,
            )
        except ApplicationError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, f"Confirmed {document.document_title or document.original_filename}.")
            following = queue.filter(
                Q(created_at__gt=document.created_at) | Q(created_at=document.created_at, pk__gt=document.pk)
            ).values_list("pk", flat=True)
            next_id = following.first()
            return redirect(f"{reverse('review')}?id={next_id}" if next_id else reverse("review"))
    ids = list(queue.values_list("pk", flat=True)[:QUEUE_WINDOW])
    return _render(
        request, document=document, ids=ids, index=_position(ids, document_id), total=len(ids), form=form,
        status=400,
    )  # fmt: skip
