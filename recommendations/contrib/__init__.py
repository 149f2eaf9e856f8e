"""Integrations with other Django shop frameworks; each imports its framework, the core
app never does."""
