"""fraudlab: the library behind the fraud investigation workbench (no Streamlit in here)."""

__version__ = "0.1.0"
