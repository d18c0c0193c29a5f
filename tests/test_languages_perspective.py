"""Perspective's language fields with a worker routing by language: ``languages`` is the
language the model read the text as, ``detectedLanguages`` what the detector found."""

from __future__ import annotations

import httpx

from tests.analyze_helpers import (  # noqa: F401 (autouse)
    analyze,
    coral_body,
    patient_deadline,
    release_database,
)
from tests.marks import ONE_BACKEND
from tests.test_languages import FRENCH, GERMAN, MIXED, MULTILINGUAL, RUSSIAN


@ONE_BACKEND
def test_perspective_languages_follow_the_routed_model(
    database_url, live_server, site, start_worker, tiny_checkpoint, tiny_multilingual_checkpoint
):
    bert, xlmr = tiny_checkpoint[0], tiny_multilingual_checkpoint[0]
    worker = start_worker(
        ready=True,
        SCORERS=f"detoxify:{bert}=en;detoxify:{xlmr}={','.join(MULTILINGUAL)}",
        MODEL_PRECISION="fp32",
    )

    def answer(text: str, language: str) -> dict:
        response = analyze(live_server, coral_body(text, language), site.site)
        assert response.status_code == 200, (response.text, worker.log())
        assert "TOXICITY" in response.json()["attributeScores"]
        return response.json()

    # Coral sends its tenant's locale ("en" for most): the text's own language wins, and
    # the multilingual model that reads it scores it.
    russian = answer(RUSSIAN, "en")
    assert (russian["languages"], russian["detectedLanguages"]) == (["ru"], ["ru"])
    # No loaded model reads German: the English one scores it, and says it read English.
    german = answer(GERMAN, "de")
    assert (german["languages"], german["detectedLanguages"]) == (["en"], ["de"])
    # Unsure between English and Russian: read as the fallback language.
    mixed = answer(MIXED, "ru")
    assert (mixed["languages"], mixed["detectedLanguages"]) == (["en"], ["en"])
    # A caller's claim never sends a text to a model that cannot read it.
    english = answer("Thanks, a careful and fair article about the election.", "ru")
    assert (english["languages"], english["detectedLanguages"]) == (["en"], ["en"])


@ONE_BACKEND
def test_openai_flags_each_input_on_the_thresholds_of_the_model_that_read_it(
    database_url, live_server, site, start_worker, tiny_checkpoint
):
    """profanity-check holds toxicity at 0.37, Detoxify at 0.6. The French input goes first
    (to the tiny Detoxify), the English one to profanity-check, which scores it 0.485:
    flagged on its own model's threshold, not on the first input's model's."""
    start_worker(
        ready=True,
        SCORERS=f"detoxify:{tiny_checkpoint[0]}=fr;profanity-check=en",
        MODEL_PRECISION="fp32",
    )
    release_database()
    response = httpx.post(
        f"{live_server}/v1/moderations",
        json={"input": [FRENCH, "What nonsense."]},
        headers=site.auth(),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"].startswith("detoxify-tiny@")  # the first input's model
    mild = body["results"][1]
    assert 0.37 <= mild["category_scores"]["harassment"] < 0.6
    assert mild["flagged"] is True
