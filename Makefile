# Thin wrappers around the commands in the README. Run `make help` for the list.
VENV    ?= .venv
PY      := $(VENV)/bin/python
export FORECASTING_HOME ?= $(CURDIR)/data
export M5_RAW_DIR       ?= $(FORECASTING_HOME)/raw
export DAGSTER_HOME     ?= $(FORECASTING_HOME)/dagster_home
export MLFLOW_TRACKING_URI ?= sqlite:///$(FORECASTING_HOME)/mlflow.db

.PHONY: help install demo test lint ui train predict report api dashboard mlflow-ui sample-data bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(VENV)/bin/dagster: pyproject.toml
	python3 -m venv $(VENV) && $(VENV)/bin/pip install -e ".[dev,scaleout]" && touch $@

install: $(VENV)/bin/dagster  ## create .venv and install the project with its dev tools

demo: install  ## materialize every asset on the default data and print a summary
	$(PY) -m forecasting_assets.demo

test: install  ## run the test suite
	$(VENV)/bin/pytest

lint: install  ## ruff
	$(VENV)/bin/ruff check .

dagster-home:
	@mkdir -p $(DAGSTER_HOME) && [ -f $(DAGSTER_HOME)/dagster.yaml ] || cp dagster.yaml $(DAGSTER_HOME)/

ui: install dagster-home  ## Dagster UI + daemon (schedules, sensors) on http://127.0.0.1:3000
	$(VENV)/bin/dg dev --host 127.0.0.1 --port 3000

train: install dagster-home  ## retrain, backtest, promote if better, re-forecast
	$(VENV)/bin/dagster job execute -m forecasting_assets.definitions -j retrain

predict: install dagster-home  ## re-ingest and re-forecast with the current champion
	$(VENV)/bin/dagster job execute -m forecasting_assets.definitions -j forecast_with_champion

report: install  ## print what the last run produced
	$(PY) -m forecasting_assets.report

api: install  ## REST API on http://127.0.0.1:8000 (docs at /docs; auth off for local use)
	FORECASTING_API_AUTH=$${FORECASTING_API_AUTH:-off} $(VENV)/bin/uvicorn forecasting_api.main:app --host 127.0.0.1 --port 8000

dashboard: install  ## Streamlit dashboard on http://127.0.0.1:8501
	$(VENV)/bin/streamlit run dashboard/app.py --server.address 127.0.0.1 --server.port 8501 --server.headless true

mlflow-ui: install  ## MLflow UI on http://127.0.0.1:5000
	$(VENV)/bin/mlflow ui --backend-store-uri $(MLFLOW_TRACKING_URI) --host 127.0.0.1 --port 5000

sample-data: install  ## write demo-size M5-shaped data into M5_RAW_DIR
	$(PY) -m forecasting_assets.m5.generator --out $(M5_RAW_DIR) --demo

bench: install  ## the benchmark scripts (full M5 scale; slow)
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:  ## remove everything the pipeline wrote under data/ (keeps raw files)
	rm -rf $(FORECASTING_HOME)/assets $(FORECASTING_HOME)/exports $(FORECASTING_HOME)/mlflow.db $(FORECASTING_HOME)/mlartifacts $(DAGSTER_HOME)
