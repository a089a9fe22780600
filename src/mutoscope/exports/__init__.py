"""The exports room: everything a user made leaves and enters a server as one archive.

PUT HERE: the archive format (`format.py`: layout, format version, record schema, path rules), the
streaming, checkpointed archive writer (`writer.py`), the queue of exports that survive restarts (`queue.py`),
verified all-or-nothing import (`importer.py`) and migration from any OpenAI-compatible Videos API
(`migrate.py`), and `ExportService` (`service.py`): the export and import use cases every front end calls.
DO NOT PUT HERE: HTTP (receiving an upload is `api/routes/exports.py`), wire type definitions
(`protocol/exports.py`), command-line parsing and progress bars (`cli/exports.py`), anything from
`engine/` but its torch-free camera moves, anything of `likeness/` but `portable.py` (which decides what of a
cameo travels and what an imported one may do). Functions here take what they need (sessions, storage, a `video_object` function) as
arguments instead of importing other rooms' internals.
"""
