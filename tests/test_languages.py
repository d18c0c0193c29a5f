"""Languages: detection, routing to the scorer that reads each one, and the unread ones held."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from service.extensions import db
from service.models import Comment, Site, WebhookDelivery, WebhookEndpoint
from tests.checkpoints import SAMPLE
from tests.worker_helpers import policy_events
from workers.languages import detect, detector
from workers.routing import Route, Router, SiteLanguages, parse_routes
from workers.scorers import load_scorer

ENGLISH = "Thanks, a careful and fair article about the election and the economy."
FRENCH = "Merci pour cet article, mais je ne suis pas du tout d'accord avec l'auteur."
RUSSIAN = "Спасибо за статью, но автор ничего не понимает в экономике и политике."
GERMAN = "Vielen Dank für den Artikel, aber der Autor versteht nichts von der Wirtschaft."
# Half English, half Russian: the detector cannot be sure of either.
MIXED = "I agree with you. Я согласен."
MULTILINGUAL = ("en", "fr", "es", "it", "pt", "tr", "ru")


def sample(language: str) -> str:
    """The first sentence of ``language`` in the shipped labelled sample."""
    with SAMPLE.open(encoding="utf-8", newline="") as file:
        return next(row["text"] for row in csv.DictReader(file) if row["language"] == language)


@pytest.fixture(scope="module")
def checkpoints(tiny_checkpoint, tiny_multilingual_checkpoint) -> dict[str, Path]:
    """The tiny English BERT and the tiny multilingual XLM-R."""
    return {"bert": tiny_checkpoint[0], "xlmr": tiny_multilingual_checkpoint[0]}


@pytest.fixture(scope="module")
def router(checkpoints: dict[str, Path]) -> Router:
    """English to the BERT, the multilingual model's languages to the XLM-R."""
    routes = [
        Route(f"detoxify:{path}", load_scorer(f"detoxify:{path}", "none", precision="fp32"), langs)
        for path, langs in (
            (checkpoints["bert"], frozenset({"en"})),
            (checkpoints["xlmr"], frozenset(MULTILINGUAL)),
        )
    ]
    return Router(routes, fallback_language="en", min_confidence=0.6)


def test_detector_reads_the_shipped_sample_offline() -> None:
    found = detect([ENGLISH, FRENCH, RUSSIAN, GERMAN, "😀 123 https://example.com", ""])
    assert [language for language, _ in found] == ["en", "fr", "ru", "de", None, None]
    assert all(confidence > 0.8 for _, confidence in found[:4])
    mixed = detector().detect([MIXED])[0]
    assert mixed.confidence < 0.6 and {code for code, _ in mixed.candidates[:2]} == {"en", "ru"}


def test_scorers_setting_gives_each_scorer_its_languages(checkpoints) -> None:
    routes = parse_routes(
        f"detoxify:original=en; detoxify:multilingual=FR, ru ;profanity-check=*;"
        f"detoxify:{checkpoints['xlmr']};detoxify:{checkpoints['bert']}"
    )
    assert [(r.spec, r.languages) for r in routes] == [
        ("detoxify:original", frozenset({"en"})),
        ("detoxify:multilingual", frozenset({"fr", "ru"})),
        ("profanity-check", None),
        # No list: the checkpoint's training data set says (multilingual, else English).
        (f"detoxify:{checkpoints['xlmr']}", frozenset(MULTILINGUAL)),
        (f"detoxify:{checkpoints['bert']}", frozenset({"en"})),
    ]
    assert parse_routes("detoxify:multilingual")[0].languages == frozenset(MULTILINGUAL)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "lists no scorer"),
        ("detoxify:klingon=en", "entry 1 ('detoxify:klingon=en'): unknown scorer"),
        ("profanity-check=en;detoxify:original=english", "entry 2"),
        ("profanity-check=", "not nothing"),
        ("profanity-check=en;profanity-check=fr", "listed twice"),
    ],
)
def test_malformed_scorers_setting_is_refused_naming_it(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=r"^CIVILITY_SCORERS: ") as error:
        parse_routes(value)
    assert message in str(error.value)


