import streamlit as st

st.title("probe")
