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

import streamlit as st  # noqa: E402

from dashboard import paths  # noqa: E402

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
