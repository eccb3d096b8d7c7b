"""Lookback: when does a sequence model need memory, and what does that memory cost?"""
import streamlit as st

st.set_page_config(page_title="Lookback", page_icon=":material/history:", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
    st.Page("pages/window.py", title="Window tradeoff", icon=":material/width:"),
    st.Page("pages/memory.py", title="Memory", icon=":material/memory:"),
    st.Page("pages/costs.py", title="Costs", icon=":material/speed:"),
    st.Page("pages/probe.py", title="Probe", icon=":material/search:"),
    st.Page("pages/runs.py", title="Runs", icon=":material/history:"),
]
st.navigation(PAGES).run()
