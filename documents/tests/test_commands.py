"""The ``ingest`` and ``reprocess`` management commands, run in process with the real engines."""

from __future__ import annotations

import io
import json
import shutil

import pytest
from django.core.management import CommandError, call_command

from documents.models import Document, DocumentStatus, ProcessingStep, StepStatus
from documents.pipeline.base import StepFailed
from documents.pipeline.steps import PIPELINE, STEP_NAMES

pytestmark = pytest.mark.django_db

OCR = STEP_NAMES.index("ocr")
ELF_BINARY = b"\x7fELF\x02\x01\x01" + b"\0" * 100


@pytest.fixture
def superuser(operator):
    operator.is_superuser = True
    operator.save(update_fields=["is_superuser"])
    return operator


def ingest_json(*args: str) -> list[dict]:
    """Run ``ingest --sync --json ARGS`` and return the objects it printed, one per file."""
    out = io.StringIO()
    call_command("ingest", "--sync", "--json", *args, stdout=out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def reprocess(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("reprocess", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def fail_ocr(monkeypatch, message: str = "The OCR engine is not installed.") -> None:
    def broken(context):
        raise StepFailed(message)

    monkeypatch.setattr(PIPELINE[OCR], "run", broken)


def step_of(document: Document, name: str) -> ProcessingStep:
    return ProcessingStep.objects.get(document=document, name=name)


# --- ingest --------------------------------------------------------------------------------


def test_ingest_sync_json_prints_one_completed_document_per_file(engines, owner, trivial, document_storage):
    [result] = ingest_json("--owner", "owner", str(trivial))

    assert result == {
        "path": str(trivial),
        "document_id": result["document_id"],
        "status": "completed",
        "error": None,
    }
    document = Document.objects.get(pk=result["document_id"])
    assert document.status == DocumentStatus.COMPLETED
    assert document.owner == owner
    assert document.source == "ingest"
    assert (document_storage / document.processed_file).exists()


def test_ingest_without_owner_files_documents_under_the_first_operator(
    engines, superuser, trivial, document_storage
):
    [result] = ingest_json(str(trivial))
    assert Document.objects.get(pk=result["document_id"]).owner == superuser


def test_ingest_without_owner_and_without_an_operator_account_is_refused(owner, trivial, document_storage):
    with pytest.raises(CommandError, match="No operator account exists"):
        call_command("ingest", "--sync", str(trivial), stdout=io.StringIO())
    assert not Document.objects.exists()


def test_ingest_with_an_unknown_owner_is_refused(owner, trivial, document_storage):
    with pytest.raises(CommandError, match="No user named 'nobody'"):
        call_command("ingest", "--sync", "--owner", "nobody", str(trivial), stdout=io.StringIO())
    assert not Document.objects.exists()


def test_ingest_of_a_missing_path_is_refused(owner, tmp_path, document_storage):
    with pytest.raises(CommandError, match="is neither a file nor a folder"):
        call_command("ingest", "--sync", "--owner", "owner", str(tmp_path / "nope.pdf"), stdout=io.StringIO())


def test_ingest_of_a_folder_ingests_every_file_in_it_but_hidden_ones(
    engines, owner, samples, tmp_path, document_storage
):
    inbox = tmp_path / "inbox"
    (inbox / "scans").mkdir(parents=True)
    shutil.copy(samples / "blank.pdf", inbox / "a.pdf")
    shutil.copy(samples / "no-docinfo.pdf", inbox / "scans" / "b.pdf")
    (inbox / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")

    results = ingest_json("--owner", "owner", str(inbox))

    assert [(result["path"], result["status"], result["error"]) for result in results] == [
        (str(inbox / "a.pdf"), "completed", None),
        (str(inbox / "scans" / "b.pdf"), "completed", None),
    ]
    names = set(Document.objects.values_list("original_filename", flat=True))
    assert names == {"a.pdf", "b.pdf"}


def test_ingest_reports_a_second_copy_as_a_duplicate_and_does_not_process_it(
    engines, owner, trivial, tmp_path, document_storage
):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(trivial, inbox / "a.pdf")
    shutil.copy(trivial, inbox / "b.pdf")

    first, second = ingest_json("--owner", "owner", str(inbox))  # no SystemExit: nothing failed

    assert (first["status"], second["status"], second["error"]) == ("completed", "duplicate", None)
    duplicate = Document.objects.get(pk=second["document_id"])
    assert duplicate.duplicate_of_id == first["document_id"]
    assert not duplicate.steps.exists()


def test_ingest_of_a_file_that_fails_reports_the_reason_and_exits_with_status_1(
    engines, owner, trivial, tmp_path, document_storage
):
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    out = io.StringIO()

    with pytest.raises(SystemExit) as exit_info:
        call_command("ingest", "--sync", "--json", "--owner", "owner", str(empty), str(trivial), stdout=out)

    assert exit_info.value.code == 1
    failed, completed = (json.loads(line) for line in out.getvalue().splitlines())
    assert (failed["status"], failed["error"]) == ("failed", "The file is empty.")
    assert Document.objects.get(pk=failed["document_id"]).status == DocumentStatus.FAILED
    assert completed["status"] == "completed"  # the other file is not held back by the failure


def test_ingest_reports_an_unsupported_file_with_its_reason_and_creates_no_document(
    owner, tmp_path, document_storage
):
    binary = tmp_path / "tool.bin"
    binary.write_bytes(ELF_BINARY)
    out = io.StringIO()

    with pytest.raises(SystemExit) as exit_info:
        call_command("ingest", "--sync", "--json", "--owner", "owner", str(binary), stdout=out)

    assert exit_info.value.code == 1
    [result] = [json.loads(line) for line in out.getvalue().splitlines()]
    assert result["document_id"] is None
    assert result["status"] is None
    assert "are not supported" in result["error"]
    assert not Document.objects.exists()


def test_ingest_without_json_prints_a_readable_line_per_file(
    engines, owner, trivial, tmp_path, document_storage
):
    binary = tmp_path / "tool.bin"
    binary.write_bytes(ELF_BINARY)
    out = io.StringIO()

    with pytest.raises(SystemExit):
        call_command("ingest", "--sync", "--owner", "owner", str(trivial), str(binary), stdout=out)

    document = Document.objects.get()
    good, refused = out.getvalue().splitlines()
    assert good == f"{trivial}: document {document.pk} completed"
    assert refused.startswith(f"{binary}: document None refused Files of type ")


def test_ingest_without_sync_queues_the_first_step_after_commit_and_does_not_process(
    owner, trivial, sent, document_storage, django_capture_on_commit_callbacks
):
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("ingest", "--json", "--owner", "owner", str(trivial), stdout=out)

    [result] = [json.loads(line) for line in out.getvalue().splitlines()]
    assert result["status"] == "pending"
    assert [call["args"] for call in sent] == [(result["document_id"], "convert")]


# --- reprocess -----------------------------------------------------------------------------


def test_reprocess_failed_sync_reprocesses_only_the_failed_documents(
    owner, samples, process, monkeypatch, document_storage
):
    completed = process(samples / "blank.pdf")
    fail_ocr(monkeypatch)
    failed = process(samples / "no-docinfo.pdf")
    assert failed.status == DocumentStatus.FAILED
    still_broken = process(b"", "empty.pdf")
    completed_logs = list(completed.logs.values_list("id", flat=True))
    monkeypatch.undo()  # the cause of the OCR failure is fixed

    out, err = reprocess("--failed", "--sync")

    assert out.splitlines() == [
        f"document {failed.pk}: completed",
        f"document {still_broken.pk}: failed The file is empty.",
    ]
    assert err == ""
    assert Document.objects.get(pk=failed.pk).status == DocumentStatus.COMPLETED
    assert Document.objects.get(pk=failed.pk).processed_file
    assert list(completed.logs.values_list("id", flat=True)) == completed_logs  # left alone
    assert step_of(completed, "convert").attempts == 1


def test_reprocess_of_one_document_from_a_step_reruns_that_step_and_the_ones_after_it(
    process, trivial, document_storage
):
    document = process(trivial)
    logs_before = document.logs.count()

    out, _err = reprocess("--id", str(document.pk), "--step", "extract_metadata", "--sync")

    assert out == f"document {document.pk}: completed\n"
    rerun = list(document.logs.values_list("step_name", "status")[logs_before:])
    assert rerun == [
        ("extract_metadata", StepStatus.PENDING),
        ("extract_metadata", StepStatus.IN_PROGRESS),
        ("extract_metadata", StepStatus.SUCCESS),
        ("embed_metadata", StepStatus.IN_PROGRESS),
        ("embed_metadata", StepStatus.SUCCESS),
        ("finalize", StepStatus.IN_PROGRESS),
        ("finalize", StepStatus.SUCCESS),
    ]
    attempts = dict(document.steps.values_list("name", "attempts"))
    assert (attempts["convert"], attempts["ocr"]) == (1, 1)  # the earlier steps are kept
    processed = sorted(path.name for path in (document_storage / "processed" / document.uuid.hex).iterdir())
    assert processed == ["blank.json", "blank.pdf", "thumbnail.png"]
    assert [path.name for path in (document_storage / "processed").iterdir()] == [document.uuid.hex]


def test_reprocess_from_a_step_after_a_failed_one_is_refused_with_the_reason(
    process, trivial, monkeypatch, document_storage
):
    fail_ocr(monkeypatch)
    document = process(trivial)

    out, err = reprocess("--id", str(document.pk), "--step", "finalize", "--sync")

    assert out == ""
    assert err == f"document {document.pk}: The ocr step has not succeeded yet; retry that step first.\n"
    assert Document.objects.get().status == DocumentStatus.FAILED


def test_reprocess_of_an_unknown_document_or_a_duplicate_is_refused(ingest, trivial, document_storage):
    ingest(trivial)
    duplicate = ingest(trivial, "again.pdf")
    with pytest.raises(CommandError, match="No document 999999"):
        reprocess("--id", "999999")
    with pytest.raises(CommandError, match=f"No document {duplicate.pk} \\(or it is a duplicate\\)"):
        reprocess("--id", str(duplicate.pk))


def test_reprocess_without_sync_queues_the_first_step_with_forced_ocr(
    process, trivial, sent, django_capture_on_commit_callbacks
):
    document = process(trivial)
    with django_capture_on_commit_callbacks(execute=True):
        reprocess("--id", str(document.pk), "--force-ocr")
    assert [(call["args"], call["kwargs"]) for call in sent] == [
        ((document.pk, "convert"), {"force_ocr": True})
    ]


def test_reprocess_from_the_ocr_step_with_forced_ocr_hands_forced_ocr_to_the_worker(
    process, trivial, sent, django_capture_on_commit_callbacks
):
    document = process(trivial)
    with django_capture_on_commit_callbacks(execute=True):
        reprocess("--id", str(document.pk), "--step", "ocr", "--force-ocr")
    assert [(call["args"], call["kwargs"]) for call in sent] == [((document.pk, "ocr"), {"force_ocr": True})]


def test_reprocess_without_sync_reports_the_document_as_queued_not_with_its_old_failure(
    process, trivial, sent, monkeypatch, document_storage, django_capture_on_commit_callbacks
):
    fail_ocr(monkeypatch, "The OCR engine is not installed.")
    document = process(trivial)
    assert document.status == DocumentStatus.FAILED

    with django_capture_on_commit_callbacks(execute=True):
        out, _err = reprocess("--failed")

    assert len(sent) == 1
    assert out == f"document {document.pk}: pending\n"
