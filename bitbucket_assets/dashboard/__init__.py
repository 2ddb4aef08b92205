"""The Streamlit audit dashboard (`bitbucket-access dashboard`)."""
