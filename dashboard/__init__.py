"""Streamlit + Altair dashboard over the materialized exports (``streamlit run dashboard/app.py``)."""
