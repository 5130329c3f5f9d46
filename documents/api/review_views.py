"""The review inbox's API: GET /api/review (the queue) and POST /api/files/{id}/review
(confirm, with optional corrections). Thin: the rules are in documents.organise.review."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.access import viewer_for_request
from docuelevate.api import ErrorOutputSerializer, validated_body, validated_query
from documents.api import review_serializers as r
from documents.api.organise_views import DOCUMENT_ID, ERRORS, if_match_version, path_id
from documents.models import ChangeOrigin, Document, DocumentQuerySet
from documents.organise.review import document_review, review_queue
from documents.selectors import document_page


def _queue(request: Request) -> DocumentQuerySet:
    return (
        review_queue(viewer=viewer_for_request(request))
        .select_related("document_type", "correspondent")
        .prefetch_related("tags")
    )


class ReviewQueueView(APIView):
    """The documents waiting for review (unsure extraction or an inbox tag), oldest first."""

    @extend_schema(
        operation_id="review_list",
        tags=["review"],
        parameters=[r.ReviewQueueInputSerializer],
        responses={200: r.ReviewQueueOutputSerializer, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        query = validated_query(r.ReviewQueueInputSerializer, request)
        page = document_page(_queue(request), page=query["page"], per_page=query["per_page"])
        return Response(r.ReviewQueueOutputSerializer(page).data)


class FileReviewView(APIView):
    """Confirm a document in the review inbox, with corrections if any: its inbox tags come
    off and it leaves the queue."""

    @extend_schema(
        operation_id="files_review",
        tags=["review"],
        parameters=[DOCUMENT_ID],
        request=r.ReviewInputSerializer,
        responses={200: r.ReviewOutputSerializer, 412: OpenApiResponse(ErrorOutputSerializer), **ERRORS},
    )
    def post(self, request: Request, document_id: str) -> Response:
        corrections = validated_body(r.ReviewInputSerializer, request)
        expected = if_match_version(request)
        body_version = corrections.pop("version", None)
        viewer = viewer_for_request(request)
        document = document_review(
            viewer=viewer,
            document_id=path_id(document_id, "document"),
            corrections=corrections,
            expected_version=expected if expected is not None else body_version,
            origin=ChangeOrigin.API,
        )
        reviewed = (
            Document.objects.select_related("document_type", "correspondent")
            .prefetch_related("tags")
            .get(pk=document.pk)
        )
        queue = review_queue(viewer=viewer)
        answer = {
            "reviewed": reviewed,
            "next": queue.values_list("pk", flat=True).first(),
            "remaining": queue.count(),
        }
        return Response(r.ReviewOutputSerializer(answer).data)
