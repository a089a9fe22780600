"""files/: the Files API — stored uploads an account names by id elsewhere.

PUT HERE: `FileService` (`service.py`): upload, list, retrieve, content and delete, scoped to the caller,
with the purposes a file may have; used by `/v1/files`, the CLI's batch commands and anything that names a
`file-…` id.
DO NOT PUT HERE: HTTP (the routes read the body and send the ranged content), what a file is used for
(`videos/` reads an `input_reference`, `batches/` an input file), storage keys (`storage/keys.py`).
"""
