"""ComponentResources of the health pipeline, the typed stack settings and pure renderers."""
