"""Filtering the files list by a custom field in a real browser (Debian's Chromium through
Playwright), against gunicorn under the strict Content-Security-Policy."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from accounts.models import User
from conftest import BrowserPage, LiveServer, current_database_url, set_password_as_server
from documents.models import CustomField, CustomFieldType, CustomFieldValue
from documents.tests.factories import DocumentFactory

PASSWORD = "a-browser-tested-passphrase-cf"
STEP_MS = 30_000


def test_a_person_filters_the_files_by_a_money_range_of_a_custom_field(
    owner: User,
    process_env: dict[str, str],
    transactional_db: None,
    start_gunicorn: Callable[[dict[str, str]], LiveServer],
    browser_page: BrowserPage,
) -> None:
    total = CustomField.objects.create(
        owner=owner, name="Total", data_type=CustomFieldType.MONETARY, default_currency="EUR"
    )
    amounts = {"cheap.pdf": "12.50", "middle.pdf": "240.00", "dear.pdf": "1999.99"}
    for filename, amount in amounts.items():
        document = DocumentFactory.create(owner=owner, original_filename=filename, document_title=filename)
        CustomFieldValue.objects.create(
            document=document, field=total, value_decimal=Decimal(amount), value_currency="EUR"
        )
    DocumentFactory.create(owner=owner, original_filename="without.pdf", document_title="without.pdf")
    env = {**process_env, "DATABASE_URL": current_database_url(), "SECURITY_HEADERS_ENABLED": "true"}
    set_password_as_server(env, owner, PASSWORD)
    server = start_gunicorn(env)
    page = browser_page.page
    page.set_default_timeout(STEP_MS)
    browser_page.sign_in(server, owner.username, PASSWORD, then="/files")

    page.get_by_label("Custom field", exact=True).first.select_option(value=str(total.pk))
    page.get_by_label("Custom field from").fill("100")
    page.get_by_label("Custom field to").fill("500")
    page.get_by_role("button", name="Filter").click()

    page.wait_for_url(f"{server.url}/files?**cf_min=100**")
    listed = page.locator("#bulk-form tbody tr").all_inner_texts()
    assert len(listed) == 1
    assert "middle.pdf" in listed[0]
    assert browser_page.problems == []
