"""Model families, one file each. Nothing is imported here: the hub imports a family when a model of it is built."""
