# One image for every service in docker-compose.yml: the library, the Celery worker,
# Flower (from the test extra) and the examples (the demo, examples.loaders, and the
# framework examples with their dependencies from the examples extra).
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PYTHONPATH=/app
WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY refresher ./refresher
COPY workers ./workers
RUN pip install --no-cache-dir -e '.[test,examples]'
COPY examples ./examples
COPY flowerconfig.py ./
# Celery warns against running a worker as root, and nothing here needs root.
RUN useradd --create-home app
USER app
# Owned by app, so the example-data volume mounted here (fresh, it copies this) is writable.
RUN mkdir /home/app/data
