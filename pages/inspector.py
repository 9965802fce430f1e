import streamlit as st

st.title("Token inspector")
st.info("Coming soon")
