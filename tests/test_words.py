"""Word list matching: normalisation, word boundaries, phrases, large lists."""

import random
import string

import pytest

from service.moderation.words import WordList, normalize, tokenize


def fullwidth(text: str) -> str:
    """``text`` in fullwidth forms (U+FF01..U+FF5E), as some keyboards and spammers type."""
    return "".join(chr(ord(char) + 0xFEE0) if "!" <= char <= "~" else char for char in text)


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        pytest.param("PUTAIN", "putain", id="case_is_folded"),
        pytest.param("pùtain", "putain", id="accents_are_stripped"),
        pytest.param(fullwidth("Putain"), "putain", id="fullwidth_forms_fold_to_ascii"),
        pytest.param("ﬁnd", "find", id="ligatures_are_expanded"),
        pytest.param("Straße", "strasse", id="sharp_s_casefolds_to_ss"),
        pytest.param("Ça VA", "ca va", id="cedilla_and_case_together"),
        pytest.param("plain ascii", "plain ascii", id="ascii_passes_through"),
    ],
)
def test_normalize_folds_case_width_and_accents(raw: str, folded: str) -> None:
    assert normalize(raw) == folded


def test_tokenize_splits_on_non_word_characters() -> None:
    assert tokenize("Don't, PÙTAIN!  kill-yourself") == ["don", "t", "putain", "kill", "yourself"]


@pytest.mark.parametrize(
    ("words", "text", "found"),
    [
        pytest.param(["putain"], "Oh pùtain!", ["putain"], id="accented_text_matches_plain_entry"),
        pytest.param(["pùtain"], "oh PUTAIN", ["pùtain"], id="plain_text_matches_accented_entry"),
        pytest.param(["idiot"], fullwidth("IDIOT!"), ["idiot"], id="fullwidth_text_matches"),
        pytest.param(["Idiot"], "you idiot", ["Idiot"], id="entry_is_returned_as_listed"),
        pytest.param(["ass"], "a class act, my assistant", [], id="no_match_inside_words"),
        pytest.param(["ass"], "what an ass.", ["ass"], id="match_next_to_punctuation"),
        pytest.param(["ass"], "ass_hat", [], id="underscore_joins_a_word"),
        pytest.param(["kill yourself"], "go KILL   yourself", ["kill yourself"], id="phrase"),
        pytest.param(["kill yourself"], "kill-yourself", ["kill yourself"], id="phrase_by_tokens"),
        pytest.param(["kill yourself"], "kill the yourself", [], id="phrase_needs_adjacent"),
        pytest.param(["kill yourself"], "yourself kill", [], id="phrase_needs_order"),
        pytest.param(["kill yourself"], "kill", [], id="phrase_prefix_alone_is_no_match"),
        pytest.param(
            ["kill", "kill yourself", "kill yourself now"],
            "kill yourself now",
            ["kill", "kill yourself", "kill yourself now"],
            id="overlapping_entries_all_match",
        ),
        pytest.param(
            ["b", "a", "c d"],
            "c d then a then b then a",
            ["c d", "a", "b"],
            id="order_of_first_occurrence_each_once",
        ),
        pytest.param(
            ["Idiot", "IDIOT", "ïdiot"], "idiot", ["Idiot"], id="duplicates_fold_to_first"
        ),
        pytest.param(["don't"], "I don't know", ["don't"], id="apostrophe_entry_is_a_phrase"),
        pytest.param(["  spam  "], "spam", ["spam"], id="entries_are_stripped"),
        pytest.param(["", "!!!"], "!!! anything", [], id="entries_without_words_are_ignored"),
        pytest.param([], "anything at all", [], id="empty_list_finds_nothing"),
        pytest.param(["idiot"], "", [], id="empty_text_finds_nothing"),
    ],
)
def test_find_returns_entries_occurring_in_text(words: list[str], text: str, found: list[str]):
    assert WordList.compile(words).find(text) == found


def test_compile_rejects_a_bare_string() -> None:
    with pytest.raises(TypeError):
        WordList.compile("idiot")


def test_empty_word_list_is_falsy_and_equals_default() -> None:
    assert not WordList.compile([])
    assert WordList.compile([]) == WordList()
    assert len(WordList.compile(["a", "b c", "A"])) == 2


def test_compiled_lists_with_same_entries_are_equal_and_hashable() -> None:
    first, second = WordList.compile(["a", "b c"]), WordList.compile(["a", "b c"])
    assert first == second
    assert {first: 1}[second] == 1


def test_word_list_is_immutable() -> None:
    words = WordList.compile(["idiot"])
    with pytest.raises(AttributeError):
        words.entries = ()  # type: ignore[misc]


def test_ten_thousand_word_list_scans_ten_thousand_characters() -> None:
    rng = random.Random(1234)

    def word() -> str:
        return "".join(rng.choices(string.ascii_lowercase, k=rng.randint(5, 10)))

    entries = [word() for _ in range(9_000)] + [f"{word()} {word()}" for _ in range(1_000)]
    words = WordList.compile(entries)
    planted = [entries[17], entries[9_500], entries[4_242]]
    filler = ["zz" + word() for _ in range(1_200)]  # "zz" keeps filler out of the list
    text = " ".join([*filler[:300], planted[0], *filler[300:600], *planted[1:], *filler[600:]])

    assert len(text) >= 10_000
    assert words.find(text) == planted
    assert words.find(text.upper()) == planted
