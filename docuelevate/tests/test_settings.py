"""Start-up refuses bad configuration with a message naming the variable.

Each case starts a fresh ``manage.py check`` process, as an operator would see it.
"""

from __future__ import annotations

import pytest

from conftest import run_manage

STRONG_SECRET = "Yk2vP9wq-Lr57XnT0cZs8mUe3bHa1jDf6gQ4tN"


@pytest.fixture
def clean_env(embedded_env):
    for name in ("SESSION_SECRET", "SESSION_SECRET_FILE", "DEBUG", "ADMIN_PASSWORD", "AUTH_ENABLED"):
        embedded_env.pop(name, None)
    embedded_env["SESSION_SECRET"] = STRONG_SECRET
    return embedded_env


def test_a_good_configuration_starts(clean_env):
    result = run_manage(clean_env, "check")
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"SESSION_SECRET": ""}, "SESSION_SECRET is required when DEBUG=false"),
        ({"SESSION_SECRET": "changeme"}, "SESSION_SECRET is not acceptable: it is a well-known placeholder"),
        ({"SESSION_SECRET": "tooshort-x81"}, "SESSION_SECRET is not acceptable: it is shorter than 32"),
        ({"AUTH_ENABLED": "flase"}, "AUTH_ENABLED='flase' is not a boolean"),
        ({"AUTH_ENABLED": "false"}, "AUTH_ENABLED=false opens every document"),
        ({"DATABASE_URL": "mysql://root@localhost/db"}, "DATABASE_URL uses 'django.db.backends.mysql'"),
        ({"DATABASE_URL": "nonsense://x"}, "DATABASE_URL is not a database URL"),
        ({"MAX_REQUEST_BODY_SIZE": "1MB"}, "MAX_REQUEST_BODY_SIZE='1MB' is not a whole number"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT='xml' is not one of text, json"),
        (
            {"ACCOUNT_EMAIL_UNKNOWN_ACCOUNTS": "maybe"},
            "ACCOUNT_EMAIL_UNKNOWN_ACCOUNTS='maybe' is not a boolean",
        ),
        ({"ADMIN_PASSWORD": "changeme"}, "ADMIN_PASSWORD is not acceptable"),
        ({"ADMIN_PASSWORD": "short-Pw1"}, "ADMIN_PASSWORD is not acceptable: it is shorter than 12"),
        ({"OIDC_RP_CLIENT_ID": "docuelevate"}, "OIDC_RP_CLIENT_ID is set but OIDC_RP_CLIENT_SECRET is not"),
        (
            {"OIDC_RP_CLIENT_ID": "docuelevate", "OIDC_RP_CLIENT_SECRET": "s3cret-value"},
            "Single sign-on needs OIDC_OP_DISCOVERY_URL",
        ),
        ({"SSO_AUTO_LOGIN": "true"}, "SSO_AUTO_LOGIN=true needs single sign-on"),
        (
            {"GOOGLE_CLIENT_ID": "abc.apps.googleusercontent.com"},
            "GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET go together",
        ),
        ({"ACCOUNT_EMAIL_VERIFICATION": "sometimes"}, "is not one of none, optional, mandatory"),
        ({"EMAIL_USE_SSL": "true"}, "EMAIL_USE_TLS and EMAIL_USE_SSL are both true"),
        (
            {"URL_FETCH_CA_BUNDLE": "/nonexistent/intranet-ca.pem"},
            "URL_FETCH_CA_BUNDLE: /nonexistent/intranet-ca.pem is not a file",
        ),
        ({"S3_ENABLED": "true"}, "S3_ENABLED=true needs S3_BUCKET_NAME"),
        (
            {"FTP_ENABLED": "true", "FTP_HOST": "files.example.org"},
            "FTP_ENABLED=true needs FTP_HOST and FTP_USERNAME",
        ),
        (
            {
                "FTP_ENABLED": "true",
                "FTP_HOST": "files.example.org",
                "FTP_USERNAME": "scan",
                "FTP_USE_TLS": "false",
            },
            "set FTP_ALLOW_PLAINTEXT=true as well",
        ),
        (
            {"FTP_CA_BUNDLE": "/nonexistent/nas-ca.pem"},
            "FTP_CA_BUNDLE: /nonexistent/nas-ca.pem is not a file",
        ),
        (
            {"SFTP_ENABLED": "true", "SFTP_HOST": "nas.example.org", "SFTP_USERNAME": "scan"},
            "needs SFTP_PRIVATE_KEY or SFTP_PASSWORD",
        ),
        (
            {
                "SFTP_ENABLED": "true",
                "SFTP_HOST": "nas.example.org",
                "SFTP_USERNAME": "scan",
                "SFTP_PRIVATE_KEY": "/nonexistent/id_ed25519",
            },
            "SFTP_PRIVATE_KEY is neither a private key",
        ),
        (
            {"S3_ENABLED": "true", "S3_BUCKET_NAME": "archive", "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE"},
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY go together",
        ),
        ({"PUBLIC_BASE_URL": "docs.example.com"}, "PUBLIC_BASE_URL must be an http:// or https:// address"),
        ({"DROPBOX_ENABLED": "true"}, "DROPBOX_ENABLED=true needs DROPBOX_APP_KEY and DROPBOX_APP_SECRET"),
        (
            {
                "GOOGLE_DRIVE_ENABLED": "true",
                "GOOGLE_DRIVE_CREDENTIALS_JSON": '{"private_key": "not-a-key-file"}',
            },
            "GOOGLE_DRIVE_CREDENTIALS_JSON is not a service account's key",
        ),
        (
            {"ONEDRIVE_ENABLED": "true"},
            "ONEDRIVE_ENABLED=true needs ONEDRIVE_CLIENT_ID and ONEDRIVE_CLIENT_SECRET",
        ),
        ({"WEBDAV_ENABLED": "true"}, "WEBDAV_ENABLED=true needs WEBDAV_URL"),
        ({"WEBDAV_VERIFY_SSL": "nope"}, "WEBDAV_VERIFY_SSL='nope' is not a boolean"),
        (
            {"NEXTCLOUD_ENABLED": "true", "NEXTCLOUD_UPLOAD_URL": "https://cloud.example.com"},
            "NEXTCLOUD_ENABLED=true needs NEXTCLOUD_UPLOAD_URL, NEXTCLOUD_USERNAME and NEXTCLOUD_PASSWORD",
        ),
        ({"DEST_EMAIL_ENABLED": "true"}, "DEST_EMAIL_ENABLED=true needs DEST_EMAIL_HOST"),
        (
            {
                "DEST_EMAIL_ENABLED": "true",
                "DEST_EMAIL_HOST": "smtp.example.org",
                "DEST_EMAIL_DEFAULT_RECIPIENT": "archive@example.org",
            },
            "DEST_EMAIL_ENABLED=true needs DEST_EMAIL_SENDER",
        ),
        ({"DEST_EMAIL_PORT": "70000"}, "DEST_EMAIL_PORT=70000 is above the maximum of 65535"),
        # An unset <KIND>_ENABLED follows the kind's address, as in .env files from before
        # the switches: the address alone turns delivery on, and its rules with it.
        ({"FTP_HOST": "ftp.example.com"}, "FTP_ENABLED=true needs FTP_HOST and FTP_USERNAME"),
        ({"DEST_EMAIL_HOST": "smtp.example.org"}, "DEST_EMAIL_ENABLED=true needs DEST_EMAIL_HOST"),
        ({"FILENAME_FORMAT": "{created_year}/{nope}"}, "FILENAME_FORMAT: The filename template uses {nope}"),
        ({"FILENAME_FORMAT": "{title}/../{owner}"}, "FILENAME_FORMAT: The filename template contains a ."),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_variable(clean_env, overrides, message):
    clean_env.update(overrides)
    result = run_manage(clean_env, "check")
    assert result.returncode != 0
    assert message in result.stderr
    if overrides.get("SESSION_SECRET"):
        assert overrides["SESSION_SECRET"] not in result.stderr
    assert "not-a-key-file" not in result.stderr


def test_single_user_mode_is_allowed_when_explicitly_accepted(clean_env):
    clean_env.update({"AUTH_ENABLED": "false", "ALLOW_INSECURE_NO_AUTH": "true"})
    assert run_manage(clean_env, "check").returncode == 0


def test_debug_mode_invents_a_secret_when_none_is_set(clean_env):
    clean_env.update({"SESSION_SECRET": "", "DEBUG": "true"})
    assert run_manage(clean_env, "check").returncode == 0


def test_the_secret_can_come_from_a_file(clean_env, tmp_path):
    secret_file = tmp_path / "session_secret"
    secret_file.write_text(STRONG_SECRET + "\n")
    del clean_env["SESSION_SECRET"]
    clean_env["SESSION_SECRET_FILE"] = str(secret_file)
    code = "from django.conf import settings; print(settings.SECRET_KEY)"
    result = run_manage(clean_env, "shell", "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(STRONG_SECRET)


def test_an_sftp_key_given_by_its_path_as_earlier_releases_took_it_is_read(clean_env, tmp_path):
    key_file = tmp_path / "id_ed25519"
    key_file.write_text(
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaA==\n-----END OPENSSH PRIVATE KEY-----\n"
    )
    clean_env.update(
        {
            "SFTP_ENABLED": "true",
            "SFTP_HOST": "nas.example.org",
            "SFTP_USERNAME": "scan",
            "SFTP_PRIVATE_KEY": str(key_file),
        }
    )
    code = "from django.conf import settings; print(settings.SFTP_PRIVATE_KEY.splitlines()[0])"
    result = run_manage(clean_env, "shell", "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("-----BEGIN OPENSSH PRIVATE KEY-----")


def test_a_postgresql_url_is_understood(clean_env):
    clean_env["DATABASE_URL"] = "postgresql://docu:pw@db.internal:5433/docs"
    code = (
        "from django.conf import settings; d = settings.DATABASES['default']; "
        "print(d['ENGINE'], d['HOST'], d['PORT'], d['NAME'])"
    )
    result = run_manage(clean_env, "shell", "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("django.db.backends.postgresql db.internal 5433 docs")


# What a production installation sets besides TLS and headers: Redis (shared rate-limit
# counters), JSON logs and a way to be watched (ops.checks).
PRODUCTION_SERVICES = {
    "REDIS_URL": "redis://:pw@redis.internal:6379/0",
    "LOG_FORMAT": "json",
    "METRICS_TOKEN": "metrics-token-for-prometheus-0123456789",
}


def test_deploy_check_is_clean_for_a_production_configuration(clean_env):
    """PostgreSQL, a strong secret, DEBUG=false, TLS at the proxy and headers on."""
    clean_env.update(
        {
            "DATABASE_URL": "postgresql://docu:pw@db.internal:5432/docs",
            "SESSION_SECRET": STRONG_SECRET * 2,
            "DEBUG": "false",
            "SECURE_PROXY": "true",
            "SECURITY_HEADERS_ENABLED": "true",
            "EXTERNAL_HOSTNAME": "docs.example.org",
            **PRODUCTION_SERVICES,
        }
    )
    result = run_manage(clean_env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues (0 silenced)" in result.stdout


def test_deploy_check_accepts_headers_set_by_the_proxy(clean_env):
    clean_env.update(
        {
            "DATABASE_URL": "postgresql://docu:pw@db.internal:5432/docs",
            "SESSION_SECRET": STRONG_SECRET * 2,
            "SECURE_PROXY": "true",
            "SECURITY_HEADERS_AT_PROXY": "true",
            **PRODUCTION_SERVICES,
        }
    )
    result = run_manage(clean_env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr


def test_deploy_check_warns_when_nothing_provides_tls(clean_env):
    clean_env["SESSION_SECRET"] = STRONG_SECRET * 2
    result = run_manage(clean_env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0
    assert "security.W008" in result.stderr  # no HTTPS redirect


def test_sso_and_social_providers_start_from_their_variables(clean_env):
    clean_env.update(
        {
            "OIDC_RP_CLIENT_ID": "docuelevate",
            "OIDC_RP_CLIENT_SECRET": "a-client-secret-of-reasonable-length",
            "OIDC_OP_DISCOVERY_URL": "https://sso.example.com/application/o/docuelevate/.well-known/openid-configuration",
            "SSO_AUTO_LOGIN": "true",
            "GITHUB_CLIENT_ID": "Iv1.0123456789",
            "GITHUB_CLIENT_SECRET": "github-secret-value",
        }
    )
    assert run_manage(clean_env, "migrate", "--no-input").returncode == 0
    probe = (
        "from django.conf import settings as s; from django.test import Client; "
        "page = Client(HTTP_HOST='localhost').get('/accounts/login/?local=1').content.decode(); "
        "print(s.OIDC_ENABLED, sorted(s.SOCIALACCOUNT_PROVIDERS), "
        "'Log in with GitHub' in page, '/accounts/github/login/' in page)"
    )
    result = run_manage(clean_env, "shell", "-c", probe)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "True ['github'] True True"
