"""Label Studio, both ways: tasks that carry their point and revision, the import of what annotators chose
(files or a connected server), push/pull of a project, the webhook receiver and the ML-backend protocol.

    tasks.py      rows -> tasks (data.point_id, data.revision, data.dataset, a pre-annotation), labelling config
    formats.py    an export in any of Label Studio's formats (JSON, JSON_MIN, CSV) -> tasks, or a clear refusal
    importer.py   tasks -> review actions (accept / reviewed / relabel), stale ones reported, never applied
    client.py     the Label Studio server, through label-studio-sdk
    sync.py       push (project + tasks, no duplicates) and pull (annotations since the last pull)
    webhook.py    Label Studio's annotation webhooks, checked against a shared secret
    mlbackend.py  the ML-backend protocol (/setup, /predict, /health) over the production model
"""
