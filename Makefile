PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml ci/main.txt | cksum | cut -d' ' -f1)
# The legs that run the core tests on other installs: the newest releases of everything, the
# oldest supported pins (ci/oldest.txt), and the built wheel alone. Each venv is reused until
# what it was built from changes (its stamp names a checksum of those files).
NEWEST := .venv-newest
OLDEST := .venv-oldest
WHEEL  := .venv-wheel
NEWEST_STAMP := $(NEWEST)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
OLDEST_STAMP := $(OLDEST)/.installed-$(shell cat pyproject.toml ci/oldest.txt | cksum | cut -d' ' -f1)
WHEEL_STAMP  := $(WHEEL)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
LEG_TESTS := tests/test_stampede.py tests/test_worker.py tests/test_near.py tests/test_async.py tests/test_lean.py tests/test_pool_bound.py
# redis-py's middle majors (6, 7; the legs above have 8 and 5), one venv reinstalling redis-py:
# the tests of the modules that lean on its internals (io/lean.py, io/tracking_link.py) and of
# the green sockets that must keep its own connections.
MAJORS := .venv-majors
MAJORS_STAMP := $(MAJORS)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
MAJORS_TESTS := tests/test_lean.py tests/test_pool_bound.py tests/test_portable_io.py tests/test_tracking.py tests/test_green.py

.PHONY: install redis rabbitmq prometheus test check-generated unasync docs test-newest test-oldest test-wheel test-majors dist demo bench bench-quick bench-smoke typecheck worker flower flower-screenshot clean

$(STAMP): pyproject.toml ci/main.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c ci/main.txt -e '.[test,bench,examples,docs]'
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

redis:
	@scripts/ensure-redis

rabbitmq:
	@scripts/ensure-rabbitmq

prometheus:  # promtool checks ops/prometheus/prometheus.yml (tests/test_dashboard.py)
	@scripts/ensure-prometheus

typecheck: install
	$(BIN)/python -m mypy

# The sync code is generated from its async source (scripts/unasync.py): a stale copy fails here.
check-generated:
	$(PYTHON) scripts/unasync.py --check

unasync:
	$(PYTHON) scripts/unasync.py

test: check-generated typecheck docs redis rabbitmq prometheus
	$(BIN)/python -m pytest -q -m "not bench"
	# The core and fault tests again with the cache on a real Redis Cluster (3 masters, 3
	# replicas, started by tests/conftest.py; the broker stays a plain redis-server) and the
	# near cache on in every process, readers and workers alike (REFRESHER_NEAR_CACHE).
	REFRESHER_TEST_CACHE=cluster REFRESHER_NEAR_CACHE=10000 REFRESHER_TEST_MODES=sync $(BIN)/python -m pytest -q \
		tests/test_stampede.py tests/test_worker.py tests/faults tests/test_connections.py tests/test_tracking.py tests/test_pool_bound.py
	# One leg after another: their stampede tests run 2-4 reader processes each, which a 2-core
	# machine runs at once only when a leg runs alone (three at once starved the readers' event
	# loops of CPU: slow-callback failures). Measured: 131 s in turn, 71 s with -j3. --keep-going:
	# a failing leg does not hide the others' results.
	$(MAKE) --no-print-directory --keep-going test-newest test-oldest test-wheel test-majors

# The legs install the built wheel with its test extra (not `pip install -e .`: two legs
# building in the source tree at once would race on refresher.egg-info); the tests import
# the source tree, which is the same code.
$(NEWEST_STAMP): pyproject.toml | dist
	test -x $(NEWEST)/bin/python || $(PYTHON) -m venv $(NEWEST)
	$(NEWEST)/bin/pip install -q --upgrade pip
	$(NEWEST)/bin/pip install -q --upgrade --upgrade-strategy eager "$$(ls dist/*.whl)[test]"
	rm -f $(NEWEST)/.installed-* && touch $@

$(OLDEST_STAMP): pyproject.toml ci/oldest.txt | dist
	rm -rf $(OLDEST) && $(PYTHON) -m venv $(OLDEST)
	$(OLDEST)/bin/pip install -q --upgrade pip
	$(OLDEST)/bin/pip install -q -c ci/oldest.txt "$$(ls dist/*.whl)[test]"
	touch $@

test-newest: $(NEWEST_STAMP) dist redis rabbitmq
	$(NEWEST)/bin/pip install -q --no-deps --force-reinstall dist/*.whl
	# A requirements file asking for redis-py 8 resolves with refresher (it once got ResolutionImpossible).
	$(NEWEST)/bin/pip install -q --dry-run dist/*.whl 'redis[hiredis]>=8'
	$(NEWEST)/bin/python -m pytest -q -p no:cacheprovider $(LEG_TESTS)

test-oldest: $(OLDEST_STAMP) dist redis rabbitmq
	$(OLDEST)/bin/pip install -q --no-deps --force-reinstall dist/*.whl
	$(OLDEST)/bin/python -m pytest -q -p no:cacheprovider $(LEG_TESTS)

$(MAJORS_STAMP): pyproject.toml | dist
	test -x $(MAJORS)/bin/python || $(PYTHON) -m venv $(MAJORS)
	$(MAJORS)/bin/pip install -q --upgrade pip
	$(MAJORS)/bin/pip install -q "$$(ls dist/*.whl)[test]"
	rm -f $(MAJORS)/.installed-* && touch $@

test-majors: $(MAJORS_STAMP) dist redis
	$(MAJORS)/bin/pip install -q --no-deps --force-reinstall dist/*.whl
	set -e; for major in 6 7; do \
		$(MAJORS)/bin/pip install -q "redis[hiredis]>=$$major,<$$((major + 1))"; \
		$(MAJORS)/bin/python -c "import redis; print('redis-py', redis.__version__)"; \
		$(MAJORS)/bin/python -m pytest -q -p no:cacheprovider $(MAJORS_TESTS); \
	done

# The distribution as a package index sees it: both archives build and pass twine's checks.
dist: install
	rm -rf dist && $(BIN)/python -m build -q --outdir dist . >/dev/null
	$(BIN)/twine check --strict dist/*

# A fresh venv holding only the wheel (no extras) publishes a refresh that a worker started
# from that venv runs (tests/test_install.py, driven from the main venv).
test-wheel: dist redis
	test -f $(WHEEL_STAMP) || { rm -rf $(WHEEL) && $(PYTHON) -m venv $(WHEEL) \
		&& $(WHEEL)/bin/pip install -q dist/*.whl && touch $(WHEEL_STAMP); }
	$(WHEEL)/bin/pip install -q --no-deps --force-reinstall dist/*.whl
	REFRESHER_TEST_WHEEL_VENV=$(WHEEL) $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_install.py

# The docs site (mkdocs.yml, docs/): --strict turns a broken link or a missing page into a failure.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

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

# Refuses to start without FLOWER_BASIC_AUTH=user:password (12+ characters): refresher/ops/flower.py.
flower: install
	$(BIN)/celery -A workers flower

# Not run by CI: needs Debian's chromium (apt-get install -y chromium). Writes docs/flower.png.
flower-screenshot: install redis
	$(BIN)/python -m docs.flower_screenshot

clean:
	rm -rf $(VENV) $(NEWEST) $(OLDEST) $(WHEEL) $(MAJORS) dist .pytest_cache .mypy_cache build *.egg-info
