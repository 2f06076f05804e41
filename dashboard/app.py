"""Dashboard entry point: ``streamlit run dashboard/app.py``.

Pages (one script each under ``views/``): Home, Forecasting, Inventory, Performance, Data. All read
the materialized exports, sales_long and the MLflow store through the
``dashboard`` reader modules (exports, history, tracking, whatif, ...), never the raw CSVs.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `streamlit run dashboard/app.py` puts only dashboard/ on the path
    sys.path.insert(0, str(ROOT))

import importlib  # noqa: E402
import threading  # noqa: E402

import streamlit as st  # noqa: E402

from dashboard import paths  # noqa: E402
from forecasting_assets import store  # noqa: E402

# Imported in the background when the server starts (mlflow ~3-4 s, scipy.stats ~2 s), so that
# the pages that need them (MLflow: Home, Performance; the inventory maths: Inventory, Data) find
# them loaded; then the tracking store is opened once. (A bare string here would be rendered by
# Streamlit's magic.)
PRELOAD = ("mlflow", "forecasting_assets.inventory")


@st.cache_resource(show_spinner=False)
def _preload() -> threading.Thread:
    """Start importing ``PRELOAD`` in a background thread, once per process."""

    def run() -> None:
        for name in PRELOAD:
            importlib.import_module(name)
        store.champion_version()  # opens the tracking store once (SQLite: ~2-4 s of schema checks)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


_preload()

st.set_page_config(
    page_title="M5 demand forecasting",
    page_icon=":material/inventory_2:",
    layout="wide",
    initial_sidebar_state="expanded",
)

PAGES = [
    st.Page("views/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("views/forecasting.py", title="Forecasting", icon=":material/show_chart:"),
    st.Page("views/inventory.py", title="Inventory", icon=":material/inventory:"),
    st.Page("views/performance.py", title="Performance", icon=":material/speed:"),
    st.Page("views/data_quality.py", title="Data", icon=":material/database:", url_path="data"),
]

page = st.navigation(PAGES)

with st.sidebar:
    st.caption(f"Data home: `{paths.home_dir()}`")
    if st.button(
        "Reload data", icon=":material/refresh:", help="Clear the caches and re-read the exports"
    ):
        st.cache_data.clear()
        st.cache_resource.clear()
    st.caption(f"Caches refresh every {paths.TTL} s and whenever an export is rewritten.")

page.run()
