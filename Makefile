# The two commands a newcomer needs:
#   make demo   -- the quickstart: local Kafka + worker + simulated traffic, live in the terminal
#   make test   -- lint, types and the whole test suite against the real Kafka broker and ClickHouse engine
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: demo test lint install native test-deps kafka-start kafka-stop

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(BIN)/.installed native

# The detection core compiled with mypyc (processors/__init__.py): rebuilt when a source changes; if it
# cannot be built (no C compiler), the sources run, a third slower.
NATIVE := build/native/SOURCES
native: $(NATIVE)
$(NATIVE): $(BIN)/.installed deploy/native/build $(shell find processors schemas -name "*.py")
	-$(BIN)/python deploy/native/build

demo: $(BIN)/.installed native
	$(BIN)/contactpulse demo

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Java, Maven and Dovecot from Debian when missing (the broker and the IMAP test need them).
test-deps:
	deploy/ci/install-test-deps

# Starts a local broker when none answers, on empty storage of its own, and stops and deletes it
# afterwards (a broker kept between runs gathers every run's topics and gets slower to start).
TEST_KAFKA_DATA ?= $(or $(TMPDIR),/tmp)/contactpulse-test-kafka
test: test-deps lint native
	@if deploy/kafka/kafkactl status; then \
		$(BIN)/pytest; \
	else \
		export KAFKA_DATA_DIR="$(TEST_KAFKA_DATA)"; rm -rf "$$KAFKA_DATA_DIR"; \
		deploy/kafka/kafkactl start && { $(BIN)/pytest; rc=$$?; deploy/kafka/kafkactl stop; rm -rf "$$KAFKA_DATA_DIR"; exit $$rc; }; \
	fi

kafka-start:
	deploy/kafka/kafkactl start

kafka-stop:
	deploy/kafka/kafkactl stop
