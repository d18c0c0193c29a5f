"""OpenAI's moderation face, driven by the official ``openai`` SDK over real HTTP."""

from __future__ import annotations

import httpx
import openai
import pytest

from service.dropin import OPENAI_CATEGORIES
from service.extensions import db
from service.models import Site
from tests.analyze_helpers import patient_deadline, release_database  # noqa: F401 (autouse)

RUDE = "You are a fucking idiot and your shit article is garbage."


def sdk(base: str, key: str) -> openai.OpenAI:
    """The SDK as LibreChat or LiteLLM configure it: another base URL, another key."""
    release_database()
    return openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0, timeout=10)


def test_sdk_moderates_a_string_with_every_category_present(live_server, site, start_worker):
    start_worker(ready=True)  # profanity-check: one label, toxicity

    answer = sdk(live_server, site.site).moderations.create(
        input=RUDE, model="omni-moderation-latest"
    )

    assert answer.id.startswith("modr-")
    assert answer.model.startswith("profanity-check@")  # who really scored it
    (result,) = answer.results
    dumped = result.model_dump(by_alias=True)
    for part in ("categories", "category_scores", "category_applied_input_types"):
        assert set(dumped[part]) == set(OPENAI_CATEGORIES), part
    assert dumped["category_applied_input_types"]["harassment"] == ["text"]
    assert result.category_scores.harassment > 0.5
    assert result.flagged is True and result.categories.harassment is True
    # The model sees no self-harm: it scores 0 and is never flagged.
    assert dumped["category_scores"]["self-harm"] == 0
    assert dumped["categories"]["self-harm"] is False


def test_sdk_moderates_a_batch_and_text_parts_one_result_each(live_server, site, start_worker):
    worker = start_worker(ready=True)
    client = sdk(live_server, site.site)

    batch = client.moderations.create(input=["Thanks, a fair article.", RUDE, "Agreed."])
    parts = client.moderations.create(
        input=[{"type": "text", "text": RUDE}, {"type": "text", "text": "Nice."}]
    )

    assert [r.flagged for r in batch.results] == [False, True, False]
    assert [r.flagged for r in parts.results] == [True, False]
    assert "analyze pass: 1 requests, 3 texts" in worker.log()


def test_flagged_follows_the_sites_own_thresholds(live_server, site, start_worker):
    start_worker(ready=True)
    row = db.session.get(Site, site.id)
    row.hold_at, row.reject_at = {"toxicity": 1.0}, {"toxicity": 1.0}
    db.session.commit()
    release_database()

    (result,) = sdk(live_server, site.site).moderations.create(input=RUDE).results

    assert result.flagged is False and result.categories.harassment is False
    assert result.category_scores.harassment > 0.5  # the score is still the model's


def test_errors_come_in_openai_shape(live_server, site, start_worker):
    client = sdk(live_server, site.site)
    with pytest.raises(openai.APIStatusError) as no_worker:
        client.moderations.create(input="hello")
    assert no_worker.value.status_code == 503

    start_worker(ready=True)
    with pytest.raises(openai.BadRequestError) as image:
        client.moderations.create(
            input=[{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]
        )
    assert image.value.body["param"] == "input" and "Image" in image.value.body["message"]
    with pytest.raises(openai.BadRequestError) as too_long:
        client.moderations.create(input="x" * 20001)
    assert "too long" in too_long.value.body["message"]
    with pytest.raises(openai.BadRequestError):
        client.moderations.create(input=["hi"] * 33)
    with pytest.raises(openai.AuthenticationError) as bad_key:
        sdk(live_server, "civ_wrong").moderations.create(input="hello")
    assert bad_key.value.body["code"] == "invalid_api_key"
    raw = httpx.post(f"{live_server}/v1/moderations", json={"input": 5}, headers=site.auth())
    assert raw.status_code == 400
    assert set(raw.json()["error"]) == {"message", "type", "param", "code"}
    assert raw.json()["error"]["type"] == "invalid_request_error"