def test_each_text_goes_to_the_scorer_of_its_language_in_its_own_passes(router) -> None:
    texts = [ENGLISH, FRENCH, RUSSIAN, GERMAN, MIXED, "ok"]
    bert, xlmr = (route.scorer.model for route in router.routes)

    results = router.score_detailed(texts)

    by_text = dict(zip(texts, results, strict=True))
    assert (by_text[ENGLISH].language, by_text[ENGLISH].model) == ("en", bert)
    assert (by_text[FRENCH].language, by_text[FRENCH].model) == ("fr", xlmr)
    assert (by_text[RUSSIAN].language, by_text[RUSSIAN].model) == ("ru", xlmr)
    assert by_text[FRENCH].confidence > 0.8 and by_text[FRENCH].notes == ()
    # No loaded scorer reads German: nothing scores it.
    assert (by_text[GERMAN].model, by_text[GERMAN].scores, by_text[GERMAN].supported) == (
        None,
        {},
        False,
    )
    # Unsure between English and Russian: the fallback language, read by a model that
    # reads both; the reason says what the detector saw.
    mixed = by_text[MIXED]
    assert (mixed.language, mixed.model, mixed.supported) == ("en", xlmr, True)
    (note,) = mixed.notes
    assert note["code"] == "language_uncertain" and note["language"] == "en"
    assert note["confidence"] < 0.6
    # Scores come from the model each text went to: the XLM-R has its 7 labels.
    assert set(by_text[RUSSIAN].scores) == set(router.routes[1].scorer.labels)
    assert len(by_text[ENGLISH].scores) == 6
    # Planned passes never mix scorers; unread texts come first, in no pass.
    passes = router.plan(texts)
    assert passes[0] == [texts.index(GERMAN)]
    for group in passes[1:]:
        assert len({results[i].model for i in group}) == 1
    assert sorted(i for group in passes for i in group) == list(range(len(texts)))


def test_the_caller_is_let_in_between_two_scorers_passes_not_before_the_first(router) -> None:
    between: list[int] = []

    results = router.score_detailed([ENGLISH, FRENCH, GERMAN], between=lambda: between.append(1))

    assert [r.language for r in results] == ["en", "fr", "de"]
    assert between == [1]  # after the BERT's one pass, before the XLM-R's; German: no pass
    router.score_detailed([ENGLISH, GERMAN], between=lambda: between.append(2))
    assert between == [1]


def test_a_site_chooses_the_scorer_per_language_and_may_score_unsupported_ones(router) -> None:
    bert_spec, xlmr_spec = (route.spec for route in router.routes)
    bert, xlmr = (route.scorer.model for route in router.routes)
    site = SiteLanguages({"en": xlmr_spec, "de": bert_spec, "fr": "detoxify:unbiased"}, "score")

    english, german, french, turkish = router.score_detailed(
        [ENGLISH, GERMAN, FRENCH, sample("tr")], [site] * 4
    )

    assert english.model == xlmr and english.supported
    # The site vouches that the BERT reads German.
    assert german.model == bert and german.supported
    # Its choice is not loaded here: the usual route, and a note that says so.
    assert french.model == xlmr
    assert french.notes == (
        {"code": "language_scorer_missing", "language": "fr", "scorer": "detoxify:unbiased"},
    )
    assert turkish.model == xlmr and turkish.language == "tr"
    (unread,) = router.score_detailed([GERMAN + " Danke."], [SiteLanguages({}, "score")])
    # `score`: the fallback language's scorer reads it, flagged as not made for it.
    assert (unread.model, unread.supported) == (bert, False)
    assert unread.scores and all(0 <= v <= 1 for v in unread.scores.values())


def test_worker_stores_language_routes_and_holds_what_no_model_reads(
    app, client, site, make_site, submit, start_worker, checkpoints
):
    bert, xlmr = checkpoints["bert"], checkpoints["xlmr"]
    scoring = make_site("Scores Everything", unsupported_language="score")
    for site_id in (site.id, scoring.id):
        db.session.add(
            WebhookEndpoint(site_id=site_id, url="https://hooks.example/civility", secret="whsec_x")
        )
    db.session.commit()
    bodies = {"en": ENGLISH, "fr": FRENCH, "ru": RUSSIAN, "de": GERMAN, "mixed": MIXED}
    ids = {
        name: submit(body=body, author=f"r-{name}").get_json()["id"]
        for name, body in bodies.items()
    }
    scored_de = submit(body=GERMAN, as_site=scoring).get_json()["id"]

    worker = start_worker(
        "--burst",
        SCORER="profanity-check",
        SCORERS=f"detoxify:{bert}=en;detoxify:{xlmr}={','.join(MULTILINGUAL)}",
        MODEL_PRECISION="fp32",
    )

    assert worker.wait(90) == 0, worker.log()
    rows = {row.id: row for row in db.session.scalars(sa.select(Comment))}
    db.session.rollback()
    assert rows[ids["en"]].model.startswith("detoxify-tiny@")
    for name in ("fr", "ru", "mixed"):
        assert rows[ids[name]].model.startswith("detoxify-tiny-xlmr@"), name
    assert [rows[ids[n]].language for n in bodies] == ["en", "fr", "ru", "de", "en"]
    assert rows[ids["fr"]].language_confidence > 0.8
    assert rows[ids["mixed"]].reasons[-1]["code"] == "language_uncertain"
    german = rows[ids["de"]]
    assert (german.status, german.scores, german.model) == ("held", None, None)
    assert german.reasons == [{"code": "unsupported_language", "language": "de"}]
    (event,) = policy_events([german.id])
    assert (event.to_status, event.reason_code) == ("held", "unsupported_language")
    scored = rows[scored_de]
    assert scored.model.startswith("detoxify-tiny@") and scored.scores
    assert {"code": "unsupported_language", "language": "de"} in scored.reasons

    # Moderators see the language on the comment and in the queue, and filter by it.
    shown = client.get(f"/v1/comments/{ids['fr']}", headers=site.auth("moderator")).get_json()
    assert (shown["language"], shown["language_confidence"]) == (
        "fr",
        rows[ids["fr"]].language_confidence,
    )
    as_site = client.get(f"/v1/comments/{ids['fr']}", headers=site.auth()).get_json()
    assert "language" not in as_site
    queue = client.get(
        "/v1/queue?status=held&language=de", headers=site.auth("moderator")
    ).get_json()
    assert [item["id"] for item in queue["items"]] == [german.id]
    assert queue["items"][0]["language"] == "de"
    bad = client.get("/v1/queue?language=German", headers=site.auth("moderator"))
    assert bad.status_code == 422 and "language" in bad.get_json()["errors"]["query"]

    stats = client.get("/v1/stats", headers=site.auth("moderator")).get_json()
    by_language = {entry["language"]: entry for entry in stats["by_language"]}
    assert by_language["en"]["received"] == 2  # English, and the mixed one read as English
    assert by_language["de"] == {
        "language": "de",
        "received": 1,
        "approved": 0,
        "held": 1,
        "rejected": 0,
        "pending": 0,
        "unsupported": 1,
    }

    # Webhook receivers get the language with every decision.
    payloads = [
        json.loads(delivery.payload)
        for delivery in db.session.scalars(
            sa.select(WebhookDelivery).where(WebhookDelivery.comment_id == german.id)
        )
    ]
    db.session.rollback()
    decided = [p["data"] for p in payloads if p["type"] == "comment.held"]
    assert decided and decided[0]["language"] == "de"
    assert decided[0]["reasons"][0]["code"] == "unsupported_language"


