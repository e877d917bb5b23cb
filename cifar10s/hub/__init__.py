"""Hugging Face Hub releases: sha256-checked fetch, publish, and the generated dataset card."""
