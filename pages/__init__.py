"""The app's pages, run by st.navigation in app.py.

Until st.navigation has run once in the server process, Streamlit treats a pages/ folder beside the
entrypoint as a legacy multipage app: a fresh server's first request for a page's URL runs that page alone,
without app.py. Every page imports this package, which then switches to app.py's navigation and reruns.
tests/test_layout.py fails once a Streamlit release no longer needs this.
"""
import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

if PagesManager.uses_pages_directory:
    PagesManager.uses_pages_directory = False
    st.rerun()
