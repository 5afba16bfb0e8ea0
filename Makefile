PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install redis rabbitmq test demo bench bench-quick bench-smoke typecheck worker flower flower-screenshot clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,bench,examples]'
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

redis:
	@scripts/ensure-redis

rabbitmq:
	@scripts/ensure-rabbitmq

typecheck: install
	$(BIN)/python -m mypy

test: typecheck redis rabbitmq
	$(BIN)/python -m pytest -q -m "not bench"
	# The core and fault tests again with the cache on a real Redis Cluster (3 masters, 3
	# replicas, started by tests/conftest.py; the broker stays a plain redis-server) and the
	# near cache on in every process, readers and workers alike (REFRESHER_NEAR_CACHE).
	REFRESHER_TEST_CACHE=cluster REFRESHER_NEAR_CACHE=10000 REFRESHER_TEST_MODES=sync $(BIN)/python -m pytest -q \
		tests/test_stampede.py tests/test_worker.py tests/faults

demo: install
	@scripts/ensure-redis --or-url
	$(BIN)/python -m examples.demo

bench: install redis
	$(BIN)/python -m bench

bench-quick: install redis
	$(BIN)/python -m bench --quick

# The benchmark's own tests: `python -m bench --quick` and `--quick --only near` run end to
# end and write their tables (about two minutes; make test leaves them out).
bench-smoke: install redis
	$(BIN)/python -m pytest -q -m bench

worker: install
	REFRESHER_LOADERS=$${REFRESHER_LOADERS:-examples.loaders} $(BIN)/celery -A workers worker -l info -E

# Refuses to start without FLOWER_BASIC_AUTH=user:password (12+ characters): refresher/flower.py.
flower: install
	$(BIN)/celery -A workers flower

# Not run by CI: needs Debian's chromium (apt-get install -y chromium). Writes docs/flower.png.
flower-screenshot: install redis
	$(BIN)/python -m docs.flower_screenshot

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache build *.egg-info
