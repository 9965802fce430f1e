import streamlit as st

st.title("Compare providers")
st.info("Coming soon")
