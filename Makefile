# The commands the README names: `make remix` (the main job), `make test`, `make accept`
# (the acceptance run on the real weights; not part of `make test`) and `make doctor` (what to
# run when a remix is slow or fails; it checks the environment and changes nothing).
PY := .venv/bin/python

.PHONY: setup test remix accept doctor
setup:
	bash scripts/setup.sh

test: setup
	$(PY) -m pytest -q tests

remix: setup
	$(PY) scripts/remix_example.py

accept: setup
	$(PY) -m devtools.accept

doctor:
	$(PY) -m remixer.doctor
