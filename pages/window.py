import streamlit as st

st.title("window")
