import streamlit as st

st.title("costs")
