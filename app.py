"""Lookback: when does a sequence model need memory, and what does that memory cost?"""
import streamlit as st

from lib import hosting

# The sidebar starts collapsed on a narrow screen (Streamlit's "auto": up to 768 px) and otherwise open, at a width
# (px) that fits the page names and leaves an 800 px screen most of its width.
st.set_page_config(page_title="Lookback", page_icon=":material/history:", layout="wide", initial_sidebar_state=220)
# The width above reaches the sidebar only when the page config arrives before the sidebar is first drawn (else
# Streamlit keeps its 300 px default): on a narrow screen, hold it at 220 px whichever came first.
st.html("<style>@media (max-width: 1000px) {section[data-testid='stSidebar'] "
        "{width: 220px !important; min-width: 220px !important;}}</style>")
if hosting.hosted():  # visitors of a shared server learn that an error happened, not its traceback and paths
    st.set_option("client.showErrorDetails", "none")

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
    st.Page("pages/window.py", title="Context tradeoff", icon=":material/width:"),
    st.Page("pages/memory.py", title="Memory", icon=":material/memory:"),
    st.Page("pages/costs.py", title="Costs", icon=":material/speed:"),
    st.Page("pages/probe.py", title="Probe", icon=":material/search:"),
    st.Page("pages/literature.py", title="Literature", icon=":material/menu_book:"),
    st.Page("pages/your_data.py", title="Your data", icon=":material/upload_file:"),
    st.Page("pages/runs.py", title="Runs", icon=":material/history:"),
]
page = st.navigation(PAGES)
from pages import _form, _run  # noqa: E402 (imported before st.navigation, pages/__init__.py would rerun the app once)

_run.job_status(page.url_path)
_form.clean_links()  # before the page's widgets read the link's values
page.run()
