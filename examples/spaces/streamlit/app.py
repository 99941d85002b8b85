import streamlit as st

st.title("SpaceHub Streamlit example")
name = st.text_input("Name", "world")
st.write(f"Hello {name}!")
