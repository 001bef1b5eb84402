"""Golden cases of the query library: input event tables and expected answers, as CSV."""
