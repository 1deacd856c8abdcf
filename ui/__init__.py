"""Streamlit glue shared by the pages: cached workspace, sidebar, small display helpers."""
