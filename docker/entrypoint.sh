#!/bin/sh
# The image's one entrypoint: each container runs one role, chosen by the first argument.
#   api      gunicorn serving the site and the API
#   worker   a Celery worker for the queues in CELERY_QUEUES
#   beat     Celery beat, the one scheduler (run exactly one)
#   migrate  database migrations, the beat schedule and the operator login; then exits
#   manage   any manage.py command, e.g. `manage productioncheck` or `manage backup`
# Arguments after the role are passed on to the program. The long-running roles `exec` it,
# so the container runtime's SIGTERM reaches gunicorn or Celery and they shut down cleanly.
# ENTRYPOINT_DRY_RUN=1 prints the commands instead of running them (used by the tests).
set -eu

usage() {
    echo "usage: entrypoint.sh {api|worker|beat|migrate|manage} [arguments...]" >&2
    echo "  api: gunicorn; worker: Celery worker; beat: Celery beat;" >&2
    echo "  migrate: migrate + setup_periodic_tasks + bootstrap_admin; manage: manage.py COMMAND" >&2
    exit 64
}

# Check a whole number read from the environment: a typo stops start-up naming the variable
# instead of surfacing later as a confusing gunicorn or Celery error.
whole_number() {
    case "$2" in
        '' | *[!0-9]*)
            echo "entrypoint.sh: $1 must be a whole number, got '$2'" >&2
            exit 64
            ;;
    esac
    printf '%s' "$2"
}

dry_run() {
    [ "${ENTRYPOINT_DRY_RUN:-0}" = "1" ]
}

# Run one step of a role that does several things in turn.
step() {
    if dry_run; then
        printf '%s\n' "$*"
    else
        "$@"
    fi
}

# Become the role's long-running program.
run() {
    if dry_run; then
        printf '%s\n' "$*"
        exit 0
    fi
    exec "$@"
}

[ $# -ge 1 ] || usage
role=$1
shift

case "$role" in
    api)
        workers=$(whole_number WEB_CONCURRENCY "${WEB_CONCURRENCY:-2}")
        threads=$(whole_number GUNICORN_THREADS "${GUNICORN_THREADS:-1}")
        timeout=$(whole_number GUNICORN_TIMEOUT "${GUNICORN_TIMEOUT:-120}")
        graceful=$(whole_number GUNICORN_GRACEFUL_TIMEOUT "${GUNICORN_GRACEFUL_TIMEOUT:-30}")
        keepalive=$(whole_number GUNICORN_KEEPALIVE "${GUNICORN_KEEPALIVE:-5}")
        port=$(whole_number PORT "${PORT:-8000}")
        # gunicorn.conf.py in the working directory (the project root) sets the log format.
        # The heartbeat files live on /dev/shm: a slow overlay disk would make gunicorn
        # think its workers hung. GUNICORN_CMD_ARGS adds any other gunicorn option.
        run gunicorn docuelevate.wsgi:application \
            --bind "${HOST:-0.0.0.0}:$port" \
            --workers "$workers" \
            --threads "$threads" \
            --timeout "$timeout" \
            --graceful-timeout "$graceful" \
            --keep-alive "$keepalive" \
            --worker-tmp-dir "${GUNICORN_WORKER_TMP_DIR:-/dev/shm}" \
            --access-logfile - \
            --no-control-socket \
            "$@"
        ;;
    worker)
        concurrency=$(whole_number WORKER_CONCURRENCY "${WORKER_CONCURRENCY:-2}")
        run celery -A docuelevate worker \
            --queues "${CELERY_QUEUES:-document_processor,default,celery}" \
            --concurrency "$concurrency" \
            --loglevel "${LOG_LEVEL:-INFO}" \
            "$@"
        ;;
    beat)
        # The scheduler (django-celery-beat's DatabaseScheduler) is set in settings, so no -S.
        # No pidfile: the code folder is read-only, and a stale one would block a restart.
        run celery --quiet -A docuelevate beat \
            --loglevel "${LOG_LEVEL:-INFO}" \
            --pidfile= \
            "$@"
        ;;
    migrate)
        step python manage.py migrate --noinput "$@"
        step python manage.py setup_periodic_tasks
        # Creates or updates the operator from ADMIN_USERNAME/ADMIN_PASSWORD; without them
        # it changes nothing.
        run python manage.py bootstrap_admin
        ;;
    manage)
        [ $# -ge 1 ] || usage
        run python manage.py "$@"
        ;;
    *)
        echo "entrypoint.sh: unknown role '$role'" >&2
        usage
        ;;
esac
