# The two commands of the README:  make lab  |  make test
# Both create the project-local environment .venv from requirements.lock when it is missing or stale.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-lock
# PyTorch comes from the lock's pin, installed first so nothing else can pull a different build.
# On Linux without a GPU, `make lab TORCH_INDEX=https://download.pytorch.org/whl/cpu` avoids CUDA wheels.
TORCH_INDEX ?=
TORCH_PIN := $(shell grep -E '^torch==' requirements.lock)

.PHONY: lab test portable doctor notebooks runtime handout lock clean

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "llmcourse needs Python 3.10 or newer; run: make PYTHON=python3.11 ...")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH_PIN)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@# the notebooks as shipped, for `python -m llmcourse restore` where the course is not a git checkout
	@test -d $(VENV)/clean-notebooks || cp -R notebooks $(VENV)/clean-notebooks
	@touch $(STAMP)

lab: $(STAMP)               ## set up, then open the course in JupyterLab at notebook 00
	$(BIN)/jupyter lab notebooks/00_welcome.ipynb

test: $(STAMP)              ## set up, then run the package tests and nbval over every notebook
	$(BIN)/python -m pytest

# The whole suite again where the arithmetic differs from the machine that made the committed outputs:
# one thread per process (reductions split differently), ATen's kernels without SIMD, MKL and oneDNN held
# to AVX2; two shards side by side, logs in .portable/. See scripts/portable.py.
portable: $(STAMP)          ## run every test again at 1 thread with lower CPU instruction sets
	$(BIN)/python scripts/portable.py

doctor: $(STAMP)            ## check this machine: python -m llmcourse doctor
	$(BIN)/python -m llmcourse doctor

notebooks: $(STAMP)         ## re-run every notebook top to bottom and commit-ready save its outputs
	$(BIN)/python scripts/run_notebooks.py --write

runtime: $(STAMP)           ## time every notebook against the 4-minute budget
	$(BIN)/python benchmarks/course_runtime.py

handout: 	                ## a zip of the course without the worked solutions, for students
	@mkdir -p dist
	git archive --format=zip --prefix=llmcourse/ -o dist/llmcourse-handout.zip HEAD -- . ':(exclude)notebooks/solutions'
	@echo "wrote dist/llmcourse-handout.zip (no notebooks/solutions/)"

lock:                       ## re-resolve the environment from pyproject.toml and rewrite requirements.lock
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet "$(or $(TORCH_PIN),torch==2.13.0)"
	.lock-venv/bin/python -m pip install --quiet -e '.[test]'
	{ echo "# Exact versions CI tested. Regenerate with: make lock"; \
	  .lock-venv/bin/python -m pip freeze --exclude-editable | sed -E 's/^(torch==[0-9.]+)\+.*/\1/'; } > requirements.lock
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) dist