def test_each_comment_is_decided_on_the_thresholds_of_the_model_that_read_it(
    client, site, submit, start_worker, checkpoints
):
    """profanity-check holds toxicity at 0.37, Detoxify at 0.6: with both loaded, the
    thresholds are those of the scorer each comment went to, not of the first listed."""
    # profanity-check scores this 0.485: over its hold threshold, under Detoxify's.
    mild = submit(body="What nonsense.").get_json()["id"]
    french = submit(body=FRENCH, author="r-fr").get_json()["id"]

    worker = start_worker(
        "--burst",
        SCORERS=f"detoxify:{checkpoints['bert']}=fr;profanity-check=en",
        MODEL_PRECISION="fp32",
    )

    assert worker.wait(90) == 0, worker.log()
    rows = {row.id: row for row in db.session.scalars(sa.select(Comment))}
    db.session.rollback()
    held = rows[mild]
    assert held.model.startswith("profanity-check@")
    assert 0.37 <= held.scores["toxicity"] < 0.6
    assert held.status == "held", held.reasons
    assert held.reasons[0] == {
        "code": "toxicity",
        "label": "toxicity",
        "score": held.reasons[0]["score"],
        "threshold": 0.37,
    }
    assert rows[french].model.startswith("detoxify-tiny@")


def test_worker_refuses_a_malformed_scorers_setting_naming_it(start_worker) -> None:
    worker = start_worker("--burst", SCORERS="profanity-check=english")
    assert worker.wait() != 0
    assert "CIVILITY_SCORERS: entry 1" in worker.log()


def test_site_language_settings_are_validated_and_audited(client, site) -> None:
    headers = site.auth("admin")
    answer = client.patch(
        "/v1/site",
        json={"language_scorers": {"de": "detoxify:multilingual"}, "unsupported_language": "score"},
        headers=headers,
    )
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["language_scorers"] == {"de": "detoxify:multilingual"}
    assert body["unsupported_language"] == "score"
    assert db.session.get(Site, site.id).unsupported_language == "score"
    for wrong, field in (
        ({"unsupported_language": "approve"}, "unsupported_language"),
        ({"language_scorers": {"German": "detoxify:multilingual"}}, "language_scorers"),
        ({"language_scorers": {"de": "gpt-4"}}, "language_scorers"),
    ):
        answer = client.patch("/v1/site", json=wrong, headers=headers)
        assert answer.status_code == 422, wrong
        assert field in answer.get_json()["errors"]["json"], answer.get_json()
    assert client.get("/v1/site", headers=headers).get_json()["unsupported_language"] == "score"
    events = client.get("/v1/site/events", headers=headers).get_json()["items"]
    assert events[0]["changes"]["unsupported_language"] == ["hold", "score"]


def test_a_caller_that_knows_the_language_skips_detection(router) -> None:
    named, detected = router.score_detailed([ENGLISH, FRENCH], languages=["de", None])
    assert (named.language, named.confidence, named.model, named.supported) == (
        "de",
        1.0,
        None,
        False,
    )
    assert detected.language == "fr" and detected.model == router.routes[1].scorer.model
    assert router.reads("ru") and not router.reads("de")
