"""What a user's message asks of the conversation itself: a person, to stop, to start again.

A keyword matches the **whole message** (ADR 0022), ignoring case, accents, punctuation and
extra spaces: "STOP", "Stop!" and "stop." opt out; "I can't stop laughing" does not. Each
tenant gets the defaults of English (the keywords WhatsApp users know from every sender) and
of its own language, plus its own lists (``switchboard-tenants update --handoff-keywords``...).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache


class Intent(StrEnum):
    HANDOFF = "handoff"
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"


DEFAULTS: dict[str, dict[Intent, tuple[str, ...]]] = {
    "en": {
        Intent.HANDOFF: ("human", "agent", "person", "operator", "human agent", "real person",
                         "talk to a human", "speak to a human", "talk to a person",
                         "speak to a person", "talk to an agent", "speak to an agent"),
        Intent.OPT_OUT: ("stop", "unsubscribe", "cancel", "end", "quit", "stopall",
                         "opt out", "optout"),
        Intent.OPT_IN: ("start", "unstop", "subscribe", "opt in", "optin", "resume"),
    },
    "es": {
        Intent.HANDOFF: ("humano", "agente", "persona", "operador", "asesor",
                         "hablar con una persona", "hablar con un humano",
                         "hablar con un agente"),
        Intent.OPT_OUT: ("parar", "baja", "darme de baja", "cancelar", "detener", "alto"),
        Intent.OPT_IN: ("comenzar", "alta", "empezar", "reanudar", "iniciar"),
    },
    "pt": {
        Intent.HANDOFF: ("humano", "atendente", "agente", "pessoa", "falar com atendente",
                         "falar com um atendente", "falar com uma pessoa",
                         "falar com um humano"),
        Intent.OPT_OUT: ("parar", "sair", "cancelar", "descadastrar", "pare"),
        Intent.OPT_IN: ("voltar", "comecar", "iniciar", "retomar"),
    },
    "fr": {
        Intent.HANDOFF: ("humain", "agent", "conseiller", "personne", "operateur",
                         "parler a un humain", "parler a un conseiller"),
        Intent.OPT_OUT: ("arret", "arreter", "stop", "desabonner", "desinscrire"),
        Intent.OPT_IN: ("demarrer", "reprendre", "commencer"),
    },
    "de": {
        Intent.HANDOFF: ("mensch", "mitarbeiter", "berater", "agent", "person",
                         "mit einem menschen sprechen"),
        Intent.OPT_OUT: ("abmelden", "stopp", "beenden", "austragen"),
        Intent.OPT_IN: ("anmelden", "starten", "fortsetzen"),
    },
    "it": {
        Intent.HANDOFF: ("umano", "operatore", "agente", "persona",
                         "parlare con un operatore", "parlare con una persona"),
        Intent.OPT_OUT: ("basta", "annulla", "disiscrivi", "cancellami", "fermati"),
        Intent.OPT_IN: ("inizia", "riprendi", "iscrivi"),
    },
}

_NOT_WORD = re.compile(r"[^\w]+")


def normalize(text: str) -> str:
    """Lower case, accents and punctuation dropped, one space between words."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(_NOT_WORD.sub(" ", bare.replace("_", " ")).split())


@dataclass(frozen=True, slots=True)
class Keywords:
    """Normalized keyword -> intent. Opt-out wins over opt-in wins over handoff when a
    tenant's list repeats a word (the user's "stop" must never be read otherwise)."""

    table: dict[str, Intent]

    def intent(self, text: str) -> Intent | None:
        return self.table.get(normalize(text)) if text else None


@lru_cache(maxsize=1024)
def keywords_for(language: str, handoff: tuple[str, ...] = (), opt_out: tuple[str, ...] = (),
                 opt_in: tuple[str, ...] = ()) -> Keywords:
    """The defaults of English and ``language`` plus the tenant's own keywords."""
    table: dict[str, Intent] = {}
    own = {Intent.HANDOFF: handoff, Intent.OPT_IN: opt_in, Intent.OPT_OUT: opt_out}
    for intent in (Intent.HANDOFF, Intent.OPT_IN, Intent.OPT_OUT):  # the last one wins
        words: Iterable[str] = (*DEFAULTS["en"][intent],
                                *DEFAULTS.get(language, {}).get(intent, ()), *own[intent])
        table.update((key, intent) for key in map(normalize, words) if key)
    return Keywords(table)
