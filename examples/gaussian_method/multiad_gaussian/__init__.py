"""A per-layer Gaussian feature distance: a worked example of a method that joins the
Multi-AD comparison from its own package (entry-point group ``multiad.methods``)."""
