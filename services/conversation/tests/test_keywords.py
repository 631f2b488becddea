"""Keywords match the whole message, whatever its case, accents and punctuation (ADR 0022)."""

from __future__ import annotations

import pytest
from conversation.keywords import Intent, keywords_for

pytestmark = pytest.mark.unit

HANDOFF, OPT_OUT, OPT_IN = Intent.HANDOFF, Intent.OPT_OUT, Intent.OPT_IN


@pytest.mark.parametrize(("language", "text", "intent"), [
    ("en", "STOP", OPT_OUT),
    ("en", "Stop!", OPT_OUT),
    ("en", "  stop. ", OPT_OUT),
    ("en", "unsubscribe", OPT_OUT),
    ("en", "I can't stop laughing", None),
    ("en", "stop it", None),
    ("en", "START", OPT_IN),
    ("en", "human", HANDOFF),
    ("en", "Human?", HANDOFF),
    ("en", "talk to a human", HANDOFF),
    ("en", "a human wrote this", None),
    ("en", "humano", None),  # Spanish words only for a tenant in Spanish
    ("es", "humano", HANDOFF),
    ("es", "HUMANO!!", HANDOFF),
    ("es", "Persona", HANDOFF),
    ("es", "baja", OPT_OUT),
    ("es", "Comenzar", OPT_IN),
    ("es", "stop", OPT_OUT),  # English keywords hold in every language
    ("es", "agent", HANDOFF),
    ("pt", "Atendente", HANDOFF),
    ("pt", "sair", OPT_OUT),
    ("pt", "voltar", OPT_IN),
    ("pt", "Começar", OPT_IN),  # accents ignored
    ("fr", "Arrêt", OPT_OUT),
    ("fr", "humain", HANDOFF),
    ("de", "Mensch", HANDOFF),
    ("de", "abmelden", OPT_OUT),
    ("it", "operatore", HANDOFF),
    ("it", "basta", OPT_OUT),
    ("xx", "stop", OPT_OUT),  # a language without defaults: English's
    ("en", "", None),
])
def test_default_keywords(language: str, text: str, intent: Intent | None) -> None:
    assert keywords_for(language).intent(text) is intent


def test_a_tenants_own_keywords_add_to_the_defaults() -> None:
    keywords = keywords_for("en", handoff=("Hablar con Ana",), opt_out=("Basta ya",),
                            opt_in=("volver",))
    assert keywords.intent("hablar con ana!") is HANDOFF
    assert keywords.intent("BASTA, YA") is OPT_OUT
    assert keywords.intent("Volver") is OPT_IN
    assert keywords.intent("stop") is OPT_OUT and keywords.intent("human") is HANDOFF


def test_opting_out_wins_when_a_tenant_lists_a_word_twice() -> None:
    assert keywords_for("en", handoff=("stop",)).intent("stop") is OPT_OUT
