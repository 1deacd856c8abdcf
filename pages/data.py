"""Placeholder until the Data page lands."""
import streamlit as st

st.title("Load data")
st.info("This page is being built; see the open issues.")
