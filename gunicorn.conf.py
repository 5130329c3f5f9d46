"""gunicorn reads this file from its working directory (the project root), so every way of
starting the web server (make run, the image, the tests) writes the same logs."""

# gunicorn's own lines (start-up, workers, signals) follow LOG_FORMAT and have secrets masked.
logger_class = "ops.logging.GunicornLogger"
