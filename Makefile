# The commands the README names: `make remix` (the main job), `make test`, and `make accept`
# (the acceptance run on the real weights; not part of `make test`).
PY := .venv/bin/python

.PHONY: setup test remix accept
setup:
	bash scripts/setup.sh

test: setup
	$(PY) -m pytest -q tests

remix: setup
	$(PY) scripts/remix_example.py

accept: setup
	$(PY) -m devtools.accept
