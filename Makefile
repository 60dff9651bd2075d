# The two commands the README names: `make remix` (the main job) and `make test`.
PY := .venv/bin/python

.PHONY: setup test remix
setup:
	bash scripts/setup.sh

test: setup
	$(PY) -m pytest -q tests

remix: setup
	$(PY) scripts/remix_example.py
