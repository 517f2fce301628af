"""The JSON Schemas (Draft 2020-12) of bakeplan's documents: the files, a compiled checker, and
jsonschema to explain what breaks them."""
