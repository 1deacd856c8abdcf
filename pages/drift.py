"""Placeholder until this page's issue lands."""
import streamlit as st

st.title("drift")
st.info("This page is being built; see the open issues.")
