"""One module per dashboard page; each is run as a script by ``st.navigation`` in app.py."""
