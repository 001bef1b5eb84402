"""``tracereplay validate``."""
