# graysteps: `make test` on a fresh Debian machine installs everything (as root)
# and runs every test, real servers included. See README.md.
PY := tools/py

.PHONY: setup test test-quick bench demo

setup:
	bash tools/setup.sh

# The layers (setup.cfg's [importlinter] contracts) are checked first: an arrow the wrong way fails the run.
test: setup
	$(PY) -c 'from importlinter.cli import lint_imports_command; lint_imports_command()'
	$(PY) -m pytest $(PYTEST_ARGS)

# Without the real servers (tests marked `world`): for quick local runs only; CI runs `test`.
test-quick:
	$(PY) -c 'from importlinter.cli import lint_imports_command; lint_imports_command()'
	$(PY) -m pytest -m "not world"

# Speed targets: every bench/*.py script, run with its defaults. Each reports its figures
# as ratios to a baseline measured in the same run; any failing script fails `make bench`
# after the others ran.
bench: setup
	@failed=; for f in bench/[!_]*.py; do \
	  [ -e "$$f" ] || continue; echo "== $$f"; $(PY) "$$f" || failed="$$failed $$f"; \
	done; if [ -n "$$failed" ]; then echo "make bench: failed:$$failed" >&2; exit 1; fi

# The main job on a fresh machine: a gray release in a local sandbox (lab/graysteps_lab/demo.py).
# setup builds the control plane and Istio the first time; writes reports/demo/index.html.
demo: setup
	$(PY) -m graysteps_lab.demo
