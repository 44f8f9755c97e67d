"""One invalidation for every cached view: a writer outside review (a run, a store write behind the API's
back followed by `invalidate`) makes the next map a fresh read with a new ETag; a review write patches its
point in place; a delete forgets the report."""

from __future__ import annotations

import pytest

from tests.api.conftest import DATASET, ingest_fixture, plant_analysis, point_ids_of, running, settings_in

pytestmark = pytest.mark.anyio


async def test_invalidate_rebuilds_patches_and_forgets(tmp_path):
    async with running(settings_in(tmp_path)) as (app, client):
        ingest_fixture(app)
        plant_analysis(app)
        state = app.state.api
        url = f"/api/datasets/{DATASET}/map"
        first = await client.get(url)
        etag, snap = first.headers["etag"], state.views.snapshots.peek(DATASET)
        pid = point_ids_of(app)[700001]
        row = snap.index[pid]
        # A write the views cannot see (what predict does), then the one call every such writer makes.
        state.workspace.collection(DATASET).set_payloads({pid: {"prediction": "lost_card"}})
        assert (await client.get(url, headers={"If-None-Match": etag})).status_code == 304  # still cached
        state.views.invalidate(DATASET)
        second = await client.get(url, headers={"If-None-Match": etag})
        assert second.status_code == 200 and second.headers["etag"] != etag
        assert second.json()["prediction"][row] == "lost_card"
        assert state.views.invalidations(DATASET) == 1
        # A review write: the same snapshot object, patched, with the label revision (and ETag) moved on.
        built = state.views.snapshots.peek(DATASET)
        reviewed = await client.post(f"/api/datasets/{DATASET}/points/{pid}/label",
                                     json={"action": "relabel", "label": "lost_card"})
        assert reviewed.status_code == 200
        third = await client.get(url, headers={"If-None-Match": second.headers["etag"]})
        assert third.status_code == 200 and third.json()["label"][row] == "lost_card"
        assert state.views.snapshots.peek(DATASET) is built and third.json()["label_revision"] == 1
        # The parsed report is cached with the views, and a delete drops it with them.
        assert (await client.get(f"/api/datasets/{DATASET}/report")).status_code == 200
        stamp = _stamp(state)
        assert state.views.reports.get(DATASET, stamp) is not None
        assert (await client.delete(f"/api/datasets/{DATASET}")).status_code == 204
        assert state.views.snapshots.peek(DATASET) is None and state.views.reports.get(DATASET, stamp) is None


def _stamp(state):
    from service.api.snapshots import report_stamp

    return report_stamp(state.settings, DATASET)
