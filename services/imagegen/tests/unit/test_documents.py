"""The stored shapes of jobs and gallery images (imagegen/documents.py) match what is written."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from imagegen.documents import AssetRef, ImageDoc, JobDoc
from imagegen.providers.base import GeneratedImage
from imagegen.repository import image_document, record_of, view_of

pytestmark = pytest.mark.unit

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def job() -> JobDoc:
    return {
        "_id": str(uuid.uuid4()),
        "userId": "u1",
        "userEmail": "u1@example.com",
        "userName": "u1",
        "role": "user",
        "requestId": "r1",
        "prompt": "a lighthouse",
        "name": "lighthouse",
        "model": "m",
        "size": "256x256",
        "cost": 5,
        "charged": 5,
        "imageId": str(uuid.uuid4()),
        "reservationId": str(uuid.uuid4()),
        "status": "succeeded",
        "stage": "done",
        "progress": 100,
        "version": 7,
        "attempts": 1,
        "lease": None,
        "leaseUntil": NOW,
        "deadline": NOW + timedelta(minutes=3),
        "createdAt": NOW,
        "updatedAt": NOW,
        "asset": AssetRef(backend="local", key="u1/x"),
        "url": "/files/images/u1/x.png",
    }


def test_a_gallery_document_has_exactly_the_fields_its_type_names() -> None:
    image = GeneratedImage(data=b"png", format="png", width=256, height=256)
    doc = image_document(job(), image, now=NOW)
    assert set(doc) == ImageDoc.__required_keys__ and not ImageDoc.__optional_keys__
    assert doc["status"] == "pending" and doc["storage"] == {"backend": "local", "key": "u1/x"}


def test_a_job_missing_no_required_field_reads_as_its_view() -> None:
    doc = job()
    assert JobDoc.__required_keys__ <= set(doc)
    view = view_of(doc)
    assert view.status == "succeeded" and view.url == doc["url"] and str(view.image_id) == doc["imageId"]


def test_only_a_ready_image_reads_as_a_gallery_record() -> None:
    image = image_document(job(), GeneratedImage(data=b"png", format="png", width=256, height=256), now=NOW)
    with pytest.raises(ValueError, match="pending"):
        record_of(image)
    assert record_of({**image, "status": "ready"}).status == "ready"
