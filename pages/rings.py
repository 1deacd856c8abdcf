"""Placeholder until this page's issue lands."""
import streamlit as st

st.title("rings")
st.info("This page is being built; see the open issues.")
