"""Model families, one file each. Nothing is imported here: the catalog imports a family when asked."""
