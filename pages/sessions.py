import streamlit as st

st.title("Sessions")
st.info("Coming soon")
